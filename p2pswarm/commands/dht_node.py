"""``p2pswarm dht-node``: a persistent DHT node, the bootstrap of a network.

Without options it serves ``127.0.0.1`` on the local network's port, giving this machine's
local network a bootstrap that never exits. With ``--host 0.0.0.0 --port 49737`` it is the
first node of a private network across machines; further nodes join with ``--bootstrap``.
"""

from __future__ import annotations

import argparse
import errno

from ..dht import DHTNode, load_routing_state
from ..errors import DHTError
from ..networks.local_network import LOCAL_HOST, PortState, probe_port
from ._common import EXIT_OK, EXIT_USAGE, CommandError, Output

__all__ = ("dht_node",)


async def dht_node(args: argparse.Namespace, out: Output) -> int:
    bootstrap: list[tuple[str, int]] = [a for group in args.bootstrap or () for a in group]
    node_id = None
    if args.state is not None and args.state.exists():
        try:
            state = load_routing_state(args.state)
        except DHTError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
        node_id = state.node_id
        bootstrap += [a for a in state.addresses if a not in bootstrap]
    node = DHTNode(
        host=args.host, port=args.port, bootstrap=bootstrap, ephemeral=False, node_id=node_id
    )
    try:
        await node.__aenter__()
    except OSError as exc:
        raise CommandError(await _bind_error(args.host, args.port, exc)) from None
    try:
        host, port = node.address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        out.event(
            "listening",
            f"dht-node listening on {shown} (id {node.node_id.hex()})",
            host=host,
            port=port,
            node_id=node.node_id.hex(),
        )
        if bootstrap and len(node.routing_table) == 0:
            out.warning("no bootstrap node answered yet; serving anyway, joining when one does")
        await out.stop.wait()
    finally:
        if args.state is not None:
            node.save_routing_state(args.state)
            out.event("state-saved", f"routing state saved to {args.state}")
        await node.__aexit__(None, None, None)
    return EXIT_OK


async def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno != errno.EADDRINUSE:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    if host == LOCAL_HOST:
        state = await probe_port(port)
        if state.kind == PortState.P2PSWARM:
            return (
                f"port {port} is in use: a p2pswarm node already serves {host}:{port} "
                f"(another dht-node, or a p2pswarm process hosting the local network)"
            )
    return f"port {port} is in use on {host} (choose another with --port)"
