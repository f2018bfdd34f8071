"""One UDP socket as request/response RPC: the receive loop, reply matching, retransmits.

The socket is unconnected and non-blocking, driven through anyio's readiness primitives
(``anyio.wait_readable`` / ``notify_closing``), so it runs on asyncio and trio alike. The
receive loop wakes once per burst and drains every queued datagram with plain
``recvfrom`` calls, handling each synchronously; replies go out through the socket's
non-blocking ``sendto`` (a full kernel buffer drops the datagram, which the requester's
retransmit covers). So nothing slow is ever awaited inline, and there is no per-datagram
event-loop round trip and no 100-datagram user-space queue to overflow (the limit of
anyio's asyncio ``UDPSocket``, which silently drops the oldest datagrams): the kernel's
socket buffer is the only queue.

Requests are matched to replies by a random request id *and* the address they were sent
to. A request is retransmitted with exponential spacing (the first retransmit after
``first_retransmit`` seconds, so a lost packet costs a fraction of the timeout); after
``retries`` retransmits it fails with :class:`~p2pswarm.errors.DHTTimeoutError`, so a dead
node costs at most :attr:`DatagramRpc.request_budget` seconds, never rpcudp's 5 s.

What a request means, and what to answer, is the owner's business (:mod:`.node`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Callable
from typing import Final

import anyio

from ..errors import DHTError, DHTTimeoutError, MessageDecodeError
from .messages import MAX_DATAGRAM_SIZE, Command, Request, Response, decode

__all__ = ("DatagramRpc", "resolve")

logger = logging.getLogger(__name__)

Address = tuple[str, int]
#: Answers a request (synchronously) given its source and its size on the wire: the
#: encoded reply, or None to send nothing back.
RequestHandler = Callable[[Request, Address, int], bytes | None]
#: Sees every reply that matched a request of ours, before the requester does.
ResponseObserver = Callable[[Response, Address], None]
#: Decides, before decoding, whether a request from this source is served at all.
AdmissionCheck = Callable[[Address], bool]

_RESPONSE_BIT: Final = 0x80
#: version, command, flags, rid (u32 at offset 3): see messages.py.
_HEADER_SIZE: Final = 7
#: Datagrams handled per wake-up before yielding to other tasks (fairness under a flood).
RECEIVE_BATCH: Final = 64


class _Pending:
    """One request waiting for its reply."""

    __slots__ = ("address", "event", "response")

    def __init__(self, address: Address) -> None:
        self.address = address
        self.event = anyio.Event()
        self.response: Response | None = None


class DatagramRpc:
    """Requests out, replies matched; requests in, handed to ``on_request``."""

    def __init__(
        self,
        *,
        on_request: RequestHandler,
        on_response: ResponseObserver,
        wire_id: bytes | None,
        request_timeout: float,
        retries: int,
        first_retransmit: float,
        admit: AdmissionCheck | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must not be negative")
        if request_timeout <= 0 or first_retransmit <= 0:
            raise ValueError("timeouts must be positive")
        self._on_request = on_request
        self._on_response = on_response
        self._admit = admit
        self.wire_id = wire_id
        self.request_timeout = request_timeout
        self.retries = retries
        self.first_retransmit = first_retransmit
        self._pending: dict[int, _Pending] = {}
        self._raw: socket.socket | None = None
        self.address: Address | None = None
        self.family: int = socket.AF_UNSPEC
        self.closed = False
        #: Datagrams dropped as malformed or unexpected; for tests and diagnostics.
        self.dropped_datagrams = 0
        #: Requests refused by ``admit`` (over their source's budget), undecoded.
        self.throttled_requests = 0

    @property
    def request_budget(self) -> float:
        """The longest a request to a node that never answers can take, in seconds."""
        return float(
            sum(
                min(self.first_retransmit * 2**attempt, self.request_timeout)
                for attempt in range(self.retries + 1)
            )
        )

    async def bind(self, host: str, port: int) -> Address:
        """Open the socket on (host, port); returns the address actually bound."""
        host, _ = await resolve((host, port))
        raw = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            raw.setblocking(False)
            raw.bind((host, port))
        except BaseException:
            raw.close()
            raise
        self._raw = raw
        self.family = raw.family
        local = raw.getsockname()
        self.address = (str(local[0]), int(local[1]))
        return self.address

    def close(self) -> None:
        """Wake every waiting request (they raise DHTError) and release the socket."""
        if self.closed:
            return
        self.closed = True
        for pending in self._pending.values():
            pending.event.set()
        if self._raw is not None:
            anyio.notify_closing(self._raw)
            self._raw.close()

    def send(self, data: bytes, address: Address) -> None:
        raw = self._raw
        if raw is None or self.closed:
            return
        try:
            raw.sendto(data, address)
        except OSError as exc:  # a full buffer, an unreachable host: UDP is lossy anyway
            logger.debug("send to %s failed: %s", address, exc)

    async def receive_loop(self) -> None:
        """Serve until :meth:`close`. Never raises because of what arrives."""
        raw = self._raw
        assert raw is not None
        while not self.closed:
            try:
                await anyio.wait_readable(raw)
            except (anyio.ClosedResourceError, OSError, ValueError):
                return  # closed under us (ValueError: the descriptor is already gone)
            for _ in range(RECEIVE_BATCH):
                try:
                    data, source = raw.recvfrom(MAX_DATAGRAM_SIZE + 1)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # e.g. an ICMP error surfaced on some platforms
                    if self.closed:
                        return
                    logger.debug("receive error: %s", exc)
                    break
                try:
                    self._handle_datagram(data, (str(source[0]), int(source[1])))
                except Exception:
                    self.dropped_datagrams += 1
                    logger.debug("dropped a datagram from %s", source, exc_info=True)

    def _handle_datagram(self, data: bytes, source: Address) -> None:
        # Anything that is not a reply (garbage included) spends the sender's budget, and
        # is refused before the decoder or a signature check costs anything.
        is_reply = len(data) >= _HEADER_SIZE and data[1] & _RESPONSE_BIT
        if is_reply:
            # A reply nobody waits for (a flood of them needs no budget) costs no decoding.
            expected = self._pending.get(int.from_bytes(data[3:7], "big"))
            if expected is None or expected.address != source or expected.response is not None:
                self.dropped_datagrams += 1
                return
        elif self._admit is not None and not self._admit(source):
            self.throttled_requests += 1
            return
        try:
            message = decode(data)
        except MessageDecodeError as exc:
            self.dropped_datagrams += 1
            logger.debug("dropped a malformed datagram from %s: %s", source, exc)
            return
        if isinstance(message, Request):
            reply = self._on_request(message, source, len(data))
            if reply is not None:
                self.send(reply, source)
            return
        pending = self._pending.get(message.rid)
        if pending is None or pending.address != source or pending.response is not None:
            self.dropped_datagrams += 1
            return
        pending.response = message
        pending.event.set()
        self._on_response(message, source)

    def _new_rid(self) -> int:
        while True:
            rid = int.from_bytes(os.urandom(4), "big")
            if rid not in self._pending:
                return rid

    async def request(
        self,
        address: Address,
        command: Command,
        *,
        key: bytes = b"",
        token: bytes = b"",
        payload: bytes = b"",
        pad_to: int = 0,
        on_slow: Callable[[], None] | None = None,
    ) -> Response:
        """Send one request and wait for its reply, retransmitting on the way.

        The request is zero-padded to ``pad_to`` bytes if smaller. ``on_slow`` is called
        once if the first attempt goes unanswered (queries use it to free the slot for
        another node). Raises :class:`DHTTimeoutError` after ``retries`` retransmits went
        unanswered and :class:`DHTError` when the socket is closed.
        """
        if self.closed or self._raw is None:
            raise DHTError(
                "the DHT node is closed" if self.closed else "the DHT node is not running"
            )
        rid = self._new_rid()
        request = Request(command, rid, self.wire_id, key=key, token=token, payload=payload)
        data = request.encode(pad_to)
        pending = _Pending(address)
        self._pending[rid] = pending
        try:
            wait = self.first_retransmit
            for _ in range(self.retries + 1):
                self.send(data, address)
                with anyio.move_on_after(min(wait, self.request_timeout)):
                    await pending.event.wait()
                if pending.response is not None:
                    return pending.response
                if self.closed:
                    raise DHTError("the DHT node is closed")
                if on_slow is not None:
                    on_slow()
                    on_slow = None
                wait *= 2
            raise DHTTimeoutError(
                f"no reply from {address[0]}:{address[1]} after {self.retries + 1} attempts"
            )
        finally:
            del self._pending[rid]


async def resolve(address: Address, family: int = socket.AF_UNSPEC) -> Address:
    """Hosts may be names; datagrams go to IP literals of our socket's family only."""
    host, port = address
    try:
        # One spelling per address: replies are matched on the text the socket reports.
        return str(ipaddress.ip_address(host.split("%")[0])), port
    except ValueError:
        pass
    try:
        infos = await anyio.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise DHTError(f"cannot resolve {host!r}: {exc}") from exc
    if not infos:
        raise DHTError(f"cannot resolve {host!r}")
    resolved = infos[0][4]
    return str(resolved[0]), int(resolved[1])
