#!/bin/sh
# Installs the Debian 12 packages drover needs to build, test and benchmark.
# As root it runs apt-get (update first); otherwise it prints the exact
# command and exits 1, so `make run` and `make test` never half-build.
set -eu

PKGS="gcc make pkg-config libssl-dev libjansson-dev libyaml-dev check
libsqlite3-dev libpq-dev zlib1g-dev postgresql etcd-server etcd-client clang
libclang-rt-14-dev valgrind wrk curl openssl procps"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# kubectl: tests play the user with a real kubectl; Debian's kubernetes-client
# is the fallback when no kubectl is installed at all.
if ! command -v kubectl >/dev/null 2>&1; then
    missing="$missing kubernetes-client"
fi

[ -z "$missing" ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "drover: missing Debian packages:$missing" >&2
    echo "drover: run as root:  $cmd" >&2
    exit 1
fi
echo "drover: installing:$missing" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
