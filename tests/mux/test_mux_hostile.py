"""A hostile peer against a Mux over a real connection: each fault is typed, drops only
that connection, and never leaves a task behind."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from p2pswarm.errors import ChannelOverflowError, ChannelProtocolError, CodecError
from p2pswarm.mux import JSON, RAW, JSONCodec
from p2pswarm.protocol.compact import Writer

from .helpers import mux_pair

pytestmark = pytest.mark.anyio

TIMEOUT = 10


def _open(remote_id: int, protocol: str) -> bytes:
    return bytes(Writer().uint(0).uint(1).uint(remote_id).string(protocol).buffer(None))


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([_open(5, "x")], ChannelProtocolError),  # an id out of sequence
        ([bytes(Writer().uint(0).uint(2).uint(9))], ChannelProtocolError),  # a stray reject
        ([b"\x00\x01\xfd\x01\x00"], ChannelProtocolError),  # malformed (non-canonical uint)
        ([bytes(2000)], ChannelProtocolError),  # above max_message_size
        ([_open(1, "j"), bytes(Writer().uint(1).uint(0).raw(b"{nope"))], CodecError),
        (
            [_open(1, "slow")] + [bytes(Writer().uint(1).uint(0).raw(bytes(900)))] * 40,
            ChannelOverflowError,
        ),
    ],
)
async def test_a_fault_is_raised_typed_and_closes_the_connection(
    messages: list[bytes], error: type[Exception]
) -> None:
    async with mux_pair(max_message_size=1500, max_buffered_hard=16384) as (_, victim, tg, conns):
        attacker = conns[0]
        channel = victim.create_channel("j", messages=[JSON])
        assert channel
        channel.open()
        victim.pair("slow", lambda id: anyio.sleep_forever())
        raised: list[BaseException] = []

        async def run() -> None:
            try:
                await victim.run()
            except Exception as exc:
                raised.append(exc)

        tg.start_soon(run)
        # Take victim's own open off the wire, then attack.
        with anyio.fail_after(TIMEOUT):
            await attacker.receive_message()
            for message in messages:
                try:
                    await attacker.send_message(message)
                except anyio.BrokenResourceError:
                    break
            await victim.wait_closed()
        assert len(raised) == 1 and isinstance(raised[0], error), raised
        assert victim.connection.closed
        assert channel.closed and channel.closed_by_remote is True


async def test_json_codec_bounds() -> None:
    codec = JSONCodec(max_size=100, max_depth=3)
    assert codec.decode(b'{"a":[1,2,{"b":"[[[["}]}') == {"a": [1, 2, {"b": "[[[["}]}
    for bad in (b"[[[[1]]]]", b"x" * 101, b"\xff", b"{"):
        with pytest.raises(CodecError):
            codec.decode(bad)
    with pytest.raises(ValueError):
        codec.encode("y" * 200)


async def test_unknown_channels_and_types_are_ignored_and_the_connection_lives_on() -> None:
    async with mux_pair() as (_, victim, tg, conns):
        attacker = conns[0]
        channel = victim.create_channel("j", messages=[JSON])
        assert channel
        channel.open()
        tg.start_soon(victim.run)
        with anyio.fail_after(TIMEOUT):
            await attacker.receive_message()  # victim's open
            await attacker.send_message(_open(1, "j"))
            await attacker.send_message(bytes(Writer().uint(77).uint(0).raw(b"x")))  # unknown id
            await attacker.send_message(bytes(Writer().uint(1).uint(9).raw(b"x")))  # unknown type
            await attacker.send_message(bytes(Writer().uint(0).uint(3).uint(60)))  # stray close
            await attacker.send_message(bytes(Writer().uint(1).uint(0).raw(b'{"ok":1}')))
            assert await channel.messages[0].receive() == {"ok": 1}
        assert not victim.closed and not victim.connection.closed


async def test_buffered_past_the_pause_mark_everything_arrives_once_paired() -> None:
    """More than JS's 32 KiB for a channel not yet paired: the reader pauses (as JS pauses
    its stream) instead of failing, and resumes once the channel exists."""
    async with mux_pair() as (_, victim, tg, conns):
        attacker = conns[0]
        release = anyio.Event()
        created: list[Any] = []

        async def notify(id: bytes | None) -> None:
            await release.wait()
            channel = victim.create_channel("slow", messages=[RAW])
            assert channel
            channel.open()
            created.append(channel)
            made.set()

        made = anyio.Event()
        victim.pair("slow", notify)
        tg.start_soon(victim.run)
        count = 60  # 60 x (512 + 900) accounted: well past the 32 KiB pause mark
        with anyio.fail_after(TIMEOUT):
            await attacker.send_message(_open(1, "slow"))
            for i in range(count):
                await attacker.send_message(bytes(Writer().uint(1).uint(0).raw(bytes([i]) * 900)))
            release.set()
            await made.wait()
            (channel,) = created
            got = [await channel.messages[0].receive() for _ in range(count)]
        assert got == [bytes([i]) * 900 for i in range(count)]
        assert not victim.connection.closed
