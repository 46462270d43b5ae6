#!/bin/bash
# make demo: drover end to end on loopback, in a throwaway directory.
# Starts drover-server, the stand-in Kubernetes API server from tests/ (no
# real kube-apiserver is packaged here; it plays the cluster), a cluster
# agent and two node agents; logs in with droverctl, registers the cluster
# and runs kubectl through drover. Then it waits (Ctrl-C stops everything)
# so you can try droverctl and kubectl yourself; DEMO_ONESHOT=1 stops after
# the walk-through instead (the tests use that).
# Usage: scripts/demo.sh BIN_DIR TOOLS_DIR
set -euo pipefail
BIN=$1 TOOLS=$2
WORK=$(mktemp -d /tmp/drover-demo.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {   # below the ephemeral range, so no outgoing connection takes it
    local p
    while :; do
        p=$(shuf -i 20000-32767 -n 1)
        (echo > /dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return; }
    done
}
wait_for() {   # wait_for WHAT COMMAND...: up to 30 s
    local what=$1; shift
    for _ in $(seq 1 300); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "demo: $what did not come up (logs in $WORK)" >&2
    trap - EXIT
    exit 1
}
step() { printf '\n== %s\n' "$*"; }

HTTPS=$(free_port)
S=https://127.0.0.1:$HTTPS
export DROVER_CONFIG=$WORK/droverctl.yaml KUBECONFIG=$WORK/kubeconfig

step "the stand-in cluster (tests/kube-standin)"
"$TOOLS/kube-standin" --listen 127.0.0.1:0 --port-file "$WORK/standin.port" --data-dir "$WORK/standin" \
    --token system:serviceaccount:drover-system:drover=demo-sa-token \
    --admin system:serviceaccount:drover-system:drover > "$WORK/standin.log" 2>&1 &
PIDS+=($!)
echo demo-sa-token > "$WORK/sa.token"
wait_for "the stand-in" test -s "$WORK/standin.port"
KS=$(cat "$WORK/standin.port")
echo "listening on 127.0.0.1:$KS"

step "drover-server on $S (SQLite and a generated CA in $WORK/data)"
"$BIN/drover-server" --listen 127.0.0.1:"$HTTPS" --data-dir "$WORK/data" \
    > "$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_for "drover-server" curl -sfk "$S/readyz"
PW=$(sed -n 's/^Bootstrap admin password: //p' "$WORK/server.log")
SUM=$(curl -sfk "$S/cacerts" | sha256sum | cut -c1-64)

step "droverctl login (pinning the CA by its checksum $SUM)"
echo "$PW" | "$BIN/droverctl" login "$S" --username admin --password-stdin --ca-checksum "$SUM"

step "droverctl cluster create demo"
"$BIN/droverctl" cluster create demo
CID=$("$BIN/droverctl" cluster get demo -o json | sed -n 's/.*"id": *"\(c-[^"]*\)".*/\1/p' | head -1)
REG=$("$BIN/droverctl" cluster get demo -o json |
      tr -d '\n' | sed -n 's/.*"registration": *{[^}]*"token": *"\([^"]*\)".*/\1/p')

step "the agents: one cluster agent and two node agents, as the import manifest would run them"
agent() {   # agent BINARY LOG [NODE]
    local node=(); [ -n "${3:-}" ] && node=(DROVER_NODE_NAME="$3")
    env "${node[@]}" DROVER_SERVER="$S" DROVER_TOKEN="$REG" DROVER_CA_CHECKSUM="$SUM" \
        DROVER_CLUSTER_ID="$CID" DROVER_HEALTH_LISTEN= \
        DROVER_KUBE_API=https://127.0.0.1:"$KS" DROVER_KUBE_TOKEN_FILE="$WORK/sa.token" \
        DROVER_KUBE_CA_FILE="$WORK/standin/ca.crt" "$BIN/$1" > "$WORK/$2" 2>&1 &
    PIDS+=($!)
}
agent drover-cluster-agent cluster-agent.log
CLUSTER_AGENT=${PIDS[-1]}
agent drover-node-agent node-1.log node-1
agent drover-node-agent node-2.log node-2
wait_for "the cluster link" bash -c \
    "'$BIN/droverctl' cluster get demo -o json | grep -q '\"state\": *\"active\"'"
"$BIN/droverctl" cluster list

step "kubectl through drover (kubeconfig from droverctl cluster kubeconfig)"
"$BIN/droverctl" cluster kubeconfig demo
wait_for "the first report" kubectl get nodes
kubectl get nodes
kubectl create namespace demo
kubectl -n demo create configmap hello --from-literal=greeting=hi
kubectl -n demo get configmap hello -o jsonpath='{.data.greeting}{"\n"}'

if [ "${DEMO_ONESHOT:-}" = 1 ]; then
    step "done"
    exit 0
fi
cat <<EOF

drover is running. In another terminal:
  export DROVER_CONFIG=$DROVER_CONFIG KUBECONFIG=$KUBECONFIG
  $BIN/droverctl cluster get demo
  $BIN/droverctl node list demo
  kubectl get pods -A
  kill -9 $CLUSTER_AGENT   # the cluster agent: a node agent takes over (cluster get shows it)
Logs are in $WORK. Ctrl-C stops everything and removes it.
EOF
while :; do sleep 3600; done
