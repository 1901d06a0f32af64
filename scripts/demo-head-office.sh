# Sourced by scripts/demo.sh --head-office: a local "head office" (its own PostgreSQL and Redis
# on free ports, under $HQ_DIR) and a small online-order platform that sends delivery orders down
# to the demo box through head office's docket.inbound_orders (docs/operations.md, "Head office").
# Needs: $DEMO_DIR, $DOCKETD, $CONFIG (written after hq_start), say, die.

HQ_DIR=""
HQ_PG_PID=""
HQ_REDIS_PID=""
PLATFORM_PID=""

# A TCP port nobody listens on (tried at random in 20000-59999).
hq_free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

hq_pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -x $d/postgres ]] || return 1
    echo "$d"
}

# Runs a PostgreSQL program as the user that owns the cluster (postgres, when we are root).
hq_as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

hq_psql() { # sql...
    "$HQ_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$HQ_ADMIN_URL" "$@"
}

# Starts head office; sets HQ_ADMIN_URL, HQ_SITE_URL (the demo site's role) and HQ_REDIS_URL.
hq_start() {
    HQ_PG_BIN=$(hq_pg_bin) || die "--head-office needs PostgreSQL (apt-get install postgresql)"
    command -v redis-server >/dev/null || die "--head-office needs redis-server (apt-get install redis-server)"
    # Fresh each run, outside the demo dir (the postgres user must be able to reach it).
    HQ_DIR=$(mktemp -d /tmp/docket-demo-hq.XXXXXX)
    chmod 755 "$HQ_DIR"
    [[ $(id -u) -eq 0 ]] && chown postgres "$HQ_DIR"
    local pw="$HQ_DIR/pw" pg_port redis_port
    echo postgres >"$pw"
    [[ $(id -u) -eq 0 ]] && chown postgres "$pw"
    hq_as_pg "$HQ_PG_BIN/initdb" -D "$HQ_DIR/pg" -U postgres -A scram-sha-256 --auth-local=trust \
        --pwfile "$pw" -E UTF8 --no-sync >"$HQ_DIR/initdb.log" 2>&1 ||
        die "initdb failed: $(cat "$HQ_DIR/initdb.log")"
    pg_port=$(hq_free_port) || die "no free port for head office's PostgreSQL"
    hq_as_pg "$HQ_PG_BIN/postgres" -D "$HQ_DIR/pg" -p "$pg_port" -k "$HQ_DIR" \
        -c listen_addresses=127.0.0.1 -c fsync=off >"$HQ_DIR/postgres.log" 2>&1 </dev/null &
    HQ_PG_PID=$!
    HQ_ADMIN_URL="postgres://postgres:postgres@127.0.0.1:$pg_port/postgres"
    local deadline=$((SECONDS + 30))
    until "$HQ_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; do
        ((SECONDS < deadline)) || die "head office's PostgreSQL did not start: $(tail -n 5 "$HQ_DIR/postgres.log")"
        sleep 0.2
    done
    redis_port=$(hq_free_port) || die "no free port for head office's Redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$HQ_DIR/redis.log" 2>&1 </dev/null &
    HQ_REDIS_PID=$!
    HQ_REDIS_URL="redis://127.0.0.1:$redis_port"
    # The schema, and the demo site's role, with the CLI head office would use.
    "$DOCKETD" uplink migrate --url "$HQ_ADMIN_URL" >/dev/null || die "docketd uplink migrate failed"
    local site_pw
    site_pw="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    "$DOCKETD" uplink site-role --url "$HQ_ADMIN_URL" --site demo <<<"$site_pw" >/dev/null ||
        die "docketd uplink site-role failed"
    HQ_SITE_URL="postgres://docket_site_demo:$site_pw@127.0.0.1:$pg_port/postgres"
    say "head office: PostgreSQL at 127.0.0.1:$pg_port, Redis at 127.0.0.1:$redis_port ($HQ_DIR)"
}

# The config's [uplink]: the box relays to head office and takes its orders.
hq_config() {
    cat <<EOF2

[uplink]
# A local head office (scripts/demo.sh --head-office): every event goes up; online orders come
# down from docket.inbound_orders as the box's integration device "head-office".
postgres_url = "$HQ_SITE_URL"
redis_url = "$HQ_REDIS_URL"
inbound_poll_ms = 1000
EOF2
}

# The platform: every $1 seconds a delivery or collection order from one of three channels,
# inserted at head office for the demo site.
hq_platform_start() { # every_secs
    local every=$1
    (
        n=0
        channels=(Deliveroo UberEats web)
        items=(burger-classic burger-veggie fries wings salad-caesar cheesecake lemonade)
        while :; do
            n=$((n + 1))
            ch=${channels[$((n % 3))]}
            a=${items[$((RANDOM % ${#items[@]}))]}
            b=${items[$((RANDOM % ${#items[@]}))]}
            service=delivery
            [[ $ch == web ]] && service=takeaway
            ref="$(printf '%s-%s-%03d' "${ch:0:2}" "$(date +%H%M)" "$n" | tr a-z A-Z)"
            payload="{\"channel\":\"$ch\",\"service\":\"$service\",\"lines\":[{\"item\":\"$a\",\"qty\":1},{\"item\":\"$b\",\"qty\":$((1 + RANDOM % 2))}]}"
            hq_psql -c "INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
                        VALUES ('demo', '$(echo "$ch" | tr A-Z a-z)', '$ref', '$payload')" ||
                echo "platform: insert failed" >&2
            echo "platform: sent $ch order $ref ($service: $a, $b)"
            sleep "$every"
        done
    ) >"$DEMO_DIR/platform.log" 2>&1 </dev/null &
    PLATFORM_PID=$!
}

hq_stop() {
    if [[ -n $PLATFORM_PID ]]; then
        kill "$PLATFORM_PID" 2>/dev/null || true
        wait "$PLATFORM_PID" 2>/dev/null || true
        PLATFORM_PID=""
    fi
    if [[ -n $HQ_REDIS_PID ]]; then
        kill "$HQ_REDIS_PID" 2>/dev/null || true
        wait "$HQ_REDIS_PID" 2>/dev/null || true
        HQ_REDIS_PID=""
    fi
    if [[ -n $HQ_PG_PID ]]; then
        hq_as_pg "$HQ_PG_BIN/pg_ctl" -D "$HQ_DIR/pg" -m fast -w stop >/dev/null 2>&1 ||
            kill "$HQ_PG_PID" 2>/dev/null || true
        wait "$HQ_PG_PID" 2>/dev/null || true
        HQ_PG_PID=""
    fi
    [[ -n $HQ_DIR ]] && rm -rf -- "$HQ_DIR"
    HQ_DIR=""
}
