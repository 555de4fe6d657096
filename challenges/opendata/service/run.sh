#!/bin/sh
# Runs the portal from /tmp/app, a copy its defenders may patch live (vulnbox mode): when the
# Python process ends, this loop starts it again with whatever code is there. The data in
# /tmp/opendata survives such a restart; it is lost only when the container restarts.
set -u
mkdir -p /tmp/app
[ -f /tmp/app/app.py ] || cp /srv/opendata/app.py /tmp/app/app.py
trap 'kill "$(cat /tmp/app/pid)" 2>/dev/null; exit 0' TERM INT
while :; do
    python3 /tmp/app/app.py --host 0.0.0.0 --port 8080 --data /tmp/opendata &
    echo $! > /tmp/app/pid
    wait $!
    sleep 1
done
