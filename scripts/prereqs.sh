# Sourced by scripts/test.sh and scripts/bench.sh: installs what the tests and benchmarks need
# when it is missing (Debian packages; the pinned npm packages of the browser tests).
#   docket_prereqs        Debian packages, Node.js >= 20 check, cargo check
#   docket_browser_deps   tests/browser/node_modules from its package-lock.json

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM

docket_prereqs() {
    # The end-to-end tests signal the daemon with kill(1) (procps); the pages are built and
    # tested with Node.js (>= 20) and npm; the browser tests drive Debian's Chromium; the
    # benchmarks compare the broker with Mosquitto.
    local missing=()
    [ -x /bin/kill ] || [ -x /usr/bin/kill ] || missing+=(procps)
    command -v cc >/dev/null || missing+=(gcc libc6-dev)
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    [ -x "$CHROMIUM" ] || missing+=(chromium)
    # The browser tests trust the site CA the way a managed device does: in Chromium's NSS
    # database (certutil), with a test CA made by openssl.
    command -v certutil >/dev/null || missing+=(libnss3-tools)
    command -v openssl >/dev/null || missing+=(openssl)
    # The uplink tests start their own PostgreSQL and Redis servers (free ports, temp dirs).
    if [ -z "${DOCKET_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        missing+=(postgresql)
    fi
    command -v redis-server >/dev/null || missing+=(redis-server)
    # redis-cli makes the relay tests' three-node Redis Cluster (--cluster create).
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    command -v setpriv >/dev/null || missing+=(util-linux)
    # The fault campaign puts the box in its own network namespace (ip netns, veth) where it can.
    command -v ip >/dev/null || missing+=(iproute2)
    [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    command -v curl >/dev/null || missing+=(curl ca-certificates)
    # The clock-fault test moves docketd's wall clock (never the machine's) with libfaketime.
    compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
    # The technician CLI writes the site bundle into an image's data partition with debugfs.
    { command -v debugfs >/dev/null && command -v mke2fs >/dev/null; } || missing+=(e2fsprogs)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    local node_major
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$node_major" -lt 20 ]; then
        echo "Node.js >= 20 is needed for the pages (found $(node --version))" >&2
        return 1
    fi
    echo "node $(node --version), npm $(npm --version), $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; return 1; }
    cargo --version
    rustc --version
}

docket_browser_deps() {
    (
        cd "$(dirname "${BASH_SOURCE[0]}")/../tests/browser"
        if ! cmp -s package-lock.json node_modules/.docket-installed-lock 2>/dev/null; then
            npm ci --no-audit --no-fund --loglevel=error
            cp package-lock.json node_modules/.docket-installed-lock
        fi
    )
}
