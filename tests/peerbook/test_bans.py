"""Expiring bans: lengthened, never shortened, bounded, expired in order."""

from __future__ import annotations

import pytest

from p2pswarm.peerbook.bans import DEFAULT_BAN_DURATION, BanList

K1, K2, K3 = (bytes([i]) * 32 for i in (1, 2, 3))


def test_ban_expire_and_extend() -> None:
    bans = BanList()
    ban, dropped = bans.ban(K1, now=100.0, reason="spam")
    assert ban is not None and ban.until == 100.0 + DEFAULT_BAN_DURATION and dropped == []
    assert bans.is_banned(K1, 100.0 + DEFAULT_BAN_DURATION - 1)
    assert not bans.is_banned(K1, 100.0 + DEFAULT_BAN_DURATION)
    again, _ = bans.ban(K1, now=200.0, duration=10.0)  # shorter: the longer one holds
    assert again is not None and again.until == 100.0 + DEFAULT_BAN_DURATION
    kept, _ = bans.ban(K1, now=200.0, duration=DEFAULT_BAN_DURATION * 2, extend=False)
    assert kept is not None and kept.until == 100.0 + DEFAULT_BAN_DURATION
    longer, _ = bans.ban(K1, now=200.0, duration=DEFAULT_BAN_DURATION * 2)
    assert longer is not None and longer.until == 200.0 + 2 * DEFAULT_BAN_DURATION
    assert bans.next_expiry() == longer.until
    assert bans.expire(longer.until) == [K1] and len(bans) == 0


def test_bounded_the_first_to_expire_goes() -> None:
    bans = BanList(limit=2)
    bans.ban(K1, now=0.0, duration=5.0)
    bans.ban(K2, now=0.0, duration=50.0)
    _, dropped = bans.ban(K3, now=0.0, duration=20.0)
    assert dropped == [K1] and len(bans) == 2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        BanList().ban(K1, now=0.0, duration=0.0)
    with pytest.raises((TypeError, ValueError)):
        BanList().ban(b"short", now=0.0)
    bans = BanList()
    bans.ban(K1, now=0.0, reason="x" * 1000)
    ban = bans.get(K1)
    assert ban is not None and len(ban.reason) == 200
    assert bans.unban(K1) and not bans.unban(K1)
