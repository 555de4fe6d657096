#!/bin/sh
# How a team swaps in a new app.py in one step: reads it on standard input, checks that it is
# valid Python, moves it into place and restarts the service's process (the data is kept). Over
# the team's shell entry:
#   ssh -i TEAM-1.ssh -p PORT citizenid@GATEWAY sh /srv/citizenid/patch-live.sh < app.py
set -eu
cat > /srv/citizenid/app.py.new
if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /srv/citizenid/app.py.new; then
    rm -f /srv/citizenid/app.py.new
    echo "not valid Python; the running service is unchanged" >&2
    exit 1
fi
mv /srv/citizenid/app.py.new /srv/citizenid/app.py
kill "$(cat /tmp/citizenid.pid)"
echo "patched: the service restarts with the new code in about a second"
