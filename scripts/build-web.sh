#!/usr/bin/env bash
# Builds the pages (appliance/web) into appliance/web/dist, which docketd embeds at compile time.
# dist/ is committed, so `cargo build` works without Node.js; run this after changing
# appliance/web/src and commit the result.
#
#   scripts/build-web.sh           install the pinned npm packages (npm ci) and rebuild dist/
#   scripts/build-web.sh --check   rebuild into a temp dir and fail if dist/ differs (stale)
#   scripts/build-web.sh --test    also run the pages' unit tests (node --test)
set -euo pipefail
cd "$(dirname "$0")/../appliance/web"

say() { echo "build-web: $*"; }
command -v node >/dev/null && command -v npm >/dev/null || {
    echo "build-web: Node.js and npm are needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
}

# npm ci again only when the lock file changed since the last install.
if ! cmp -s package-lock.json node_modules/.docket-installed-lock 2>/dev/null; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.docket-installed-lock
fi

check=0
tests=0
for a in "$@"; do
    case $a in
        --check) check=1 ;;
        --test) tests=1 ;;
        *) echo "build-web: unknown argument $a" >&2; exit 2 ;;
    esac
done

if [[ $tests -eq 1 ]]; then
    say "unit tests"
    node --test test/
fi

if [[ $check -eq 1 ]]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    node build.mjs --out "$tmp/dist" >/dev/null
    if ! diff -r "$tmp/dist" dist >/dev/null; then
        diff -rq "$tmp/dist" dist || true
        echo "build-web: appliance/web/dist is stale: run scripts/build-web.sh and commit dist/" >&2
        exit 1
    fi
    say "dist/ is up to date"
else
    node build.mjs
fi
