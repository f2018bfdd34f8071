"""Each NAT kind of the lab maps and filters as its name says (UDP probes, see probes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.natlab.lab import SKIP_REASON, Lab
from tests.natlab.nat import KINDS, router_rules
from tests.natlab.probes import HOST_PORT, probe_site

pytestmark = [
    pytest.mark.natlab,
    pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON)),
]

#: kind -> (endpoint-independent mapping, from a new address, from a known address's new port)
EXPECTED = {
    "none": (True, True, True),
    "full-cone": (True, True, True),
    "address-restricted": (True, False, True),
    "port-restricted": (True, False, False),
    "symmetric": (False, False, False),
    "double-nat": (True, False, False),
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab("kinds") as built:
        for kind in KINDS:
            built.add_site(kind)
        yield built


@pytest.mark.parametrize("kind", KINDS)
def test_mapping_and_filtering(lab: Lab, kind: str) -> None:
    site = next(s for s in lab.sites if s.kind == kind)
    seen = probe_site(lab, site)
    assert seen.mapped[0] == site.public_ip
    assert (seen.same_mapping, seen.from_new_address, seen.from_new_port) == EXPECTED[kind]
    if kind != "symmetric":
        # Every cone NAT here keeps the host's port (one host behind it: no clash).
        assert seen.mapped[1] == HOST_PORT


def test_double_nat_has_two_layers(lab: Lab) -> None:
    site = next(s for s in lab.sites if s.kind == "double-nat")
    assert len(site.routers) == 2
    assert "100.64." in lab.run(site.routers[0], ["ip", "-4", "addr", "show", "wan"])


def test_lab_is_torn_down() -> None:
    with Lab("gone") as lab:
        lab.add_site("symmetric")
        proc = lab.spawn(lab.public_ns, ["sleep", "60"])
        names = lab.run(lab.public_ns, ["ip", "netns", "list"])
        assert lab.public_ns in names
    assert proc.poll() is not None
    with Lab("check") as other:
        assert lab.prefix not in other.run(other.public_ns, ["ip", "netns", "list"])


def test_lab_is_torn_down_when_the_body_fails() -> None:
    with pytest.raises(RuntimeError), Lab("fails") as lab:
        lab.add_site("double-nat")
        proc = lab.spawn(lab.public_ns, ["sleep", "60"])
        raise RuntimeError("a test failed here")
    assert proc.poll() is not None
    with Lab("check") as other:
        assert lab.prefix not in other.run(other.public_ns, ["ip", "netns", "list"])


def test_unknown_layer_is_refused() -> None:
    with pytest.raises(ValueError):
        router_rules("moderately-strict", "10.1.0.2")
