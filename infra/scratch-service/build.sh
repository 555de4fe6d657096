#!/usr/bin/env bash
# Builds the static test service and an image `FROM scratch` holding only that binary.
# Usage: infra/scratch-service/build.sh [IMAGE]   (default gongfang/scratch-service:latest)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
image="${1:-gongfang/scratch-service:latest}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1; then
    rustc --edition 2021 -O --target x86_64-unknown-linux-musl -o "$ctx/scratch-service" "$here/main.rs"
else
    # No musl target: link glibc statically instead.
    rustc --edition 2021 -O -C target-feature=+crt-static -o "$ctx/scratch-service" "$here/main.rs"
fi
cp "$here/Dockerfile" "$ctx/Dockerfile"
docker build -q -t "$image" "$ctx"
echo "built $image"
