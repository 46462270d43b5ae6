#!/bin/bash
# make bench: drover's benchmarks, each beside its baseline in the same run.
# Usage: tests/bench/run.sh BIN_DIR TOOLS_DIR   (BENCH_ONLY=takeover: that section only)
# Prints a markdown table and writes it, with the machine, to docs/BENCHMARKS.md.
# Everything runs on loopback; all processes are stopped at the end.
set -u
BIN=${1:?bin dir}
TOOLS=${2:?tools dir}
TCPDATA=$TOOLS/tcpdata
LOAD=$TOOLS/loadagents
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/docs/BENCHMARKS.md
WORK=$(mktemp -d /tmp/drover-bench-XXXXXX)
BYTES=${BENCH_BYTES:-1073741824}        # single-stream transfer size
IDLE_COUNTS=${BENCH_IDLE:-"1000 5000"}  # idle tunnels for the memory rows
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {   # a port nothing listens on (good enough for a benchmark)
    local p
    while :; do
        p=$(shuf -i 20000-60999 -n 1)
        (echo > /dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return; }
    done
}

wait_port() {
    for _ in $(seq 1 100); do
        (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench: port $1 did not open" >&2
    exit 1
}

# field NAME LINE -> value of NAME=... in a key=value line
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<< "$2"; }

# median of three runs of a tcpdata command, by field
median3() {
    local f=$1; shift
    local vals=()
    for _ in 1 2 3; do
        local line
        line=$("$TCPDATA" "$@" 2>&1 | tail -1)
        if [ "$(field ok "$line")" != 1 ]; then
            echo "bench: tcpdata $* failed: $line" >&2
            exit 1
        fi
        vals+=("$(field "$f" "$line")")
    done
    printf '%s\n' "${vals[@]}" | sort -g | sed -n 2p
}

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# A fresh server with one registered cluster: CID and REG (its registration
# token) are what the agents present.
register_cluster() {
    "$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
        > "$WORK/boot.log" 2>&1 &
    local boot=$!
    for _ in $(seq 1 300); do
        curl -sfk https://127.0.0.1:"$HTTPS"/readyz > /dev/null && break
        sleep 0.1
    done
    local pw tok reply
    pw=$(sed -n 's/^Bootstrap admin password: //p' "$WORK/boot.log")
    tok=$(curl -sfk https://127.0.0.1:"$HTTPS"/v3/tokens \
          -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | json_field token)
    reply=$(curl -sfk -H "Authorization: Bearer $tok" https://127.0.0.1:"$HTTPS"/v3/clusters \
            -d '{"name":"bench"}')
    CID=$(json_field id <<< "$reply")
    REG=$(sed -n 's/.*"registration":{[^}]*"token":"\([^"]*\)".*/\1/p' <<< "$reply")
    kill "$boot"; wait "$boot" 2>/dev/null
    if [ -z "$CID" ] || [ -z "$REG" ]; then
        echo "bench: could not register a cluster (see $WORK/boot.log)" >&2; exit 1
    fi
}

start_stack() {   # start_stack WINDOW
    HTTPS=$(free_port); RELAY=$(free_port)
    register_cluster
    # Thousands of load-tool agents share one address: lift the per-address
    # guard, which is for strangers, not for a capacity measurement.
    "$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
        --max-conns-per-ip 0 --stream-window "$1" --tcp-relay 127.0.0.1:"$RELAY"="$CID"/127.0.0.1:"$TARGET" \
        > "$WORK/server.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
    wait_port "$HTTPS"
    SUM=$(sha256sum "$WORK/data/ca.crt" | cut -d' ' -f1)
    DROVER_SERVER=https://127.0.0.1:$HTTPS DROVER_TOKEN=$REG DROVER_CA_CHECKSUM=$SUM \
        DROVER_CLUSTER_ID=$CID DROVER_ALLOW_DIAL=127.0.0.1:$TARGET \
        DROVER_STREAM_WINDOW=$1 DROVER_HEALTH_LISTEN= "$BIN/drover-cluster-agent" \
        > "$WORK/agent.log" 2>&1 &
    AGENT=$!; PIDS+=("$AGENT")
    for _ in $(seq 1 100); do
        grep -q "tunnel up" "$WORK/server.log" && return 0
        sleep 0.1
    done
    echo "bench: agent did not connect" >&2; exit 1
}

