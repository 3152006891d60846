"""Target profiles: loading, clear errors, inheritance."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import ConfigError
from conformance.run.profile import load_profile, parse_capability

pytestmark = pytest.mark.unit

TARGETS = Path(__file__).resolve().parents[1] / "fixtures" / "targets"


@pytest.mark.parametrize("path", sorted(TARGETS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_checked_in_profile_loads_and_its_evidence_exists(path: Path):
    profile = load_profile(path)
    for deviation in profile.deviations:
        assert deviation.reason.strip()
        assert (TARGETS.parents[1] / deviation.evidence).is_file(), f"{path.name}: {deviation.evidence} missing"


def test_extends_merges_tables_and_adds_deviations(tmp_path: Path):
    (tmp_path / "base.toml").write_text(
        'name = "base"\n[capabilities]\nshared_subscriptions = false\nmaximum_qos = 2\n'
        '[[deviations]]\nstatement = "MQTT-3.3.5-1"\nversion = "3.1.1"\nreason = "base"\n'
    )
    (tmp_path / "child.toml").write_text(
        'extends = "base.toml"\nname = "child"\n[capabilities]\nmaximum_qos = 1\n'
        '[[deviations]]\nstatement = "MQTT-3.8.4-3"\nversion = "5.0"\nreason = "child"\n'
    )
    child = load_profile(tmp_path / "child.toml")
    assert child.name == "child"
    assert child.capabilities == {"shared_subscriptions": False, "maximum_qos": 1}
    assert [d.reason for d in child.deviations] == ["base", "child"]


@pytest.mark.parametrize(("text", "message"), [
    ("brokr = 'x'", "unknown key(s) brokr"),
    ("versions = ['4']", "versions must be"),
    ("[capabilities]\nwarp_drive = true", "unknown capabilities warp_drive"),
    ("[[deviations]]\nstatement = 'MQTT-1.2.3-4'\nreason = 'x'", "unknown statement MQTT-1.2.3-4"),
    ("[[deviations]]\nstatement = 'MQTT-3.3.5-1'", "lacks reason"),
    ("extends = 'nope.toml'", "extends nope.toml, which does not exist"),
    ("[credentials]\nusername = 'u'\npassword_env = 'MQTTC_SURELY_UNSET_VARIABLE'", "is not set"),
    ("broker = 'http://x'", "scheme must be one of"),
])
def test_bad_profiles_name_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_profile(path)


def test_capability_overrides_parse_like_toml():
    assert parse_capability("maximum_qos=1") == ("maximum_qos", 1)
    assert parse_capability("shared_subscriptions=false") == ("shared_subscriptions", False)
    assert parse_capability("websocket_url=ws://h:1/mqtt") == ("websocket_url", "ws://h:1/mqtt")
    with pytest.raises(ConfigError):
        parse_capability("nonsense")
