#!/usr/bin/env bash
# Install netboot and what it needs on a fresh Debian (or Raspberry Pi OS) machine.
#   sudo ./install.sh               netboot itself, in its own virtual environment (/opt/netboot)
#   sudo ./install.sh --test        plus the real peers the tests and benchmarks run against
#   sudo ./install.sh --uninstall   remove netboot; /etc/netboot and /var/lib/netboot stay
#   sudo ./install.sh --purge       remove netboot and its config and state too
#
# netboot never pip-installs over Debian's packages: its Python dependencies
# live in a virtual environment made with Debian's own /usr/bin/python3 (the
# interpreter a Raspberry Pi has), without the system site-packages, so a
# Debian python3-openssl cannot meet pip's cryptography in one process.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo ./install.sh)" >&2
    exit 1
fi
mode=install
case "${1:-}" in
    "") ;;
    --test) mode=test ;;
    --uninstall) mode=uninstall ;;
    --purge) mode=purge ;;
    *) echo "install.sh: unknown option ${1} (--test, --uninstall or --purge)" >&2; exit 2 ;;
esac

PREFIX=/opt/netboot
PY=/usr/bin/python3
BIN=/usr/local/bin/netboot
UNIT=/etc/systemd/system/netboot.service
DOC=/usr/share/doc/netboot
MAN=/usr/local/share/man/man8/netboot.8
COMPLETION=/usr/share/bash-completion/completions/netboot

if [ "$mode" = uninstall ] || [ "$mode" = purge ]; then
    if command -v systemctl >/dev/null 2>&1 && [ -e "$UNIT" ]; then
        systemctl disable --now netboot >/dev/null 2>&1 || true
    fi
    rm -rf "$PREFIX" "$DOC"
    rm -f "$BIN" "$UNIT" "$MAN" "$COMPLETION"
    command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload >/dev/null 2>&1 || true
    if [ "$mode" = purge ]; then
        rm -rf /etc/netboot /var/lib/netboot /var/lib/private/netboot
        echo "install.sh: netboot removed, with /etc/netboot and its state"
    else
        echo "install.sh: netboot removed; /etc/netboot and /var/lib/netboot kept (--purge removes them)"
    fi
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# `netboot lab` needs nothing more: ip (iproute2), sysctl (procps), sh and cat.
packages=(python3 python3-venv iproute2 procps ca-certificates)
if [ "$mode" = test ]; then
    # Real peers: DHCP clients and servers, LLDP, SIP, TFTP, STUN, NAT, capture,
    # browser; systemd-analyze checks the unit.
    packages+=(isc-dhcp-client udhcpc busybox lldpd sip-tester tftp-hpa tftpd-hpa kea-admin
               kea-dhcp4-server dnsmasq-base nftables conntrack tshark stun-client coturn curl
               iputils-ping chromium systemd man-db)
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

# The virtual environment, always on Debian's interpreter (never a newer
# python3 found first on PATH).
if [ ! -x "$PREFIX/bin/python" ] || [ "$(readlink -f "$PREFIX/bin/python")" != "$(readlink -f "$PY")" ]; then
    rm -rf "$PREFIX"
    "$PY" -m venv "$PREFIX"
fi
"$PREFIX/bin/python" -m pip install -q --upgrade pip
if [ "$mode" = test ]; then
    # Editable: the tests and the `netboot` command run this clone's code.
    "$PREFIX/bin/python" -m pip install -q -e '.[test]'
else
    "$PREFIX/bin/python" -m pip install -q .
fi
ln -sf "$PREFIX/bin/netboot" "$BIN"

# The unit, the docs it points at, a man page and shell completion.
install -D -m 0644 systemd/netboot.service "$UNIT"
install -D -m 0644 README.md "$DOC/README.md"
install -D -m 0644 config.toml "$DOC/examples/config.toml"
mkdir -p "$(dirname "$MAN")" "$(dirname "$COMPLETION")"
"$PREFIX/bin/netboot" manpage > "$MAN"
"$PREFIX/bin/netboot" completion bash > "$COMPLETION"
command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload >/dev/null 2>&1 || true
echo "install.sh: netboot $("$PREFIX/bin/python" -c 'import netboot; print(netboot.__version__)') installed in $PREFIX ($("$PREFIX/bin/python" -c 'import sys; print(sys.version.split()[0])')), command $BIN"
