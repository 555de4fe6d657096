#!/usr/bin/env bash
# Builds a minimal Debian base image with no registry: debootstrap --variant=minbase into a
# folder, then `docker import` it as a local image. Skips the work when the image exists.
#
# Usage: infra/base-image/build.sh [--force] [--tag IMAGE] [--suite SUITE] [--include=pkg1,pkg2]
#   IMAGE  defaults to gongfang/base:bookworm (gongfang/base:SUITE with --suite)
#   The mirror is the one apt uses on this machine (first deb line of /etc/apt/sources.list*),
#   or $DEBIAN_MIRROR.
set -euo pipefail

suite=bookworm
tag=""
include=""
force=0
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --tag) tag="$2"; shift ;;
        --tag=*) tag="${1#--tag=}" ;;
        --suite) suite="$2"; shift ;;
        --suite=*) suite="${1#--suite=}" ;;
        --include=*) include="${1#--include=}" ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
tag="${tag:-gongfang/base:$suite}"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag already exists; nothing to do (--force rebuilds it)"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    echo "installing debootstrap"
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    # One-line format (deb URL suite ...) or deb822 (URIs: URL).
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' || true)"
fi
if [ -z "$mirror" ]; then
    mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' || true)"
fi
if [ -z "$mirror" ]; then
    echo "no Debian mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR" >&2
    exit 1
fi

root="$(mktemp -d /tmp/gongfang-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
args=(--variant=minbase)
[ -n "$include" ] && args+=("--include=$include")
echo "debootstrap ${args[*]} $suite from $mirror"
debootstrap "${args[@]}" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
# Caches and logs only make the image bigger.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag" >/dev/null
echo "imported $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
