#!/bin/sh
# How a team patches its own portal in place: reads the new app.py on standard input, checks
# that it is valid Python, swaps it in and restarts the portal (the data is kept):
#   docker exec -i gf-DRILL-TEAM-opendata sh /srv/opendata/patch-live.sh < app.py
set -eu
cat > /tmp/app/app.py.new
if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /tmp/app/app.py.new; then
    rm -f /tmp/app/app.py.new
    echo "not valid Python; the running portal is unchanged" >&2
    exit 1
fi
mv /tmp/app/app.py.new /tmp/app/app.py
kill "$(cat /tmp/app/pid)"
echo "patched: the portal restarts with the new code in about a second"
