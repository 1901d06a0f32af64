#!/usr/bin/env bash
# Starts the Docket appliance with a demo restaurant ("Demo Bistro") and simulated devices.
#
#   scripts/demo.sh                  build, start docketd, simulate a busy restaurant until Ctrl-C
#   scripts/demo.sh --no-sim         a quiet restaurant: just the daemon and your own pages
#   scripts/demo.sh --duration 20    simulate for 20 s, stop everything, exit 0 if all went well
#                                    (under 60 s, kitchen prep is 2-8 s instead of 5-20 s)
#   scripts/demo.sh --fresh          delete the demo data (orders, devices) first
#   scripts/demo.sh --debug          use the debug build (quick to build, slower to run)
#   scripts/demo.sh --head-office    also a local head office (its own PostgreSQL and Redis) and an
#                                    online-order platform sending delivery orders down to the KDS
#
# It builds the release binaries (the first build takes several minutes), picks free TCP ports
# (never 1883: another broker may own it; a re-run keeps its ports while they are free), writes a
# config and pairs demo devices in ${DOCKET_DEMO_DIR:-$PWD/demo-data}, starts docketd, waits for
# /healthz, runs docket-sim (tablets, station screens, expo; its log goes to a file) and prints the
# URLs, credentials and, last, the pages' links, which then stay on screen. The simulated kitchen
# bumps and completes only the simulated tablets' orders: an order sent from the /tablet page
# waits for you on /kds and /expo. A re-run reuses the data dir: same devices, tickets continue.
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

