#!/bin/sh
# Run while the image is built (the Dockerfile's RUN step), with no network: checks that every
# JavaScript file of the gateway parses, so a patch that does not fails its build and never
# reaches a running service. A team's patch may add steps here; the build has a time limit.
set -eu
cd /srv/consent
for f in *.js; do
    node --check "$f"
done
