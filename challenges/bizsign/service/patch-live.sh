#!/bin/sh
# How a team swaps in a new app.py in one step: reads it on standard input, checks that it is
# valid Python, moves it into place and restarts the service's process (the data is kept). Over
# the team's shell entry:
#   ssh -i TEAM-1.ssh -p PORT bizsign@GATEWAY sh /srv/bizsign/patch-live.sh < app.py
set -eu
cat > /srv/bizsign/app.py.new
if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /srv/bizsign/app.py.new; then
    rm -f /srv/bizsign/app.py.new
    echo "not valid Python; the running service is unchanged" >&2
    exit 1
fi
mv /srv/bizsign/app.py.new /srv/bizsign/app.py
kill "$(cat /tmp/bizsign.pid)"
echo "patched: the service restarts with the new code in about a second"
