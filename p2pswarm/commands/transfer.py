"""``p2pswarm send FILE --peer KEY`` and ``p2pswarm receive``: one file over ``join_peer``.

The receiver makes itself findable by its public key (``swarm.listen()``) and prints it;
the sender keeps a connection to that key (``swarm.join_peer``), which the swarm redials
whenever it drops. Each connection runs the exchange of :mod:`.transfer_protocol` from the
start, and the receiver answers with the length of its part file, so a dropped connection
(or a restarted ``send``/``receive``) resumes where it stopped. The receiver checks the
BLAKE2b-256 of the whole file before moving it into place; a mismatch deletes the part.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from ..connection import Connection
from ..errors import RemoteProtocolError
from ..swarm.peer_info import PeerInfo
from ._common import (
    EXIT_ERROR,
    EXIT_OK,
    CommandError,
    Output,
    load_identity,
    open_swarm,
    parse_peer_key,
    short_id,
    wait_any,
)
from .transfer_protocol import (
    HASH_SIZE,
    MAX_CHUNK,
    Accept,
    Data,
    Done,
    DoneStatus,
    FrameDecoder,
    Message,
    Offer,
    ReceiverState,
    Reject,
    check_name,
    encode,
)

__all__ = ("file_digest", "receive", "send")

_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)
#: Progress events at most this often (seconds).
PROGRESS_INTERVAL: Final = 0.2


def file_digest(path: Path) -> bytes:
    """BLAKE2b-256 of a file's content."""
    digest = hashlib.blake2b(digest_size=HASH_SIZE)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


class _Progress:
    """A progress bar on a terminal, ``progress`` events in JSON mode, rate-limited."""

    def __init__(self, out: Output, verb: str, name: str, size: int) -> None:
        self._out, self._verb, self._name, self._size = out, verb, name, size
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        fraction = done / self._size if self._size else 1.0
        self._out.event("progress", None, file=self._name, bytes=done, size=self._size)
        filled = int(fraction * 30)
        rate = done / max(now - self._started, 1e-6) / (1 << 20)
        self._out.progress(
            f"{self._verb} {self._name} [{'#' * filled}{'.' * (30 - filled)}] "
            f"{fraction:6.1%} {done / (1 << 20):.1f}/{self._size / (1 << 20):.1f} MiB "
            f"{rate:.1f} MiB/s"
        )

    def finish(self) -> None:
        """End the bar's line (on a terminal)."""
        self._out.end_progress()


async def _next_message(conn: Connection, decoder: FrameDecoder, queue: list[Message]) -> Message:
    while not queue:
        queue.extend(decoder.feed(await conn.receive()))
    return queue.pop(0)


# -- sending ----------------------------------------------------------------------------------