stop_stack() {
    kill "$AGENT" "$SERVER" 2>/dev/null; wait "$AGENT" "$SERVER" 2>/dev/null
    rm -rf "$WORK/data"
}

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); printf '%-52s %14s %14s  %s\n' "$1" "$2" "$3" "$4"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%% of direct", 100 * a / b }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f µs", a - b }'; }

# ---- several replicas (docs/REPLICAS.md) ----
# Three servers on one throwaway PostgreSQL; the load tool plays the cluster
# agents of BENCH_REPLICA_CLUSTERS clusters spread over them, and one real
# agent with the stand-in apiserver serves the latency rows.
REPLICA_CLUSTERS=${BENCH_REPLICA_CLUSTERS:-300}
REPLICA_ROWS=()
rrow() { REPLICA_ROWS+=("| $1 | $2 | $3 | $4 |"); printf '%-52s %14s %14s  %s\n' "$1" "$2" "$3" "$4"; }
asuser() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

start_pg() {
    PGPORT=$(free_port)
    mkdir -p "$WORK/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" && chmod 755 "$WORK"
    asuser "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres > "$WORK/pg/initdb.log" 2>&1 ||
        { echo "bench: initdb failed" >&2; exit 1; }
    asuser "$PGBIN/postgres" -D "$WORK/pg/data" -p "$PGPORT" -k "$WORK/pg" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
        -c max_connections=200 > "$WORK/pg/server.log" 2>&1 &
    PIDS+=($!)
    wait_port "$PGPORT"
    sleep 0.5
    PGURL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
}

psql_q() { "$PGBIN/psql" -Atq "$PGURL" -c "$1"; }

