#!/usr/bin/env bash
# Installs everything vxtun needs on a fresh Debian 12 machine and builds it:
# the Debian tools the dataplane, labs and tests drive (iproute2, tshark, iperf3,
# scapy, etcd, Go + libcni source for the CNI tests, reference CNI plugins, nftables for
# masquerade, openssl for the etcd TLS test, systemd-analyze to verify the unit), then
# `npm ci`, which also builds the native addon with node-gyp.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  iproute2 iputils-ping ethtool tcpdump tshark iperf3 netcat-openbsd
  python3-scapy etcd-server etcd-client
  golang-go golang-github-appc-cni-dev containernetworking-plugins
  g++ make python3 iptables util-linux nftables openssl systemd
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer it up front.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
npm run build
