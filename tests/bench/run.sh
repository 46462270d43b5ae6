#!/bin/bash
# make bench: drover's benchmarks, each beside its baseline in the same run.
# Usage: tests/bench/run.sh BIN_DIR TOOLS_DIR   (BENCH_ONLY=takeover|replicas|scale: that
# section only; BENCH_SCALE=full: the scale section at 55,000 tunnels)
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

# wrk's latency lines: "50%  1.23ms" -> microseconds.
wrk_us() { awk -v p="$1" '$1 == p { v = $2; u = 1;
    if (v ~ /us$/) { sub(/us$/, "", v) } else if (v ~ /ms$/) { sub(/ms$/, "", v); u = 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); u = 1000000 }
    printf "%.0f", v * u }'; }

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

# admin_token URL LOG...: an admin token from the server at URL, logged in
# with the bootstrap password its first start wrote to one of the LOGs.
admin_token() {
    local url=$1 pw; shift
    pw=$(sed -n 's/^Bootstrap admin password: //p' "$@" | head -1)
    curl -sfk "$url"/v3/tokens -d "{\"username\":\"admin\",\"password\":\"$pw\"}" |
        json_field token
}

# start_standin NAME: the stand-in apiserver (data dir $WORK/NAME, log
# $WORK/NAME.log) with the agents' service account (token bench-sa-token, in
# $WORK/sa.token) and drover:admin as admins. Sets KS_PORT, its port, and
# KUBE_ENV, the agent settings that point at it.
start_standin() {
    KS_PORT=$(free_port)
    "$TOOLS/kube-standin" --listen 127.0.0.1:"$KS_PORT" --data-dir "$WORK/$1" \
        --token system:serviceaccount:drover-system:drover=bench-sa-token \
        --admin system:serviceaccount:drover-system:drover --admin drover:admin \
        > "$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$KS_PORT"
    echo bench-sa-token > "$WORK/sa.token"
    KUBE_ENV=(DROVER_KUBE_API="https://127.0.0.1:$KS_PORT" DROVER_KUBE_TOKEN_FILE="$WORK/sa.token"
              DROVER_KUBE_CA_FILE="$WORK/$1/ca.crt")
}

