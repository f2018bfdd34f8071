"""The nftables rules of each NAT kind the lab builds (one router namespace per NAT layer).

Every router has two interfaces, ``lan`` (towards its host, or towards the home router in the
double NAT) and ``wan`` (towards the public bridge, or towards the carrier's router), and one
table ``natlab``. All kinds share the same skeleton: forward only LAN to WAN traffic and the
replies conntrack knows, masquerade what leaves on ``wan``, never answer unsolicited packets on
``wan`` from the router itself (a home router drops them silently: no ICMP that would tell a
puncher anything). The kinds differ only in the mapping (``masquerade`` keeps the host's
source port when it can, so the mapping is endpoint-independent; ``masquerade random`` picks a
new random port for every new flow, so the mapping depends on the destination) and in who may
send in to a mapped port (the filtering):

- full cone: anyone, once the port is mapped: a set of mapped ports, filled by every outgoing
  packet, and a DNAT of any inbound packet to a port in it;
- address-restricted: only a host the inside has sent to (any source port): a set of
  (remote address, port) pairs;
- port-restricted: only the exact (address, port) the inside has sent to: plain conntrack;
- symmetric (endpoint-dependent mapping): conntrack filtering, random port per flow;
- double NAT: a port-restricted home router behind a carrier-grade NAT (endpoint-independent,
  port-preserving as RFC 6888 asks) with 100.64.0.0/10 between the two.

The unit tests in ``test_nat_kinds.py`` prove each kind's mapping and filtering with UDP probes.
"""

from __future__ import annotations

__all__ = ("KINDS", "SET_TIMEOUT", "router_rules")

#: The six kinds, in the order of the matrix.
KINDS = (
    "none",
    "full-cone",
    "address-restricted",
    "port-restricted",
    "symmetric",
    "double-nat",
)

#: How long a mapping stays open without traffic (a home router's UDP timeout is 30 to 180 s).
SET_TIMEOUT = "120s"

_SKELETON = """\
table ip natlab {{
{sets}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" {learn}accept
    iifname "wan" oifname "lan" ct status dnat accept
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state new drop
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{inbound}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" {masquerade}
  }}
}}
"""


def router_rules(layer: str, inside: str) -> str:
    """The ruleset (``nft -f`` input) of one router.

    ``layer`` is one of ``full-cone``, ``address-restricted``, ``port-restricted``,
    ``symmetric`` or ``cgnat`` (the carrier's router of a double NAT); ``inside`` is the address
    its inbound DNAT sends to (the host, or the home router's WAN address).
    """
    sets = ""
    learn = ""
    inbound = ""
    masquerade = "masquerade"
    if layer == "full-cone":
        sets = (
            f"  set mapped {{\n    type inet_service; flags timeout; timeout {SET_TIMEOUT};\n  }}"
        )
        learn = "meta l4proto udp update @mapped { udp sport } "
        inbound = f'    iifname "wan" udp dport @mapped dnat to {inside}'
    elif layer == "address-restricted":
        sets = (
            "  set allowed {\n    type ipv4_addr . inet_service; flags timeout;"
            f" timeout {SET_TIMEOUT};\n  }}"
        )
        learn = "meta l4proto udp update @allowed { ip daddr . udp sport } "
        inbound = f'    iifname "wan" ip saddr . udp dport @allowed dnat to {inside}'
    elif layer == "symmetric":
        masquerade = "masquerade random"
    elif layer not in ("port-restricted", "cgnat"):
        raise ValueError(f"no such NAT layer: {layer}")
    return _SKELETON.format(sets=sets, learn=learn, inbound=inbound, masquerade=masquerade)
