#!/usr/bin/env bash
# Installs what ipsecgw's tests, interop lab and demo need on a Debian machine.
# Idempotent: it only calls apt-get when a package is missing, so it is cheap to
# run before every `make test`. Needs root for apt; without root it only reports.
set -euo pipefail

packages=(
	strongswan-charon strongswan-swanctl strongswan-starter
	libcharon-extra-plugins          # kernel-libipsec: userspace ESP, the kernel here has none
	libstrongswan-standard-plugins   # openssl, gcm (only a Recommends of charon)
	libstrongswan-extra-plugins      # curve25519 and friends
	iperf3 tshark tcpdump iproute2 nftables iptables conntrack iputils-ping procps curl
	prometheus                       # promtool check metrics, and the server that scrapes the lab
	systemd                          # systemd-analyze verify/security on the unit file
	util-linux                       # setpriv and unshare: non-root and container conditions
	buildah                          # make container; deploy's image test builds and inspects it
	ike-scan                         # an independent IKEv1 client for the IKEv1 interop tests
	tinyproxy dante-server           # HTTP CONNECT and SOCKS5 proxies for the TCP encapsulation tests
	bird2                            # BGP over the route-based tunnels (interop TestBGPFailover)
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing ${missing[*]}; run as root to install them (interop tests will skip)" >&2
	else
		echo "install-deps: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		# tshark asks whether non-root users may capture; the default (no) is fine.
		echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
fi

# staticcheck for `make lint`, through the Go module proxy.
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/staticcheck" ]; then
	echo "install-deps: installing staticcheck"
	GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