# start_agent BINARY LOG [NAME=VALUE...]: a drover agent ($BIN/BINARY, output
# to $WORK/LOG) of cluster $CID with registration token $REG, at the server
# https://127.0.0.1:$HTTPS pinned to $SUM, plus the settings given. Its pid
# is LAST (and in PIDS).
start_agent() {
    local bin=$1 log=$2; shift 2
    env DROVER_SERVER="https://127.0.0.1:$HTTPS" DROVER_TOKEN="$REG" DROVER_CA_CHECKSUM="$SUM" \
        DROVER_CLUSTER_ID="$CID" DROVER_HEALTH_LISTEN= "$@" "$BIN/$bin" > "$WORK/$log" 2>&1 &
    LAST=$!; PIDS+=("$LAST")
}

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
    local tok reply
    tok=$(admin_token https://127.0.0.1:"$HTTPS" "$WORK/boot.log")
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
    start_agent drover-cluster-agent agent.log DROVER_ALLOW_DIAL=127.0.0.1:"$TARGET" \
        DROVER_STREAM_WINDOW="$1"
    AGENT=$LAST
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
    # start_agent reads HTTPS, SUM, CID and REG: here r0's and the "lat" cluster's.
    local tok HTTPS=${ports[0]} SUM CID REG r0="https://127.0.0.1:${ports[0]}"
    tok=$(admin_token "$r0" "$WORK"/r?.log)
    SUM=$(curl -sfk "$r0"/cacerts | sha256sum | cut -d' ' -f1)
    : > "$WORK/clusters.txt"
    for i in $(seq 1 "$REPLICA_CLUSTERS"); do
        local reply
        reply=$(curl -sfk -H "Authorization: Bearer $tok" "$r0"/v3/clusters -d "{\"name\":\"l$i\"}")
        echo "$(json_field id <<< "$reply") $(sed -n 's/.*"registration":{[^}]*"token":"\([^"]*\)".*/\1/p' <<< "$reply")" >> "$WORK/clusters.txt"
    done
    # The latency rows: one real agent on r0 only, its cluster read via r0 and via r1.
    local reply
    start_standin rstandin
    reply=$(curl -sfk -H "Authorization: Bearer $tok" "$r0"/v3/clusters -d '{"name":"lat"}')
    CID=$(json_field id <<< "$reply")
    REG=$(sed -n 's/.*"registration":{[^}]*"token":"\([^"]*\)".*/\1/p' <<< "$reply")
    start_agent drover-cluster-agent ragent.log "${KUBE_ENV[@]}"
    local path="/k8s/clusters/$CID/api/v1/namespaces/default"
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
    "$LOAD" --server "$list" --clusters "$WORK/clusters.txt" --ca-checksum "$SUM" \
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
        "$(( (t1 - t0) / 1000000 ))" "-" "$on2 agents moved; load tool redials with the agents' backoff"
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

# ---- scale (issue #8): many clusters' agents from one load-tool process ----
# BENCH_SCALE=full plays 5,000 clusters x (1 cluster agent + 10 node agents) =
# 55,000 tunnels and churns for 10 minutes; the default is 200 x (1 + 9) =
# 2,000 tunnels and 1 minute. BENCH_SCALE_CLUSTERS, BENCH_SCALE_NODES and
# BENCH_SCALE_CHURN_SECS override either. Both sides need one descriptor per
# tunnel: the script raises its open-files limit (ulimit -n, root or a high
# enough hard limit), which the server and the load tool inherit.
if [ "${BENCH_SCALE:-}" = full ]; then
    SCALE_CLUSTERS=${BENCH_SCALE_CLUSTERS:-5000}; SCALE_NODES=${BENCH_SCALE_NODES:-10}
    SCALE_CHURN_SECS=${BENCH_SCALE_CHURN_SECS:-600}
else
    SCALE_CLUSTERS=${BENCH_SCALE_CLUSTERS:-200}; SCALE_NODES=${BENCH_SCALE_NODES:-9}
    SCALE_CHURN_SECS=${BENCH_SCALE_CHURN_SECS:-60}
fi
SCALE_ROWS=()
srow() { SCALE_ROWS+=("| $1 | $2 | $3 |"); printf '%-60s %14s  %s\n' "$1" "$2" "$3"; }
rss_kib() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
metric() { curl -sfk https://127.0.0.1:"$SPORT"/metrics | awk -v m="$1" 'index($0, m) == 1 {s += $2} END {print s + 0}'; }
wait_line() {   # wait_line FILE REGEX SECS: the last matching line, once there
    local i
    for i in $(seq 1 $(($3 * 10))); do
        grep -qE "$2" "$1" && { grep -E "$2" "$1" | tail -1; return 0; }
        sleep 0.1
    done
    echo "bench: no '$2' in $1 after $3 s" >&2; return 1
}
start_scale_server() {
    "$BIN/drover-server" --listen 127.0.0.1:"$SPORT" --data-dir "$WORK/scale" \
        --max-conns-per-ip 0 >> "$WORK/scale-server.log" 2>&1 &
    SSERVER=$!; PIDS+=("$SSERVER")
}
# Registers SCALE_CLUSTERS clusters through the API: four curls, each reusing
# one connection for its share of POST /v3/clusters.
register_scale_clusters() {
    local tok=$1 j i pids=()
    for j in 0 1 2 3; do
        for i in $(seq "$j" 4 $((SCALE_CLUSTERS - 1))); do
            printf 'url = "https://127.0.0.1:%s/v3/clusters"\ndata = "{\\"name\\":\\"s%s\\"}"\n' "$SPORT" "$i"
            printf 'header = "Authorization: Bearer %s"\ninsecure\nsilent\nwrite-out = "\\n"\nnext\n' "$tok"
        done | sed '$d' > "$WORK/reg$j.cfg"   # no "next" after the last
        curl -K "$WORK/reg$j.cfg" > "$WORK/reg$j.out" &
        pids+=($!)
    done
    wait "${pids[@]}"
    cat "$WORK"/reg?.out | while read -r reply; do
        [ -n "$reply" ] || continue
        echo "$(json_field id <<< "$reply") $(sed -n 's/.*"registration":{[^}]*"token":"\([^"]*\)".*/\1/p' <<< "$reply")"
    done | awk 'NF == 2' > "$WORK/scale-clusters.txt"
}
scale_rows() {
    local total=$((SCALE_CLUSTERS * (1 + SCALE_NODES)))
    local want=$((total + 1024))
    [ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$((want * 2))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    SCALE_CAPPED=""
    if [ "$(ulimit -n)" -lt "$want" ]; then
        # Without the right to raise the hard limit (CAP_SYS_RESOURCE), run
        # the most clusters that fit under it rather than nothing.
        local fit=$(( ($(ulimit -n) - 1024) / (1 + SCALE_NODES) ))
        SCALE_CAPPED="capped at $fit of $SCALE_CLUSTERS clusters: the hard open-files limit here is $(ulimit -Hn) and cannot be raised"
        echo "bench: scale: $SCALE_CAPPED" >&2
        SCALE_CLUSTERS=$fit
        total=$((SCALE_CLUSTERS * (1 + SCALE_NODES)))
    fi
    SCALE_WHEN="$(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1 /proc/loadavg) at the start"
    SPORT=$(free_port)
    start_scale_server
    local pw tok sum hz t0 t1
    for _ in $(seq 1 300); do
        curl -sfk https://127.0.0.1:"$SPORT"/readyz > /dev/null && break
        sleep 0.1
    done
    pw=$(sed -n 's/^Bootstrap admin password: //p' "$WORK/scale-server.log")
    tok=$(curl -sfk https://127.0.0.1:"$SPORT"/v3/tokens \
          -d "{\"username\":\"admin\",\"password\":\"$pw\"}" | json_field token)
    sum=$(sha256sum "$WORK/scale/ca.crt" | cut -d' ' -f1)
    t0=$(date +%s%N)
    register_scale_clusters "$tok"
    t1=$(date +%s%N)
    local n
    n=$(wc -l < "$WORK/scale-clusters.txt")
    [ "$n" = "$SCALE_CLUSTERS" ] || { echo "bench: registered $n of $SCALE_CLUSTERS clusters" >&2; exit 1; }
    srow "register $n clusters through POST /v3/clusters (s)" \
        "$(awk -v t=$((t1 - t0)) 'BEGIN {printf "%.1f", t / 1e9}')" "4 curls, keep-alive"
    sleep 12    # past a heap-trim period
    local before after
    before=$(rss_kib "$SSERVER")
    "$LOAD" --server https://127.0.0.1:"$SPORT" --clusters "$WORK/scale-clusters.txt" \
        --nodes "$SCALE_NODES" --report 30 --ca-checksum "$sum" --rate 1000 \
        --source-ips 127.0.0.2-127.0.0.9 --churn $((total / 500 + 1)) --stats 5 --max-inflight 256 \
        > "$WORK/scale-load.log" 2>"$WORK/scale-load.err" &
    local lp=$!; PIDS+=("$lp")
    local line
    line=$(wait_line "$WORK/scale-load.log" '^connected=' 3600) || exit 1
    srow "$total tunnels up ($SCALE_CLUSTERS clusters x (1 + $SCALE_NODES)), at most 1000 new/s (s)" \
        "$(field secs "$line")" "load tool over 127.0.0.2-9 source addresses"
    sleep 15    # a report round (30 s) is under way, pings flowing
    after=$(rss_kib "$SSERVER")
    srow "server RSS per tunnel, $total tunnels (bytes)" "$(( (after - before) * 1024 / total ))" \
        "RSS $before→$after KiB"
    [ -z "$SCALE_CAPPED" ] || srow "server RSS at 55,000 tunnels, extrapolated (MiB)" \
        "$(( (after - before) * 55000 / total / 1024 + before / 1024 ))" "per-tunnel figure x 55,000"
    grep -q "report not stored" "$WORK/scale-server.log" && echo "bench: reports refused (see $WORK/scale-server.log)" >&2
    hz=$(getconf CLK_TCK)
    local c0 c1 l0 l1
    c0=$(cpu_ticks "$SSERVER"); l0=$(cpu_ticks "$lp")
    sleep 30
    c1=$(cpu_ticks "$SSERVER"); l1=$(cpu_ticks "$lp")
    srow "server CPU at rest, $total tunnels, pings 5 s, reports 30 s (% of one core)" \
        "$(awk -v d=$((c1 - c0)) -v h="$hz" 'BEGIN {printf "%.1f", 100 * d / h / 30}')" \
        "over 30 s; the load tool: $(awk -v d=$((l1 - l0)) -v h="$hz" 'BEGIN {printf "%.1f", 100 * d / h / 30}')%"
    local cid out
    cid=$(head -1 "$WORK/scale-clusters.txt" | cut -d' ' -f1)
    for path in "/v3/clusters?limit=100" "/v3/clusters/$cid"; do
        out=$(wrk -t1 -c4 -d15s --latency -H "Authorization: Bearer $tok" \
              "https://127.0.0.1:$SPORT$path" 2>&1)
        grep -q "Non-2xx" <<< "$out" && echo "bench: GET $path got errors" >&2
        srow "GET $path while held, 4 clients, p50 / p99 (µs)" \
            "$(wrk_us 50% <<< "$out") / $(wrk_us 99% <<< "$out")" \
            "$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<< "$out") requests/s"
    done
    line=$(grep '^stats' "$WORK/scale-load.log" | tail -1)
    srow "reports answered / failed so far" "$(field reports_ok "$line") / $(field reports_failed "$line")" \
        "each cluster agent every 30 s"
    # Churn: about 0.2% of the agents dropped each second, each coming back
    # with the agents' backoff; RSS at the start and end.
    local r0 r1 d0 d1
    d0=$(field downs "$(grep '^stats' "$WORK/scale-load.log" | tail -1)")
    r0=$(rss_kib "$SSERVER")
    kill -USR1 "$lp"
    sleep "$SCALE_CHURN_SECS"
    kill -USR1 "$lp"
    line=$(grep '^stats' "$WORK/scale-load.log" | tail -1)
    d1=$(field downs "$line")
    r1=$(rss_kib "$SSERVER")
    srow "server RSS over $SCALE_CHURN_SECS s of churn, start → end (KiB)" "$r0 → $r1" \
        "$((d1 - d0)) drops and redials ($((total / 500 + 1))/s); $(field connected "$line") up at the end"
    for _ in $(seq 1 600); do
        [ "$(field connected "$(grep '^stats' "$WORK/scale-load.log" | tail -1)")" = "$total" ] && break
        sleep 1
    done
    sleep 15
    srow "server RSS after churn stops and all are back (KiB)" "$(rss_kib "$SSERVER")" "-"
    # Restart: SIGTERM, start again on the same data; time from the first
    # dropped tunnel to all up again, as the load tool sees it.
    local refused0 fails0
    fails0=$(field failures "$(grep '^stats' "$WORK/scale-load.log" | tail -1)")
    local nallup
    nallup=$(grep -c '^allup' "$WORK/scale-load.log")
    kill "$SSERVER"; wait "$SSERVER" 2>/dev/null
    start_scale_server
    for _ in $(seq 1 36000); do
        [ "$(grep -c '^allup' "$WORK/scale-load.log")" -gt "$nallup" ] && break
        sleep 0.1
    done
    line=$(grep '^allup' "$WORK/scale-load.log" | tail -1)
    refused0=$(metric drover_connections_refused_total)
    srow "all $total back after a server restart (ms)" "$(field after_ms "$line")" \
        "from the first drop; peak $(field peak_ups_per_sec "$line") tunnels up/s; $(( $(field failures "$line") - fails0 )) dials failed and were retried with backoff; server refused $refused0 at accept"
    sleep 15    # past a heap-trim period
    srow "server RSS 15 s after all are back from the restart (KiB)" "$(rss_kib "$SSERVER")" \
        "a new process: compare with the first RSS row"
    kill "$lp" 2>/dev/null; wait "$lp" 2>/dev/null
    kill "$SSERVER" 2>/dev/null; wait "$SSERVER" 2>/dev/null
}
scale_section() {
    echo "## Scale"
    echo
    echo "One server on SQLite with \`--max-conns-per-ip 0\`; \`tests/tools/loadagents\` in"
    echo "one process plays the cluster agent and $SCALE_NODES node agents of each of"
    echo "$SCALE_CLUSTERS clusters registered through the API, over 8 source addresses"
    echo "(127.0.0.2-9), with every agent's pings (5 s; the server answers them and"
    echo "pings only an agent it has not heard from) and a report (10 nodes, ~2 KB)"
    echo "from each cluster agent every 30 s. Server, load tool and script share the"
    echo "2 cores. Churn drops about 0.2% of the agents each second (every agent about"
    echo "once in 8 minutes); every redial, after churn or the restart, waits the agents'"
    echo "own backoff (500 ms doubling to 30 s, full jitter). \`make bench\` runs the"
    echo "small version; \`BENCH_SCALE=full\` the issue's 5,000 x (1 + 10) with 10 minutes"
    echo "of churn; \`BENCH_ONLY=scale\` runs this section alone."
    echo
    echo "- Measured: $SCALE_WHEN ($([ "${BENCH_SCALE:-}" = full ] && echo "BENCH_SCALE=full" || echo "small version"))"
    [ -z "$SCALE_CAPPED" ] || echo "- Run $SCALE_CAPPED (see \"Reading these figures\" above)."
    echo
    echo "| measurement | value | notes |"
    echo "|---|---:|---|"
    printf '%s\n' "${SCALE_ROWS[@]}"
}

# replace_section TITLE FUNCTION: docs/BENCHMARKS.md with its "## TITLE"
# section replaced by (or, when missing, followed by) FUNCTION's output.
replace_section() {
    if grep -q "^## $1\$" "$OUT"; then
        awk -v t="## $1" '$0 == t {skip = 1; next} skip && /^## / {skip = 0} !skip' "$OUT" \
            > "$WORK/bench.md"
    else
        cp "$OUT" "$WORK/bench.md"
    fi
    { cat "$WORK/bench.md"; echo; "$2"; } | cat -s > "$OUT"
    echo "wrote $OUT"
}

# BENCH_ONLY=replicas or =scale refreshes only that section of docs/BENCHMARKS.md.
if [ "${BENCH_ONLY:-}" = replicas ]; then
    replica_rows
    replace_section "Several replicas" replica_section
    exit 0
fi
if [ "${BENCH_ONLY:-}" = scale ]; then
    scale_rows
    [ ${#SCALE_ROWS[@]} -gt 0 ] && replace_section "Scale" scale_section
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
    start_agent "$1" "$2" "${node[@]}" DROVER_PING_INTERVAL="$TAKEOVER_PING" \
        DROVER_DEAD_AFTER="$TAKEOVER_DEAD_AFTER" "${KUBE_ENV[@]}"
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
    start_standin standin
    HTTPS=$(free_port)
    register_cluster
    "$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
        --ping-interval "$TAKEOVER_PING" --dead-after "$TAKEOVER_DEAD_AFTER" \
        > "$WORK/server.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
    wait_port "$HTTPS"
    SUM=$(sha256sum "$WORK/data/ca.crt" | cut -d' ' -f1)
    local tok n
    tok=$(admin_token https://127.0.0.1:"$HTTPS" "$WORK/boot.log")
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
kube_rows() {
    local tok
    start_standin standin
    HTTPS=$(free_port); RELAY=$(free_port)
    register_cluster
    "$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
        > "$WORK/server.log" 2>&1 &
    SERVER=$!; PIDS+=("$SERVER")
    wait_port "$HTTPS"
    SUM=$(sha256sum "$WORK/data/ca.crt" | cut -d' ' -f1)
    start_agent drover-cluster-agent agent.log "${KUBE_ENV[@]}"
    AGENT=$LAST
    for _ in $(seq 1 100); do grep -q "tunnel up" "$WORK/server.log" && break; sleep 0.1; done
    tok=$(admin_token https://127.0.0.1:"$HTTPS" "$WORK/boot.log")
    local via="https://127.0.0.1:$HTTPS/k8s/clusters/$CID/api/v1/namespaces/default"
    local direct="https://127.0.0.1:$KS_PORT/api/v1/namespaces/default"
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
scale_rows

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
    if [ ${#SCALE_ROWS[@]} -gt 0 ]; then echo; scale_section; fi
} > "$OUT"
echo "wrote $OUT"
