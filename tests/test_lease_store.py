"""The lease store's in-memory index, read back from its table at start."""

from __future__ import annotations

from pathlib import Path

from netboot.state.leases import Lease, LeaseStore

T0 = 1_800_000_000.0


def test_the_index_read_at_start_is_the_one_written(tmp_path: Path) -> None:
    a, b = "00:30:4f:00:00:0a", "00:30:4f:00:00:0b"
    store = LeaseStore(tmp_path)
    store.stage(Lease(0x0A000005, a, "bound", T0 + 3600, "desk", "", T0))
    store.stage(Lease(0x0A010005, a, "bound", T0 + 3600, "desk", "", T0))  # a second scope
    store.stage(Lease(0x0A000006, b, "released", T0, "", "", T0))
    store.flush()
    store.stage(Lease(0x0A000006, a, "bound", T0 + 7200, "desk", "id-a", T0 + 5))  # b's, now a's
    store.flush()
    written = (dict(store.by_ip), {mac: sorted(ips) for mac, ips in store.by_mac.items()})
    assert written[1] == {a: [0x0A000005, 0x0A000006, 0x0A010005]}
    store.close()

    again = LeaseStore(tmp_path)
    assert (dict(again.by_ip), {mac: sorted(ips) for mac, ips in again.by_mac.items()}) == written
    assert {lease.ip for lease in again.for_mac(a)} == {0x0A000005, 0x0A000006, 0x0A010005}
    assert list(again.for_mac(b)) == []
    assert again.ip_for_mac(a, T0) is not None and len(again) == 3
    # One text per state, whatever the number of leases.
    assert again.by_ip[0x0A000005].state is again.by_ip[0x0A010005].state
    again.close()
