"""``p2pswarm status``: what the network knows, as seen from here.

For the local network: each port of its range (free, a p2pswarm node and its id, or held
by something else), the bootstrap's known DHT nodes, and the peers announced under the
topics given. With ``--bootstrap``: whether each node answers, and the same lookups.
"""

from __future__ import annotations

import argparse

import anyio

from ..dht import DHTNode
from ..errors import DHTError
from ..networks.local_network import (
    FALLBACK_PORTS,
    LOCAL_HOST,
    PortState,
    local_port_from_env,
    probe_port,
)
from ._common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CommandError, Network, Output, parse_topic

__all__ = ("status",)


async def status(args: argparse.Namespace, out: Output) -> int:
    topics = [(name, parse_topic(name)) for name in args.topics]
    network = Network(args)
    if network.local:
        try:
            base = args.local_port if args.local_port is not None else local_port_from_env()
        except ValueError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
        targets = await _local_targets(base, out)
    else:
        targets = network.bootstrap
    if not targets:
        out.event("no-network", "no p2pswarm network is running here")
        return EXIT_ERROR
    async with DHTNode(bootstrap=targets, host=network.host, port=0) as node:
        for address in targets:
            await _node_report(node, address, out)
        for name, key in topics:
            async with node.lookup(key) as found:
                peers = [record async for record in found]
            out.event(
                "topic",
                f"topic {name!r} ({key.hex()[:16]}…): {len(peers)} peer(s)",
                topic=key.hex(),
                peers=[
                    {"public_key": p.public_key.hex(), "addresses": [str(a) for a in p.addresses]}
                    for p in peers
                ],
            )
            for peer in peers:
                where = ", ".join(map(str, peer.addresses))
                if not out.json_mode:
                    out.event("peer", f"  {peer.public_key.hex()}  {where}")
    return EXIT_OK


async def _local_targets(base: int, out: Output) -> list[tuple[str, int]]:
    states: dict[int, PortState] = {}

    async def probe(port: int) -> None:
        states[port] = await probe_port(port)

    async with anyio.create_task_group() as tg:
        for port in range(base, base + FALLBACK_PORTS):
            tg.start_soon(probe, port)
    targets = []
    for port in sorted(states):
        state = states[port]
        if state.kind == PortState.FREE:
            continue
        if state.kind == PortState.P2PSWARM:
            assert state.node_id is not None
            out.event(
                "local-node",
                f"{LOCAL_HOST}:{port}: p2pswarm bootstrap node {state.node_id.hex()}",
                port=port,
                node_id=state.node_id.hex(),
            )
            targets.append((LOCAL_HOST, port))
        else:
            out.event(
                "foreign-port",
                f"{LOCAL_HOST}:{port}: in use by something that is not a p2pswarm node",
                port=port,
            )
    if not targets:
        out.event(
            "local-network",
            f"no local network on {LOCAL_HOST}:{base}-{base + FALLBACK_PORTS - 1} "
            "(it starts with the first p2pswarm command that needs it)",
            running=False,
        )
    return targets


async def _node_report(node: DHTNode, address: tuple[str, int], out: Output) -> None:
    host, port = address
    started = anyio.current_time()
    try:
        reply = await node.ping(address)
    except DHTError:
        out.event("node", f"{host}:{port}: does not answer", host=host, port=port, answers=False)
        return
    rtt = (anyio.current_time() - started) * 1000
    contacts = len(node.routing_table)
    node_id = reply.node_id.hex() if reply.node_id else "-"
    out.event(
        "node",
        f"{host}:{port}: answers in {rtt:.1f} ms; id {node_id}; it sees us as "
        f"{reply.to[0]}:{reply.to[1]}; {contacts} DHT node(s) known",
        host=host,
        port=port,
        answers=True,
        rtt_ms=round(rtt, 2),
        node_id=reply.node_id.hex() if reply.node_id else None,
        known_nodes=contacts,
    )
