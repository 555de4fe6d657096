#!/bin/sh
# How a team swaps in a new app.py in one step: reads it on standard input, checks that it is
# valid Python, moves it into place and restarts the portal's process (the data is kept). Over
# the team's shell entry:
#   ssh -i TEAM-1.ssh -p PORT opendata@GATEWAY sh /srv/opendata/patch-live.sh < app.py
set -eu
cat > /srv/opendata/app.py.new
if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /srv/opendata/app.py.new; then
    rm -f /srv/opendata/app.py.new
    echo "not valid Python; the running portal is unchanged" >&2
    exit 1
fi
mv /srv/opendata/app.py.new /srv/opendata/app.py
kill "$(cat /tmp/opendata.pid)"
echo "patched: the portal restarts with the new code in about a second"
