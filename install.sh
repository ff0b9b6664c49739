#!/usr/bin/env bash
# Install netboot and what it needs on a fresh Debian (or Raspberry Pi OS) machine.
#   sudo ./install.sh          netboot itself
#   sudo ./install.sh --test   plus the real peers the tests and benchmarks run against
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo ./install.sh)" >&2
    exit 1
fi
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

export DEBIAN_FRONTEND=noninteractive
# netifaces comes from Debian: from PyPI, pip would build it from source on
# Python 3.11+, and pip installed without its recommends has no compiler.
# `netboot lab` needs nothing more: ip (iproute2), sysctl (procps), sh and cat.
packages=(python3 python3-pip python3-netifaces iproute2 procps ca-certificates)
if [ "$with_tests" = 1 ]; then
    # Real peers: DHCP clients and servers, LLDP, SIP, TFTP, STUN, NAT, capture, browser.
    packages+=(isc-dhcp-client udhcpc busybox lldpd sip-tester tftp-hpa tftpd-hpa kea-admin
               kea-dhcp4-server dnsmasq-base nftables conntrack tshark stun-client coturn curl
               iputils-ping chromium)
fi
# Debian's server packages must not start daemons on this machine's interfaces.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created_policy=1
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
[ "$created_policy" = 1 ] && rm -f "$policy"
# Any daemon a package started anyway is stopped: tests start their own inside namespaces.
for svc in lldpd tftpd-hpa coturn kea-dhcp4-server; do
    systemctl stop "$svc" >/dev/null 2>&1 || true
done

pip_flags=()
python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages && pip_flags+=(--break-system-packages)
if [ "$with_tests" = 1 ]; then
    python3 -m pip install -q "${pip_flags[@]}" -e '.[test]'
else
    python3 -m pip install -q "${pip_flags[@]}" .
fi
echo "install.sh: netboot $(python3 -c 'import netboot; print(netboot.__version__)') installed"
