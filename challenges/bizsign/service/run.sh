#!/bin/sh
# Runs the service from /srv/bizsign. When the Python process ends (patch-live.sh ends it after
# swapping in new code), this loop starts it again with whatever code is there. The data lives
# in /var/lib/bizsign when that folder is writable (a volume, as the demo scenario gives it),
# else in /tmp/bizsign, which a container restart empties.
set -u
DATA=/var/lib/bizsign
[ -w "$DATA" ] || DATA=/tmp/bizsign
trap 'kill "$(cat /tmp/bizsign.pid)" 2>/dev/null; exit 0' TERM INT
while :; do
    python3 /srv/bizsign/app.py --host 0.0.0.0 --port 8080 --data "$DATA" &
    echo $! > /tmp/bizsign.pid
    wait $!
    sleep 1
done
