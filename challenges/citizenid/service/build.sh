#!/bin/sh
# Run while the image is built (the Dockerfile's RUN step), with no network: checks that the
# service's code is valid Python, so a patch that is not fails its build and never reaches a
# running service. A team's patch may add steps here; the build has a time limit.
set -eu
cd /srv/citizenid
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' app.py
