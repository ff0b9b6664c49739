"""The phone configs and the LLDP/CDP frames take VLAN, priority and DSCP
from the same [lldp] keys: one config file, read by both, never disagrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from netboot.config import load_config
from netboot.lldp.advertiser import LocalPort, cdp_advertisement, lldp_advertisement
from netboot.lldp.codec import (
    APP_VOICE,
    APP_VOICE_SIGNALING,
    decode_cdp,
    decode_lldp,
    encode_cdp,
    encode_lldp,
)
from netboot.provisioning.render import ConfigRenderer
from netboot.provisioning.vendorfile import parse_fanvil
from tests.test_render import NOW, write_config

PORT = LocalPort("eth0", "02:00:5e:00:00:01", 2)


def settings(text: str, separator: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        if sep:
            out[key.strip()] = value.strip()
    return out


@pytest.mark.parametrize(
    ("vlan", "priority", "dscp", "signaling"), [(100, 5, 46, 26), (2001, 6, 40, 24)]
)
def test_phone_config_and_frames_agree(
    tmp_path: Path, vlan: int, priority: int, dscp: int, signaling: int
) -> None:
    path = write_config(tmp_path, extra="cdp = true")
    text = path.read_text()
    for key, value in (
        ("voice_vlan", vlan),
        ("priority", priority),
        ("dscp", dscp),
        ("signaling_dscp", signaling),
    ):
        text = text.replace(f"\n{key} = ", f"\n{key} = {value}\n#", 1)
    path.write_text(text)
    config = load_config(path)
    renderer = ConfigRenderer(config, now=lambda: NOW)
    try:
        fanvil = renderer.render("f0VIP-2140PThw1.100.cfg")
        yealink = renderer.render("y000000000066.cfg")
    finally:
        renderer.close()
    assert fanvil is not None and yealink is not None
    # Read back with the firmware's rules: <QOS CONFIG MODULE>, the keys of the
    # Fanvil X3U / Digium A20 exports (tests/data), "Singalling" as spelt there.
    qos = parse_fanvil(fanvil.data.decode())
    f = {e.key: e.value for e in qos.entries if e.module == "<QOS CONFIG MODULE>"}
    y = settings(yealink.data.decode(), "=")

    lldp = decode_lldp(encode_lldp(lldp_advertisement(config, PORT, 120)))
    policies = {p.app_type: p for p in lldp.policies}
    voice, sig = policies[APP_VOICE], policies[APP_VOICE_SIGNALING]
    cdp = decode_cdp(encode_cdp(cdp_advertisement(config, PORT, 120)))

    assert voice.tagged and sig.tagged
    assert (
        {voice.vlan, sig.vlan, cdp.voip_vlan_reply}
        == {int(f["VLAN ID"]), int(y["static.network.vlan.internet_port_vid"])}
        == {vlan}
    )
    assert (
        {voice.priority, sig.priority}
        == {int(f["Voice Priority"]), int(f["Signalling Priority"])}
        == {int(y["static.network.vlan.internet_port_priority"])}
        == {priority}
    )
    assert voice.dscp == int(f["Voice DSCP"]) == int(y["static.network.qos.audiotos"]) == dscp
    assert (
        sig.dscp == int(f["Singalling DSCP"]) == int(y["static.network.qos.signaltos"]) == signaling
    )