SIM=1
DURATION=0
FRESH=0
HQ=0
PROFILE=release
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-sim) SIM=0 ;;
        --fresh) FRESH=1 ;;
        --debug) PROFILE=debug ;;
        --head-office) HQ=1 ;;
        --duration)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "demo.sh: --duration needs whole seconds" >&2; exit 2; }
            DURATION="$2"
            shift
            ;;
        --duration=*)
            DURATION="${1#--duration=}"
            [[ "$DURATION" =~ ^[0-9]+$ ]] || { echo "demo.sh: --duration needs whole seconds" >&2; exit 2; }
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# The data dir is relative to where the script was started; everything else to the repository.
DEMO_DIR="${DOCKET_DEMO_DIR:-$PWD/demo-data}"
case "$DEMO_DIR" in /*) ;; *) DEMO_DIR="$PWD/$DEMO_DIR" ;; esac
DEMO_DIR="${DEMO_DIR%/}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

# The demo decides these; DOCKET_* variables would override its config (and its printed URLs).
unset DOCKET_DATA_DIR DOCKET_SITE_ID DOCKET_SITE_NAME DOCKET_MQTT_LISTEN DOCKET_MQTT_LISTEN_V5 DOCKET_HTTP_LISTEN

say() { printf '%s\n' "demo: $*"; }
die() { printf '%s\n' "demo: $*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------------------------
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v cc >/dev/null || missing+=(build-essential) # rusqlite compiles SQLite
if [[ ${#missing[@]} -gt 0 ]]; then
    if command -v apt-get >/dev/null; then
        SUDO=""
        [[ $(id -u) -eq 0 ]] || SUDO="sudo"
        say "installing ${missing[*]} (apt-get)"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        die "please install: ${missing[*]}"
    fi
fi
command -v cargo >/dev/null ||
    die "cargo not found: install Rust from https://rustup.rs (curl https://sh.rustup.rs -sSf | sh)"

# --- build -------------------------------------------------------------------------------------
if [[ $PROFILE == release ]]; then
    say "building docketd and docket-sim (release, LTO): the first build takes several minutes"
    cargo build --release --locked -p docket-appliance -p docket-tests --bins
else
    say "building docketd and docket-sim (debug)"
    cargo build --locked -p docket-appliance -p docket-tests --bins
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"
DOCKETD="$BIN/docketd"
SIMBIN="$BIN/docket-sim"
[[ -x $DOCKETD && -x $SIMBIN ]] || die "build did not produce $DOCKETD and $SIMBIN"

# --- data dir ----------------------------------------------------------------------------------
CONFIG="$DEMO_DIR/docketd.toml"
DEVICES="$DEMO_DIR/devices.jsonl"
LOG="$DEMO_DIR/docketd.log"
if [[ $FRESH -eq 1 && -e $DEMO_DIR ]]; then
    # Only ever delete what this script made.
    if [[ -f $CONFIG || -z "$(ls -A "$DEMO_DIR")" ]]; then
        say "--fresh: deleting $DEMO_DIR"
        rm -rf -- "$DEMO_DIR"
    else
        die "--fresh: $DEMO_DIR has no docketd.toml; not deleting a directory this script did not make"
    fi
fi
mkdir -p "$DEMO_DIR"

# Ports: keep the previous run's while they are free (tablets on the LAN keep working), else any
# free ones. Never 1883: that is another broker's port.
ports=$("$SIMBIN" demo ports --config "$CONFIG") || die "cannot pick ports"
read -r MQTT_PORT MQTT5_PORT HTTP_PORT HTTPS_PORT MQTTS_PORT <<<"$ports"

# --- the bar's kitchen printer (a virtual one) ----------------------------------------------------
# docket-printer: an ESC/POS printer on a TCP port that draws each ticket to $PRINTER_DIR
# (NNNN.png, NNNN.txt). The bar prints in `fallback` mode: its tickets come out on paper while no
# bar screen is live (the simulated bar cook works from paper; open the bar's page and the paper
# stops, close it and 10 s later it prints again). Its port is kept while free.
PRINTER_BIN="$BIN/docket-printer"
[[ -x $PRINTER_BIN ]] || die "build did not produce $PRINTER_BIN"
trap '[[ -n $PRINTER_PID ]] && kill "$PRINTER_PID" 2>/dev/null' EXIT
PRINTER_DIR="$DEMO_DIR/printer"
PRINTER_LOG="$DEMO_DIR/printer.log"
PRINTER_PID=""
mkdir -p "$PRINTER_DIR"
rm -f "$PRINTER_DIR"/*.png "$PRINTER_DIR"/*.txt
start_printer() { # port
    : >"$PRINTER_LOG"
    setsid "$PRINTER_BIN" --port "$1" --out "$PRINTER_DIR" >"$PRINTER_LOG" 2>&1 </dev/null &
    PRINTER_PID=$!
    local i
    for ((i = 0; i < 50; i++)); do
        grep -q '^listening on ' "$PRINTER_LOG" && return 0
        kill -0 "$PRINTER_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$PRINTER_PID" 2>/dev/null || true
    PRINTER_PID=""
    return 1
}
prev_port=$(cat "$DEMO_DIR/printer.port" 2>/dev/null || echo 0)
[[ $prev_port =~ ^[0-9]+$ ]] || prev_port=0
start_printer "$prev_port" || start_printer 0 || die "the virtual printer did not start: $(cat "$PRINTER_LOG")"
PRINTER_ADDR=$(sed -n 's/^listening on //p' "$PRINTER_LOG" | head -n 1)
echo "${PRINTER_ADDR##*:}" >"$DEMO_DIR/printer.port"

# --- head office (--head-office) -----------------------------------------------------------------
if [[ $HQ -eq 1 ]]; then
    # shellcheck source=scripts/demo-head-office.sh
    source "$ROOT/scripts/demo-head-office.sh"
    hq_start
fi

cat >"$CONFIG" <<EOF
# Written by scripts/demo.sh on every run (edits are overwritten). Ports are kept while free.
data_dir = "data"
site_id = "demo"
site_name = "Demo Bistro"

[tls]
# The pages over HTTPS and MQTT over TLS under this box's own site CA (made at its first start;
# trust it on a device through the landing page on plain HTTP).
https_listen = "0.0.0.0:$HTTPS_PORT"
mqtt_listen = "0.0.0.0:$MQTTS_PORT"
mqtt_listen_v5 = ""

[mqtt]
# Plain MQTT for the simulated devices on this machine only (loopback): nothing crosses the LAN
# in plain text. /healthz warns about it all the same.
plain = true
listen = "127.0.0.1:$MQTT_PORT"
listen_v5 = "127.0.0.1:$MQTT5_PORT"

[http]
# Plain HTTP: the landing page (trust the site CA) and redirects to HTTPS.
listen = "0.0.0.0:$HTTP_PORT"

[printing]
fallback_after_secs = 10

# The bar's tickets on paper while no bar screen is live (a virtual printer: docket-printer).
[[printing.printer]]
station = "bar"
address = "$PRINTER_ADDR"
mode = "fallback"
paper_mm = 80
EOF
if [[ $HQ -eq 1 ]]; then
    hq_config >>"$CONFIG"
fi

# --- demo devices ------------------------------------------------------------------------------
# id role [stations]. Credentials live in devices.jsonl (the store keeps only the secret's
# bytes and `device list` does not show them), so a device already in the store is reused only
# with its line from there.
DEMO_DEVICES=(
    "tablet-1 tablet"
    "tablet-2 tablet"
    "tablet-3 tablet"
    "kds-grill station grill"
    "kds-fry station fry"
    "kds-cold station cold"
    "kds-bar station bar"
    "expo-1 expo"
    "manager-1 manager"
)
# The pages' own devices, apart from the simulator's (a device id connects once: the simulator
# and a browser sharing one would take over each other's connection).
WEB_DEVICES=(
    "web-tablet tablet"
    "web-kds-grill station grill"
    "web-kds-fry station fry"
    "web-kds-cold station cold"
    "web-kds-bar station bar"
    "web-expo expo"
    "web-admin manager"
)
WEB_DEVICES_FILE="$DEMO_DIR/web-devices.jsonl"
listing=$("$DOCKETD" device list --config "$CONFIG") || die "docketd device list failed"
# "id active|revoked" per device in the store.
states=$("$SIMBIN" demo device-states <<<"$listing") || die "cannot read docketd device list"
declare -A known=()
while read -r kid kstate; do
    if [[ -n $kid ]]; then
        known[$kid]=$kstate
    fi
done <<<"$states"
added=0
pair_devices() { # file spec...
    local file=$1 spec id role stations state saved
    shift
    touch "$file"
    chmod 600 "$file"
    : >"$file.new"
    for spec in "$@"; do
        read -r id role stations <<<"$spec"
        state=${known[$id]:-}
        saved=$(grep -F "\"id\":\"$id\"" "$file" | head -n 1 || true)
        if [[ $state == active && -n $saved ]]; then
            printf '%s\n' "$saved" >>"$file.new"
        elif [[ $state == active ]]; then
            say "warning: $id is paired but its secret is not in $file; it is left out (use --fresh)"
        elif [[ $state == revoked ]]; then
            say "warning: $id was revoked; it is left out (use --fresh)"
        else
            args=(device add --config "$CONFIG" --id "$id" --role "$role")
            [[ -n $stations ]] && args+=(--stations "$stations")
            "$DOCKETD" "${args[@]}" >>"$file.new" || die "docketd device add $id failed"
            added=$((added + 1))
        fi
    done
    mv "$file.new" "$file"
    chmod 600 "$file"
}
pair_devices "$DEVICES" "${DEMO_DEVICES[@]}"
pair_devices "$WEB_DEVICES_FILE" "${WEB_DEVICES[@]}"
if [[ $added -gt 0 ]]; then
    say "paired $added demo device(s); credentials in $DEVICES and $WEB_DEVICES_FILE"
else
    say "reusing the demo devices in $DEVICES and $WEB_DEVICES_FILE"
fi

# --- start docketd -----------------------------------------------------------------------------
DOCKETD_PID=""
SIM_PID=""
stop_pid() { # pid name
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$2 did not stop within 15 s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    trap - INT TERM
    if [[ -n $SIM_PID ]]; then
        stop_pid "$SIM_PID" docket-sim
        SIM_PID=""
    fi
    if [[ -n $PRINTER_PID ]]; then
        stop_pid "$PRINTER_PID" docket-printer
        PRINTER_PID=""
    fi
    if [[ -n $DOCKETD_PID ]]; then
        say "stopping docketd"
        stop_pid "$DOCKETD_PID" docketd
        DOCKETD_PID=""
        local errors warnings
        errors=$(grep -c ' ERROR ' "$LOG" || true)
        warnings=$(grep -c ' WARN ' "$LOG" || true)
        say "docketd stopped; its log ($errors errors, $warnings warnings): $LOG"
    fi
    if [[ $HQ -eq 1 ]]; then
        hq_stop
    fi
}
trap cleanup EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

[[ -f $LOG ]] && mv -f "$LOG" "$LOG.prev"
# setsid: its own session, so Ctrl-C reaches only this script, which stops the simulator first
# and then docketd, in that order.
RUST_LOG="${RUST_LOG:-info,rumqttd=warn,rumqttd::server=off}" setsid env -u NOTIFY_SOCKET \
    "$DOCKETD" run --config "$CONFIG" >"$LOG" 2>&1 </dev/null &
DOCKETD_PID=$!

HEALTH="http://127.0.0.1:$HTTP_PORT/healthz"
deadline=$((SECONDS + 30))
until curl -fsS --max-time 2 "$HEALTH" >/dev/null 2>&1; do
    if ! kill -0 "$DOCKETD_PID" 2>/dev/null; then
        wait "$DOCKETD_PID" && status=0 || status=$?
        DOCKETD_PID=""
        echo "demo: docketd exited (status $status) before it was healthy; its log:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "demo: docketd was not healthy within 30 s ($HEALTH); its log:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.2
done
health=$(curl -fsS --max-time 2 "$HEALTH" || true)
ca_fp=$("$SIMBIN" demo ca-fingerprint <<<"$health" 2>/dev/null || echo "?")

LAN_IP=$(hostname -I 2>/dev/null || true)
LAN_IP=${LAN_IP%% *}

# --- run the simulated restaurant --------------------------------------------------------------
# Its log goes to a file, so the links printed below stay on screen.
SIM_LOG="$DEMO_DIR/sim.log"
if [[ $SIM -eq 1 ]]; then
    sim_args=(--mqtt "127.0.0.1:$MQTT_PORT" --creds "$DEVICES" --paper bar)
    sim_what="a busy restaurant: 3 tablets, 4 station screens and an expo, simulated"
    if [[ $DURATION -gt 0 ]]; then
        sim_args+=(--duration "$DURATION" --check)
        if [[ $DURATION -lt 60 ]]; then
            # A short run should still show whole cycles: placed, bumped, completed.
            sim_args+=(--prep-min 2 --prep-max 8)
            sim_what="$sim_what, for $DURATION s (short run: prep times 2-8 s instead of 5-20 s)"
        else
            sim_what="$sim_what, for $DURATION s"
        fi
    fi
    [[ -f $SIM_LOG ]] && mv -f "$SIM_LOG" "$SIM_LOG.prev"
    setsid "$SIMBIN" "${sim_args[@]}" >"$SIM_LOG" 2>&1 </dev/null &
    SIM_PID=$!
fi
if [[ $HQ -eq 1 ]]; then
    # A short run sends an order every 3 s, a long one every 20 s.
    if [[ $DURATION -gt 0 && $DURATION -lt 60 ]]; then hq_platform_start 3; else hq_platform_start 20; fi
fi

# --- tell the user -----------------------------------------------------------------------------
cat <<EOF

================================================================================================
 Docket demo: "Demo Bistro" (site demo) is running                          docketd pid $DOCKETD_PID
------------------------------------------------------------------------------------------------
 HTTPS        https://${LAN_IP:-127.0.0.1}:$HTTPS_PORT   (the pages, /api)
 site CA      SHA-256 $ca_fp
 trust first  http://${LAN_IP:-127.0.0.1}:$HTTP_PORT/   (install this box's site CA on each device, once)
 MQTT/TLS     mqtts://${LAN_IP:-127.0.0.1}:$MQTTS_PORT
 MQTT plain   mqtt://127.0.0.1:$MQTT_PORT, MQTT 5 :$MQTT5_PORT (this machine only: the simulator)
 health       http://127.0.0.1:$HTTP_PORT/healthz   $health
 metrics      https://127.0.0.1:$HTTPS_PORT/metrics
 data         $DEMO_DIR   (config docketd.toml, store data/, logs docketd.log and sim.log)
 printer      the bar's kitchen printer (virtual) at $PRINTER_ADDR: tickets drawn to $PRINTER_DIR/
              (NNNN.png). It prints while no bar screen is live: open the bar's page below and it
              stops; close it and 10 s later the bar's tickets come out again. /admin and expo
              show it; docket doctor too.

 Demo devices and their secrets (also in devices.jsonl; a device logs in with a key derived
 from its secret, docs/protocol.md "Keys"):
EOF
"$SIMBIN" demo devices --creds "$DEVICES"
# manager-1's MQTT password: its login key, derived from its secret (docs/protocol.md "Keys").
watch_secret=$("$SIMBIN" demo login-key --creds "$DEVICES" --id manager-1)
echo
echo " Watch the traffic (the broker admits paired devices only, client id = username = device id;"
echo " manager-1 is not simulated, so it is free for this). Payloads are CBOR, not text:"
if [[ -z $watch_secret ]]; then
    echo "   (manager-1 is missing from devices.jsonl: pair a device of your own for this)"
elif command -v mosquitto_sub >/dev/null; then
    echo "   mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -i manager-1 -u manager-1 -P $watch_secret -t 'docket/v1/#' -F '%t %l bytes'"
else
    echo "   (install mosquitto-clients for mosquitto_sub; any MQTT client logs in as manager-1 with that password)"
fi
echo " Pair another device:  $DOCKETD device add --config $CONFIG --id tablet-9 --role tablet"
echo "------------------------------------------------------------------------------------------------"
if [[ $SIM -eq 1 ]]; then
    echo " Running: $sim_what."
    echo " The simulated kitchen bumps and completes only the simulated tablets' orders: an order you"
    echo " send from /tablet waits for you on /kds and /expo. The simulator's log: tail -f $SIM_LOG"
    echo " A quiet restaurant with only your own pages: scripts/demo.sh --no-sim"
else
    echo " Running: a quiet restaurant (--no-sim): only your own pages place, bump and complete orders."
fi
if [[ $HQ -eq 1 ]]; then
    echo " Head office (--head-office): PostgreSQL $HQ_ADMIN_URL, Redis $HQ_REDIS_URL."
    echo " An online-order platform sends a delivery or takeaway order down every few seconds (its"
    echo " log: $DEMO_DIR/platform.log). They appear on /kds and /expo marked with their channel and"
    echo " number (\"Deliveroo #DE-1204-001\") and wait there for you. Send one yourself:"
    echo "   $HQ_PG_BIN/psql '$HQ_ADMIN_URL' -c \"INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)"
    echo "     VALUES ('demo', 'deliveroo', 'MY-1', '{\\\"lines\\\": [{\\\"item\\\": \\\"fries\\\", \\\"qty\\\": 2}]}')\""
    echo " What the box made of each: SELECT * FROM docket.inbound_results;"
fi
echo
echo " Try it: open a tablet, a station screen and the expo, each in its own window. The pages are on"
echo " HTTPS under this box's own site CA: trust it once per device at http://${LAN_IP:-127.0.0.1}:$HTTP_PORT/"
echo " (or accept the browser's warning for a quick look). Each link logs its page in as its own device:"
"$SIMBIN" demo links --base "https://${LAN_IP:-127.0.0.1}:$HTTPS_PORT" --creds "$WEB_DEVICES_FILE"
echo "================================================================================================"
if [[ $DURATION -gt 0 ]]; then
    echo " It stops by itself in $DURATION s."
else
    echo " Ctrl-C stops the demo."
fi

# --- run ---------------------------------------------------------------------------------------
status=0

# Wait for the simulator (or the duration), noticing a docketd that dies meanwhile.
end=$((SECONDS + DURATION))
while :; do
    if [[ -n $SIM_PID ]] && ! kill -0 "$SIM_PID" 2>/dev/null; then
        wait "$SIM_PID" && status=0 || status=$?
        SIM_PID=""
        [[ $status -eq 0 ]] || say "docket-sim exited with status $status"
        break
    fi
    if ! kill -0 "$DOCKETD_PID" 2>/dev/null; then
        wait "$DOCKETD_PID" && st=0 || st=$?
        DOCKETD_PID=""
        echo "demo: docketd exited unexpectedly (status $st); the end of its log:" >&2
        tail -n 40 "$LOG" >&2
        exit 1
    fi
    if [[ -z $SIM_PID && $DURATION -gt 0 && $SECONDS -ge $end ]]; then
        break
    fi
    sleep 0.5
done
if [[ $SIM -eq 1 && -f $SIM_LOG ]]; then
    # The simulator's summary (and its --check verdict) ends its log.
    say "the simulator's last lines ($SIM_LOG):"
    tail -n 3 "$SIM_LOG" | sed 's/^/   /'
fi
if [[ $HQ -eq 1 ]]; then
    sent=$(grep -c '^platform: sent' "$DEMO_DIR/platform.log" 2>/dev/null || true)
    taken=$(hq_psql -At -c "SELECT count(*) FILTER (WHERE ok) || ' placed, ' || count(*) FILTER (WHERE NOT ok) || ' refused' FROM docket.inbound_results WHERE site_id = 'demo'" 2>/dev/null || echo "?")
    say "head office: the platform sent ${sent:-0} orders; the box: $taken"
fi
final=$(curl -fsS --max-time 2 "$HEALTH" || true)
say "final health: $final"
exit "$status"