replica_rows() {
    [ -n "$PGBIN" ] || { echo "bench: no PostgreSQL: replica rows skipped" >&2; return; }
    REPLICA_WHEN="$(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1 /proc/loadavg) at the start"
    start_pg
    echo "replica-bench-peer-token-0123456789" > "$WORK/peer.token"
    local ports=() pids=() i list=""
    for i in 0 1 2; do
        ports[$i]=$(free_port)
        list="$list${list:+,}https://127.0.0.1:${ports[$i]}"
    done
    for i in 0 1 2; do
        "$BIN/drover-server" --listen 127.0.0.1:"${ports[$i]}" --data-dir "$WORK/r$i" \
            --datastore "$PGURL" --peer-id "r$i" --peer-token-file "$WORK/peer.token" \
            > "$WORK/r$i.log" 2>&1 &
        pids[$i]=$!; PIDS+=($!)
        for _ in $(seq 1 300); do
            curl -sfk https://127.0.0.1:"${ports[$i]}"/readyz > /dev/null && break
            sleep 0.1
        done
    done
    local pw tok sum r0="https://127.0.0.1:${ports[0]}"
    pw=$(sed -n 's/^Bootstrap admin password: //p' "$WORK"/r?.log | head -1)
    tok=$(curl -sfk "$r0"/v3/tokens -d "{\"username\":\"admin\",\"password\":\"$pw\"}" |
          json_field token)
    sum=$(curl -sfk "$r0"/cacerts | sha256sum | cut -d' ' -f1)
    : > "$WORK/clusters.txt"
    for i in $(seq 1 "$REPLICA_CLUSTERS"); do
        local reply
        reply=$(curl -sfk -H "Authorization: Bearer $tok" "$r0"/v3/clusters -d "{\"name\":\"l$i\"}")
        echo "$(json_field id <<< "$reply") $(sed -n 's/.*"registration":{[^}]*"token":"\([^"]*\)".*/\1/p' <<< "$reply")" >> "$WORK/clusters.txt"
    done
    # The latency rows: one real agent on r0 only, its cluster read via r0 and via r1.
    local ks_port reply cid reg
    ks_port=$(free_port)
    "$TOOLS/kube-standin" --listen 127.0.0.1:"$ks_port" --data-dir "$WORK/rstandin" \
        --token system:serviceaccount:drover-system:drover=bench-sa-token \
        --admin system:serviceaccount:drover-system:drover --admin drover:admin \
        > "$WORK/rstandin.log" 2>&1 &
    PIDS+=($!)
    wait_port "$ks_port"
    echo bench-sa-token > "$WORK/sa.token"
    reply=$(curl -sfk -H "Authorization: Bearer $tok" "$r0"/v3/clusters -d '{"name":"lat"}')
    cid=$(json_field id <<< "$reply")
    reg=$(sed -n 's/.*"registration":{[^}]*"token":"\([^"]*\)".*/\1/p' <<< "$reply")
    DROVER_SERVER=$r0 DROVER_TOKEN=$reg DROVER_CA_CHECKSUM=$sum DROVER_CLUSTER_ID=$cid \
        DROVER_HEALTH_LISTEN= DROVER_KUBE_API=https://127.0.0.1:$ks_port \
        DROVER_KUBE_TOKEN_FILE=$WORK/sa.token DROVER_KUBE_CA_FILE=$WORK/rstandin/ca.crt \
        "$BIN/drover-cluster-agent" > "$WORK/ragent.log" 2>&1 &
    PIDS+=($!)
    local path="/k8s/clusters/$cid/api/v1/namespaces/default"
    for _ in $(seq 1 200); do
        curl -sfk -H "Authorization: Bearer $tok" "https://127.0.0.1:${ports[1]}$path" \
            > /dev/null && break
        sleep 0.1
    done
    for c in 1 16; do
        local a b
        a=$(wrk -t1 -c"$c" -d8s --latency -H "Authorization: Bearer $tok" \
            "https://127.0.0.1:${ports[1]}$path" 2>&1)
        b=$(wrk -t1 -c"$c" -d8s --latency -H "Authorization: Bearer $tok" "$r0$path" 2>&1)
        if grep -q "Non-2xx" <<< "$a$b"; then echo "bench: replica GET got errors" >&2; fi
        local ra rb
        ra=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<< "$a")
        rb=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<< "$b")
        rrow "GET via another replica, $c client(s), requests/s" "$ra" "$rb" "$(pct "$ra" "$rb" | sed 's/direct/local/')"
        for p in 50% 99%; do
            local la lb
            la=$(wrk_us "$p" <<< "$a"); lb=$(wrk_us "$p" <<< "$b")
            rrow "GET via another replica, $c client(s), p${p%\%} (µs)" "$la" "$lb" "$(diff_us "$la" "$lb")"
        done
    done
    # Recovery: the load tool's agents start spread over the three; kill -9 one.
    "$LOAD" --server "$list" --clusters "$WORK/clusters.txt" --ca-checksum "$sum" \
        --rate 1000 > "$WORK/rload.log" 2>&1 &
    local lp=$!; PIDS+=($lp)
    local n=$REPLICA_CLUSTERS held=0
    for _ in $(seq 1 600); do
        held=$(psql_q "SELECT COUNT(DISTINCT cluster_id) FROM peer_tunnels WHERE kind = 'cluster-agent'")
        [ "${held:-0}" -ge "$((n + 1))" ] && break
        sleep 0.1
    done
    local on2
    on2=$(psql_q "SELECT COUNT(*) FROM peer_tunnels WHERE peer_id = 'r2'")
    local t0 t1 t2
    t0=$(date +%s%N)
    kill -9 "${pids[2]}"
    for _ in $(seq 1 1200); do
        held=$(psql_q "SELECT COUNT(DISTINCT cluster_id) FROM peer_tunnels WHERE peer_id IN ('r0', 'r1') AND kind = 'cluster-agent'")
        [ "${held:-0}" -ge "$((n + 1))" ] && break
        sleep 0.05
    done
    t1=$(date +%s%N)
    for _ in $(seq 1 1200); do
        local live
        live=$(psql_q "SELECT COUNT(*) FROM peers WHERE expires_at > (extract(epoch from now()) * 1000)::bigint")
        [ "$live" = 2 ] && break
        sleep 0.1
    done
    t2=$(date +%s%N)
    rrow "all $n clusters held again after kill -9 of 1 of 3 replicas (ms)" \
        "$(( (t1 - t0) / 1000000 ))" "-" "$on2 agents moved; load tool redials at once"
    rrow "dead replica's membership lease gone (ms)" "$(( (t2 - t0) / 1000000 ))" "-" \
        "lease = dead-after (15 s default)"
    kill "$lp" 2>/dev/null; wait "$lp" 2>/dev/null
    for i in 0 1; do kill "${pids[$i]}" 2>/dev/null; done
}

