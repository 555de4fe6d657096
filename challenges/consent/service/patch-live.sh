#!/bin/sh
# How a team swaps in a new app.js in one step: reads it on standard input, checks that it is
# valid JavaScript (node --check, as the image build does), moves it into place and restarts
# only the gateway's process (the data is kept). Over the team's shell entry:
#   ssh -i TEAM-1.ssh -p PORT consent@GATEWAY sh /srv/consent/patch-live.sh < app.js
set -eu
# node --check wants a name ending in .js; the leading dot keeps it out of build.sh's *.js.
NEW=/srv/consent/.app.new.js
cat > "$NEW"
if ! node --check "$NEW"; then
    rm -f "$NEW"
    echo "not valid JavaScript; the running gateway is unchanged" >&2
    exit 1
fi
mv "$NEW" /srv/consent/app.js
kill "$(cat /tmp/consent.pid)"
echo "patched: the gateway restarts with the new code in about a second"
