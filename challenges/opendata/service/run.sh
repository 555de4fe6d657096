#!/bin/sh
# Runs the portal from /srv/opendata. When the Python process ends (patch-live.sh ends it after
# swapping in new code), this loop starts it again with whatever code is there. The data lives
# in /var/lib/opendata when that folder is writable (a volume, as the demo scenario gives it),
# else in /tmp/opendata, which a container restart empties.
set -u
DATA=/var/lib/opendata
[ -w "$DATA" ] || DATA=/tmp/opendata
trap 'kill "$(cat /tmp/opendata.pid)" 2>/dev/null; exit 0' TERM INT
while :; do
    python3 /srv/opendata/app.py --host 0.0.0.0 --port 8080 --data "$DATA" &
    echo $! > /tmp/opendata.pid
    wait $!
    sleep 1
done
