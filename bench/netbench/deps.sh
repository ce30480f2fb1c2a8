#!/usr/bin/env bash
# Tools `make bench-net` needs beyond scripts/install-deps.sh: wg (from
# wireguard-tools) configures the wireguard-go yardstick; iperf3 and ping are
# listed again so this script alone is enough for the benchmark. Idempotent:
# apt-get runs only when something is missing.
set -euo pipefail

packages=(wireguard-tools iperf3 iputils-ping)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench-net: missing ${missing[*]}; run as root" >&2
		exit 1
	fi
	echo "bench-net: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
