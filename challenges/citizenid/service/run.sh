#!/bin/sh
# Runs CityPass from /srv/citizenid. When the Python process ends (patch-live.sh ends it after
# swapping in new code), this loop starts it again with whatever code is there. The data lives
# in /var/lib/citizenid when that folder is writable (a volume, as a scenario's `data` gives it),
# else in /tmp/citizenid, which a container restart empties.
set -u
DATA=/var/lib/citizenid
[ -w "$DATA" ] || DATA=/tmp/citizenid
trap 'kill "$(cat /tmp/citizenid.pid)" 2>/dev/null; exit 0' TERM INT
while :; do
    python3 /srv/citizenid/app.py --host 0.0.0.0 --port 8080 --data "$DATA" &
    echo $! > /tmp/citizenid.pid
    wait $!
    sleep 1
done