replica_section() {
    echo "## Several replicas"
    echo
    echo "Three replicas on one PostgreSQL (docs/REPLICAS.md). The GET rows compare a kube"
    echo "proxy GET sent to a replica that does not hold the cluster's agent (carried over"
    echo "the peer link) with the same GET sent to the replica that holds it. The recovery"
    echo "rows kill -9 one replica while the load tool plays $REPLICA_CLUSTERS cluster agents"
    echo "spread over the three, and time until every cluster's agent is held by a live"
    echo "replica (as recorded in the datastore)."
    echo
    echo "- Measured: $REPLICA_WHEN"
    echo "| measurement | drover | local | comparison |"
    echo "|---|---:|---:|---|"
    printf '%s\n' "${REPLICA_ROWS[@]}"
}

# BENCH_ONLY=replicas refreshes only that section of docs/BENCHMARKS.md.
if [ "${BENCH_ONLY:-}" = replicas ]; then
    wrk_us() { awk -v p="$1" '$1 == p { v = $2; u = 1;
        if (v ~ /us$/) { sub(/us$/, "", v) } else if (v ~ /ms$/) { sub(/ms$/, "", v); u = 1000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); u = 1000000 }
        printf "%.0f", v * u }'; }
    replica_rows
    if grep -q '^## Several replicas' "$OUT"; then
        awk '/^## Several replicas/ {skip = 1; next} skip && /^## / {skip = 0} !skip' "$OUT" \
            > "$WORK/bench.md"
    else
        cp "$OUT" "$WORK/bench.md"
    fi
    { cat "$WORK/bench.md"; echo; replica_section; } | cat -s > "$OUT"
    echo "wrote $OUT"
    exit 0
fi

# Takeover: a cluster agent and two node agents at the stand-in; the time
# from SIGKILL (or SIGSTOP) of the cluster agent to the first GET that comes
# back 200 through a node agent, over TAKEOVER_RUNS runs each. The server
# drops a silent agent after dead-after (TAKEOVER_DEAD_AFTER here).
TAKEOVER_RUNS=${BENCH_TAKEOVER_RUNS:-7}
TAKEOVER_PING=1s
TAKEOVER_DEAD_AFTER=5s
api_via() {   # api_via TOKEN -> the cluster's connection.via
    curl -sfk -H "Authorization: Bearer $1" https://127.0.0.1:"$HTTPS"/v3/clusters/"$CID" |
        sed -n 's/.*"connection":{"via":"\([^"]*\)".*/\1/p'
}
start_takeover_agent() {   # start_takeover_agent BINARY LOG [NODE]
    local node=(); [ -n "${3:-}" ] && node=(DROVER_NODE_NAME="$3")
    env "${node[@]}" DROVER_SERVER=https://127.0.0.1:$HTTPS DROVER_TOKEN=$REG \
        DROVER_CA_CHECKSUM=$SUM DROVER_CLUSTER_ID=$CID DROVER_HEALTH_LISTEN= \
        DROVER_PING_INTERVAL=$TAKEOVER_PING DROVER_DEAD_AFTER=$TAKEOVER_DEAD_AFTER \
        DROVER_KUBE_API=https://127.0.0.1:$KS_PORT DROVER_KUBE_TOKEN_FILE=$WORK/sa.token \
        DROVER_KUBE_CA_FILE=$WORK/standin/ca.crt "$BIN/$1" > "$WORK/$2" 2>&1 &
    LAST=$!; PIDS+=("$LAST")
    disown "$LAST"   # killed on purpose: no "Killed" notice from bash
}
wait_via() {   # wait_via TOKEN WANT: until connection.via is WANT (30 s)
    for _ in $(seq 1 300); do
        [ "$(api_via "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "bench: cluster link never became $2 (logs in $WORK)" >&2; exit 1
}
stats3() { sort -g | awk '{ v[NR] = $1 } END {
    printf "%.0f / %.0f / %.0f", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR] }'; }