async def send(args: argparse.Namespace, out: Output) -> int:
    peer_key = parse_peer_key(args.peer)
    path: Path = args.file
    try:
        name = check_name(path.name)
        size = (await anyio.Path(path).stat()).st_size
        if not await anyio.Path(path).is_file():
            raise CommandError(f"{path} is not a regular file")
    except ValueError as exc:
        raise CommandError(f"cannot send {path}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    key_pair = load_identity(args.key, out)
    out.event("hashing", f"hashing {path} ({size} bytes)…", file=str(path), size=size)
    digest = await anyio.to_thread.run_sync(file_digest, path)
    offer = Offer(size, digest, name)
    finished = anyio.Event()
    outcome: list[tuple[int, str]] = []
    drop_after: list[int | None] = [args.drop_after]
    progress = _Progress(out, "sending", name, size)

    async with open_swarm(args, out, key_pair) as swarm:

        @swarm.on_connection
        async def handle(conn: Connection, info: PeerInfo) -> None:
            if conn.remote_public_key != peer_key or finished.is_set():
                return
            try:
                result = await _send_over(conn, path, offer, progress, drop_after, out)
            except _GONE as exc:
                out.event(
                    "interrupted",
                    f"connection to {short_id(peer_key)} lost ({type(exc).__name__}); "
                    "resuming when it is back",
                )
                return
            except RemoteProtocolError as exc:
                result = (EXIT_ERROR, f"the receiver broke the protocol: {exc}")
            if result is not None and not finished.is_set():
                outcome.append(result)
                finished.set()

        out.event(
            "connecting",
            f"looking for peer {short_id(peer_key)}…",
            peer=peer_key.hex(),
        )
        swarm.join_peer(peer_key)
        await wait_any(finished, out.stop)
    if not outcome:
        raise CommandError(f"stopped before {name} was sent; run the same command to resume")
    status, message = outcome[0]
    if status != EXIT_OK:
        raise CommandError(message, status)
    out.event("done", message, file=str(path), size=size, hash=digest.hex())
    return EXIT_OK


async def _send_over(
    conn: Connection,
    path: Path,
    offer: Offer,
    progress: _Progress,
    drop_after: list[int | None],
    out: Output,
) -> tuple[int, str] | None:
    """One attempt over one connection; None when the connection dropped mid-way."""
    decoder, queue = FrameDecoder(), list[Message]()
    await conn.send(encode(offer))
    reply = await _next_message(conn, decoder, queue)
    if isinstance(reply, Reject):
        return EXIT_ERROR, f"the receiver refused {offer.name}: {reply.reason}"
    if not isinstance(reply, Accept) or reply.offset > offer.size:
        raise RemoteProtocolError(f"expected ACCEPT within the size, got {reply!r}")
    if reply.offset:
        out.event(
            "resume",
            f"resuming {offer.name} at {reply.offset} of {offer.size} bytes",
            offset=reply.offset,
        )
    offset = reply.offset
    async with await anyio.open_file(path, "rb") as file:
        await file.seek(offset)
        while offset < offer.size:
            chunk = await file.read(min(MAX_CHUNK, offer.size - offset))
            if not chunk:
                return EXIT_ERROR, f"{path} shrank while being sent"
            await conn.send(encode(Data(chunk)))
            offset += len(chunk)
            progress.update(offset)
            limit = drop_after[0]
            if limit is not None and offset >= limit:
                drop_after[0] = None
                out.event("test-drop", f"dropping the connection at {offset} bytes (test hook)")
                await conn.aclose()
                raise anyio.ClosedResourceError
    progress.update(offset, force=True)
    done = await _next_message(conn, decoder, queue)
    progress.finish()
    if not isinstance(done, Done):
        raise RemoteProtocolError(f"expected DONE, got {type(done).__name__}")
    if done.status is DoneStatus.OK:
        return EXIT_OK, f"sent {offer.name} ({offer.size} bytes), verified by the receiver"
    return EXIT_ERROR, f"the receiver could not verify {offer.name}: {done.reason}"


# -- receiving --------------------------------------------------------------------------------


async def receive(args: argparse.Namespace, out: Output) -> int:
    out_dir: Path = args.out_dir
    if not await anyio.Path(out_dir).is_dir():
        raise CommandError(f"{out_dir} is not a directory")
    sender = parse_peer_key(args.sender) if args.sender else None
    key_pair = load_identity(args.key, out)
    finished = anyio.Event()
    locks: dict[str, anyio.Lock] = {}

    def firewall(remote_key: bytes, address: tuple[str, int]) -> bool:
        return sender is not None and remote_key != sender

    async with open_swarm(args, out, key_pair, firewall=firewall) as swarm:

        @swarm.on_connection
        async def handle(conn: Connection, info: PeerInfo) -> None:
            peer = conn.remote_public_key
            out.event("peer", f"* {short_id(peer)} connected", peer=peer.hex())
            try:
                received = await _receive_over(
                    conn, out_dir, args.overwrite, locks, out, args.max_size
                )
            except _GONE:
                out.event("interrupted", f"* {short_id(peer)} dropped; keeping the partial file")
                return
            except RemoteProtocolError as exc:
                out.warning(f"{short_id(peer)} broke the transfer protocol: {exc}")
                return
            if received and not args.keep_going:
                finished.set()

        await swarm.listen()
        public = key_pair.public_key.hex()
        out.event(
            "receiving",
            f"ready to receive into {out_dir}; on the sending side run:\n"
            f"  p2pswarm send FILE --peer {public}",
            public_key=public,
            directory=str(out_dir),
        )
        await wait_any(finished, out.stop)
    return EXIT_OK


async def _refusal(out_dir: Path, offer: Offer, offset: int, max_size: int | None) -> str | None:
    """Why an offer cannot be taken (too large, no room), or None."""
    if max_size is not None and offer.size > max_size:
        return f"{offer.size} bytes is more than the {max_size} this receiver accepts"
    free = (await anyio.to_thread.run_sync(shutil.disk_usage, out_dir)).free
    if offer.size - offset > free:
        return f"not enough disk space ({offer.size - offset} bytes needed, {free} free)"
    return None


def _part_path(out_dir: Path, offer: Offer) -> Path:
    return out_dir / f".{offer.name}.{offer.digest.hex()[:16]}.part"


async def _receive_over(
    conn: Connection,
    out_dir: Path,
    overwrite: bool,
    locks: dict[str, anyio.Lock],
    out: Output,
    max_size: int | None = None,
) -> bool:
    """One exchange; True when a file was completed and verified."""
    decoder, queue = FrameDecoder(), list[Message]()
    state = ReceiverState()
    first = state.on_message(await _next_message(conn, decoder, queue))
    assert isinstance(first, Offer)
    offer = first
    final = anyio.Path(out_dir / offer.name)
    part = anyio.Path(_part_path(out_dir, offer))
    lock = locks.setdefault(str(part), anyio.Lock())
    async with lock:  # one writer per part file, even if a stale connection lingers
        if await final.exists():
            is_file = await final.is_file()
            if is_file and await anyio.to_thread.run_sync(file_digest, Path(final)) == offer.digest:
                await conn.send(encode(state.accept(offer.size)))
                await conn.send(encode(Done(DoneStatus.OK, "already here")))
                out.event("done", f"{final} is already here", file=str(final))
                return True
            if not overwrite:
                await conn.send(encode(Reject(f"{offer.name} already exists")))
                out.warning(f"refused {offer.name}: {final} exists (use --overwrite)")
                return False
        offset = (await part.stat()).st_size if await part.exists() else 0
        if offset > offer.size:
            offset = 0
        refusal = await _refusal(out_dir, offer, offset, max_size)
        if refusal is not None:
            await conn.send(encode(Reject(refusal)))
            out.warning(f"refused {offer.name}: {refusal}")
            return False
        if not await part.exists():
            await part.touch()
        async with await anyio.open_file(part, "r+b") as file:
            await file.truncate(offset)
            await file.seek(offset)
            await conn.send(encode(state.accept(offset)))
            if offset:
                out.event("resume", f"resuming {offer.name} at {offset} bytes", offset=offset)
            progress = _Progress(out, "receiving", offer.name, offer.size)
            await _write_data(conn, decoder, queue, state, file, progress)
        return await _verify(conn, Path(part), Path(final), offer, out)


async def _write_data(
    conn: Connection,
    decoder: FrameDecoder,
    queue: list[Message],
    state: ReceiverState,
    file: anyio.AsyncFile[bytes],
    progress: _Progress,
) -> None:
    while not state.complete:
        message = state.on_message(await _next_message(conn, decoder, queue))
        assert isinstance(message, Data)
        await file.write(message.chunk)
        await file.flush()  # what reached the OS survives our process being killed
        progress.update(state.offset)
    progress.update(state.offset, force=True)
    progress.finish()


async def _verify(conn: Connection, part: Path, final: Path, offer: Offer, out: Output) -> bool:
    digest = await anyio.to_thread.run_sync(file_digest, part)
    if digest != offer.digest:
        await anyio.Path(part).unlink(missing_ok=True)
        await conn.send(encode(Done(DoneStatus.HASH_MISMATCH, "content hash differs")))
        out.warning(f"{offer.name}: content hash differs from the offer; discarded")
        return False
    await anyio.to_thread.run_sync(os.replace, part, final)
    with contextlib.suppress(*_GONE):
        await conn.send(encode(Done(DoneStatus.OK)))
        # Let the DONE reach the sender before our handler returns and the swarm closes.
        with anyio.move_on_after(5.0), contextlib.suppress(*_GONE):
            await conn.receive()
    out.event(
        "done",
        f"received {final} ({offer.size} bytes, BLAKE2b-256 {digest.hex()[:16]}… verified)",
        file=str(final),
        size=offer.size,
        hash=digest.hex(),
    )
    return True
