"""A dial the peer refuses under the dedup rule costs no attempt (real TCP, testnet).

The peer with the larger key keeps its own dial: while it has one in flight to us, it
reads our handshake, refuses it and closes. That is the dedup rule at work, not a sign the
peer is unreachable, so our retry budget for it must stay whole.
"""

from __future__ import annotations

import pytest

from p2pswarm import KeyPair, topic
from p2pswarm.swarm import Swarm
from p2pswarm.testing import create_testnet, wait_until

from .helpers import SilentDialer

pytestmark = pytest.mark.anyio

#: Long enough that no retry fires while the test looks at the first refusal.
SLOW_BACKOFFS = (60.0, 120.0, 180.0, 600.0)


async def test_refused_by_the_larger_key_holding_its_own_dial() -> None:
    t = topic("refused-dedup")
    small, large = sorted((KeyPair.generate(), KeyPair.generate()), key=lambda k: k.public_key)
    dialer = SilentDialer()  # the larger key's dial to us stays in flight
    async with (
        create_testnet(3) as net,
        Swarm(bootstrap=net.bootstrap, key_pair=small, backoffs=SLOW_BACKOFFS) as ours,
        Swarm(bootstrap=net.bootstrap, key_pair=large, dialer=dialer) as theirs,
    ):
        await ours.join(t, client=False).flushed()
        await theirs.join(t).flushed()
        await dialer.in_flight.wait()
        assert theirs.connecting == 1

        ours.join(t)  # now we look up too, find the larger key and dial it
        key = large.public_key

        def refused() -> bool:
            peer = ours.peers.get(key)
            return ours.stats.client_attempted == 1 and ours.connecting == 0 and peer is not None

        await wait_until(refused, ours)
        peer = ours.peers[key]
        assert peer.waiting and not ours.connections  # redialled later, in case
        assert peer.attempts == 0  # but the refusal was not counted as a failure