takeover_rows() {
    KS_PORT=$(free_port)
    "$TOOLS/kube-standin" --listen 127.0.0.1:"$KS_PORT" --data-dir "$WORK/standin" \
        --token system:serviceaccount:drover-system:drover=bench-sa-token \
        --admin system:serviceaccount:drover-system:drover --admin drover:admin \
        > "$WORK/standin.log" 2>&1 &
    PIDS+=($!)
    wait_port "$KS_PORT"
    echo bench-sa-token > "$WORK/sa.token"
    HTTPS=$(free_port)
    register_cluster
    "$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
        --ping-interval "$TAKEOVER_PING" --dead-after "$TAKEOVER_DEAD_AFTER" \
        > "$WORK/server.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
    wait_port "$HTTPS"
    SUM=$(sha256sum "$WORK/data/ca.crt" | cut -d' ' -f1)
    local pw tok n
    pw=$(sed -n 's/^Bootstrap admin password: //p' "$WORK/boot.log")
    tok=$(curl -sfk https://127.0.0.1:"$HTTPS"/v3/tokens \
          -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | json_field token)
    local nodes=()
    for n in node-1 node-2; do
        start_takeover_agent drover-node-agent "$n.log" "$n"; nodes+=("$LAST")
    done
    for _ in $(seq 1 300); do
        [ "$(grep -c 'can stand in' "$WORK/server.log")" -ge 2 ] && break
        sleep 0.1
    done
    start_takeover_agent drover-cluster-agent agent.log; AGENT=$LAST
    wait_via "$tok" cluster-agent
    sleep "${TAKEOVER_DEAD_AFTER%s}"   # past the server's start-up grace (dead-after)
    local path=/k8s/clusters/$CID/api/v1/namespaces/default
    for sig in KILL STOP; do
        local vals=() i line
        for i in $(seq 1 "$TAKEOVER_RUNS"); do
            sleep 1   # past the cluster agent's first report and RBAC push
            line=$("$TOOLS/takeover" --port "$HTTPS" --path "$path" --token "$tok" \
                   --pid "$AGENT" --signal "$sig" 2>&1 | tail -1)
            if [ "$(field ok "$line")" != 1 ]; then
                echo "bench: takeover after SIG$sig failed: $line (logs in $WORK)" >&2; exit 1
            fi
            vals+=("$(field ms "$line")")
            if [ "$sig" = KILL ]; then
                start_takeover_agent drover-cluster-agent agent.log; AGENT=$LAST
            else
                kill -CONT "$AGENT"
            fi
            wait_via "$tok" cluster-agent
        done
        local what="first request through a node agent after SIG$sig of the cluster agent (ms)"
        local aim="aim < 1000 ms"
        [ "$sig" = STOP ] && { what="$what, dead-after $TAKEOVER_DEAD_AFTER"; aim="aim < dead-after + 1 s"; }
        row "$what" "$(printf '%s\n' "${vals[@]}" | stats3)" "-" \
            "min / median / max of $TAKEOVER_RUNS runs; $aim"
    done
    kill "${nodes[@]}" 2>/dev/null
    stop_stack
}
# BENCH_ONLY=takeover runs just that section and prints it, leaving the file alone.
if [ -n "${BENCH_ONLY:-}" ]; then
    "${BENCH_ONLY}_rows"
    exit 0
