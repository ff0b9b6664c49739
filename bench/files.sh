#!/bin/sh
# Config-file serving benchmark (issue 3): netboot beside the reference servers,
# same run, same files, in two network namespaces joined by a veth pair.
#   TFTP vs tftpd-hpa: a 32 MB file at blksize 1428 without windowsize (curl,
#     and a small lock-step client) and with windowsize 16 (RFC 7440; tftpd-hpa
#     5.2 has none and answers lock-step), and 200 small files at once (curl -Z).
#   HTTP vs `python3 -m http.server`: the 32 MB file and 200 small files at once.
# Prints MB/s or seconds per server and the ratio (> 1: netboot better).
# Target: TFTP at least as fast as tftpd-hpa.  Needs root.
#   sudo bench/files.sh [--size-mb 32] [--small 200] [--repeat 3]
set -eu
cd "$(dirname "$0")/.."
exec "${PYTHON:-/opt/netboot/bin/python}" bench/files.py "$@"
