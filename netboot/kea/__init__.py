"""Scale-out on Kea: `netboot export kea` writes a kea-dhcp4 configuration
from netboot's own (export.py), and in `[dhcp] mode = "kea"` netboot reads
the leases from Kea's control sockets instead of answering DHCP (control.py)."""