fi

TARGET=$(free_port)
"$TCPDATA" serve --listen 127.0.0.1:"$TARGET" > "$WORK/target.log" 2>&1 &
PIDS+=($!)
wait_port "$TARGET"

echo "drover benchmarks ($(nproc) cores, $BYTES-byte transfers, medians of 3)"
for WIN in 256KiB 1MiB; do
    start_stack "$WIN"
    T="127.0.0.1:$RELAY"; D="127.0.0.1:$TARGET"
    tag="window $WIN"
    a=$(median3 mbps download --raw --connect "$T" --bytes "$BYTES")
    b=$(median3 mbps download --raw --connect "$D" --bytes "$BYTES")
    row "1 stream, agent→server (MB/s), $tag" "$a" "$b" "$(pct "$a" "$b")"
    a=$(median3 mbps upload --raw --connect "$T" --bytes "$BYTES")
    b=$(median3 mbps upload --raw --connect "$D" --bytes "$BYTES")
    row "1 stream, server→agent (MB/s), $tag" "$a" "$b" "$(pct "$a" "$b")"
    a=$(median3 mbps download --raw --streams 8 --connect "$T" --bytes $((BYTES / 4)))
    b=$(median3 mbps download --raw --streams 8 --connect "$D" --bytes $((BYTES / 4)))
    row "8 streams aggregate (MB/s), $tag" "$a" "$b" "$(pct "$a" "$b")"
    if [ "$WIN" = 256KiB ]; then
        for kind in open new; do
            extra=(); count=5000
            [ $kind = new ] && { extra=(--new-conn); count=1000; }
            lt=$("$TCPDATA" rtt --connect "$T" --count $count "${extra[@]}" | tail -1)
            ld=$("$TCPDATA" rtt --connect "$D" --count $count "${extra[@]}" | tail -1)
            for p in p50 p99; do
                a=$(field ${p}_us "$lt"); b=$(field ${p}_us "$ld")
                what="100-byte round trip, $kind stream per request, $p (µs)"
                [ $kind = open ] && what="100-byte round trip on an open stream, $p (µs)"
                row "$what" "$a" "$b" "$(diff_us "$a" "$b")"
            done
        done
    fi
    stop_stack
done

# kube-apiserver GETs through drover versus straight to the stand-in.
# wrk's latency lines: "50%  1.23ms" -> microseconds.
wrk_us() { awk -v p="$1" '$1 == p { v = $2; u = 1;
    if (v ~ /us$/) { sub(/us$/, "", v) } else if (v ~ /ms$/) { sub(/ms$/, "", v); u = 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); u = 1000000 }
    printf "%.0f", v * u }'; }
