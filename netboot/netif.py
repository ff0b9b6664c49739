"""The one place netboot asks the host about its network interfaces.

Every service and `netboot check` look interfaces up here: which exist, an
interface's MAC and IPv4 addresses (with their prefix), and the physical
interface under a VLAN subinterface (untagged link-local frames such as LLDP
and CDP go out on the parent: `eth0.100` -> `eth0`, found through
/proc/net/vlan, else by the `parent.vid` name).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Interface
from pathlib import Path

import netifaces

NO_MAC = bytes(6)


def names() -> frozenset[str]:
    """The interfaces of this host."""
    return frozenset(netifaces.interfaces())


def _info(name: str) -> dict[int, list[dict[str, str]]]:
    try:
        info: dict[int, list[dict[str, str]]] = netifaces.ifaddresses(name)
    except ValueError:
        raise OSError(f"interface {name} does not exist") from None
    return info


def addresses(name: str) -> list[IPv4Interface]:
    """The IPv4 addresses of `name` with their prefix, in the kernel's order;
    OSError if the interface does not exist."""
    return [
        IPv4Interface(f"{entry['addr']}/{entry.get('netmask', '255.255.255.255')}")
        for entry in _info(name).get(netifaces.AF_INET, [])
    ]


def mac(name: str) -> bytes:
    """The hardware address of `name` (six zero bytes if it has none, as a
    tunnel); OSError if the interface does not exist."""
    link = _info(name).get(netifaces.AF_LINK, [{}])[0].get("addr", "")
    return bytes.fromhex(link.replace(":", "")) if link else NO_MAC


def physical_interface(name: str, proc_vlan: Path = Path("/proc/self/net/vlan")) -> str:
    """The interface an untagged frame for `name` goes out on: a VLAN's parent."""
    try:
        for line in (proc_vlan / name).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Device" and value.strip():
                return value.strip()
    except OSError:
        pass
    parent, dot, vid = name.rpartition(".")
    return parent if dot and parent and vid.isdigit() else name


def physical_interfaces(interfaces: Iterable[str]) -> tuple[str, ...]:
    """Each physical interface under `interfaces` once, in their order."""
    out: list[str] = []
    for name in interfaces:
        parent = physical_interface(name)
        if parent not in out:
            out.append(parent)
    return tuple(out)
