#!/bin/sh
# Runs the gateway from /srv/consent. When the node process ends (patch-live.sh ends it after
# swapping in new code), this loop starts it again with whatever code is there. The data lives
# in /var/lib/consent when that folder is writable (a volume, as the scenario gives it), else
# in /tmp/consent, which a container restart empties. A 48 MiB old-space heap is plenty for a
# drill's data; V8's lite mode (no optimising compiler) keeps an idle gateway at node's own
# footprint, about 52 MiB after a drill's traffic instead of about 62, and is no slower for
# requests this small (lite mode has no WebAssembly, which the gateway does not use:
# --no-expose-wasm says so and spares a warning at every start).
set -u
DATA=/var/lib/consent
[ -w "$DATA" ] || DATA=/tmp/consent
trap 'kill "$(cat /tmp/consent.pid)" 2>/dev/null; exit 0' TERM INT
while :; do
    node --max-old-space-size=48 --lite-mode --no-expose-wasm /srv/consent/app.js --host 0.0.0.0 --port 8080 --data "$DATA" &
    echo $! > /tmp/consent.pid
    wait $!
    sleep 1
done