kube_rows() {
    local ks_port tok kc_url
    ks_port=$(free_port)
    "$TOOLS/kube-standin" --listen 127.0.0.1:"$ks_port" --data-dir "$WORK/standin" \
        --token system:serviceaccount:drover-system:drover=bench-sa-token \
        --admin system:serviceaccount:drover-system:drover --admin drover:admin \
        > "$WORK/standin.log" 2>&1 &
    PIDS+=($!)
    wait_port "$ks_port"
    echo bench-sa-token > "$WORK/sa.token"
    HTTPS=$(free_port); RELAY=$(free_port)
    register_cluster
    "$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
        > "$WORK/server.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
    wait_port "$HTTPS"
    SUM=$(sha256sum "$WORK/data/ca.crt" | cut -d' ' -f1)
    DROVER_SERVER=https://127.0.0.1:$HTTPS DROVER_TOKEN=$REG DROVER_CA_CHECKSUM=$SUM \
        DROVER_CLUSTER_ID=$CID DROVER_HEALTH_LISTEN= \
        DROVER_KUBE_API=https://127.0.0.1:$ks_port DROVER_KUBE_TOKEN_FILE=$WORK/sa.token \
        DROVER_KUBE_CA_FILE=$WORK/standin/ca.crt "$BIN/drover-cluster-agent" \
        > "$WORK/agent.log" 2>&1 &
    AGENT=$!; PIDS+=("$AGENT")
    for _ in $(seq 1 100); do grep -q "tunnel up" "$WORK/server.log" && break; sleep 0.1; done
    local pw
    pw=$(sed -n 's/^Bootstrap admin password: //p' "$WORK/boot.log")
    tok=$(curl -sfk https://127.0.0.1:"$HTTPS"/v3/tokens \
          -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | json_field token)
    local via="https://127.0.0.1:$HTTPS/k8s/clusters/$CID/api/v1/namespaces/default"
    local direct="https://127.0.0.1:$ks_port/api/v1/namespaces/default"
    for c in 1 64; do
        local a b
        a=$(wrk -t1 -c"$c" -d8s --latency -H "Authorization: Bearer $tok" "$via" 2>&1)
        b=$(wrk -t1 -c"$c" -d8s --latency -H "Authorization: Bearer bench-sa-token" "$direct" 2>&1)
        local ra rb
        ra=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<< "$a")
        rb=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<< "$b")
        if grep -q "Non-2xx" <<< "$a$b"; then echo "bench: kube GET got errors" >&2; fi
        row "GET namespace, $c client(s), requests/s" "$ra" "$rb" "$(pct "$ra" "$rb")"
        for p in 50% 99%; do
            local la lb
            la=$(wrk_us "$p" <<< "$a"); lb=$(wrk_us "$p" <<< "$b")
            row "GET namespace, $c client(s), p${p%\%} (µs)" "$la" "$lb" "$(diff_us "$la" "$lb")"
        done
    done
    stop_stack
}
kube_rows
takeover_rows

# Memory per idle tunnel: N node-agent tunnels from the load tool.
start_stack 256KiB
for N in $IDLE_COUNTS; do
    before=$(awk '/VmRSS/ {print $2}' /proc/"$SERVER"/status)
    "$LOAD" --server https://127.0.0.1:"$HTTPS" --token "$REG" --cluster "$CID" \
        --ca-checksum "$SUM" --count "$N" --rate 2000 --prefix "n$N" > "$WORK/load.log" 2>&1 &
    LP=$!; PIDS+=("$LP")
    for _ in $(seq 1 600); do grep -q '^connected=' "$WORK/load.log" && break; sleep 0.1; done
    secs=$(field secs "$(grep '^connected=' "$WORK/load.log")")
    sleep 12     # past one heap-trim period, pings flowing
    after=$(awk '/VmRSS/ {print $2}' /proc/"$SERVER"/status)
    per=$(( (after - before) * 1024 / N ))
    row "server RSS per idle TLS tunnel, $N agents (bytes)" "$per" "-" \
        "RSS $before→$after KiB; all up in ${secs}s"
    kill "$LP"; wait "$LP" 2>/dev/null
    sleep 12
done
stop_stack
replica_rows

{
    echo "# Benchmarks"
    echo
    echo "Produced by \`make bench\` (tests/bench/run.sh); re-run it to refresh this file."
    echo "Every row is measured beside its baseline in the same run, on loopback, over TLS as"
    echo "agents really connect. The tunnel is driven through the server's relay port"
    echo "(setting tcp-relay), which opens one stream per accepted connection to a tcpdata"
    echo "target behind the agent; \"direct\" is the same tcpdata client talking to the"
    echo "target over loopback TCP. Throughput uses \`tcpdata --raw\` (no hashing) so the"
    echo "load tool is not the bottleneck."
    echo
    echo "- Date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)"
    echo "- drover $("$BIN/drover-server" --version 2>/dev/null | awk '{print $2}'), OpenSSL $(openssl version | awk '{print $2}')"
    echo
    echo "| measurement | drover | direct | comparison |"
    echo "|---|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    if [ -f "$ROOT/docs/BENCHMARKS.notes.md" ]; then cat "$ROOT/docs/BENCHMARKS.notes.md"; fi
    if [ ${#REPLICA_ROWS[@]} -gt 0 ]; then echo; replica_section; fi
} > "$OUT"
echo "wrote $OUT"
