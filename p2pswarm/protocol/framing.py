"""Secret-stream framing: every frame is a uint24 little-endian length, then that many bytes.

The decoder is a hand-rolled ``bytearray`` buffer parsed through a ``memoryview``: frame
bodies are handed out as views into the buffer (or into the caller's chunk) without a
copy, which measurably beats generic buffered readers on bulk data. A length above the
configured maximum is rejected as soon as its 3 prefix bytes arrive, so a hostile peer
cannot make us buffer more than that.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from ..errors import RemoteProtocolError

__all__ = ("FRAME_HEADER_SIZE", "MAX_FRAME_SIZE", "FrameDecoder", "encode_frame_header")

FRAME_HEADER_SIZE: Final = 3
#: The largest body a uint24 length can describe (the JavaScript side's MAX_ATOMIC_WRITE).
MAX_FRAME_SIZE: Final = (1 << 24) - 1


def encode_frame_header(size: int) -> bytes:
    """The 3-byte little-endian length prefix of a frame with a ``size``-byte body."""
    if not 0 <= size <= MAX_FRAME_SIZE:
        raise ValueError(f"a frame body is 0..{MAX_FRAME_SIZE} bytes, got {size}")
    return size.to_bytes(FRAME_HEADER_SIZE, "little")


class FrameDecoder:
    """Incremental frame decoder over arbitrarily chunked input.

    Use ``for body in decoder.frames(chunk): ...``. Each ``body`` is a ``memoryview`` valid
    only until the next iteration step: copy or consume it before moving on. Bytes of an
    incomplete frame stay buffered for the next call.
    """

    __slots__ = ("_buffer", "max_frame_size")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        if not 0 <= max_frame_size <= MAX_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be 0..{MAX_FRAME_SIZE}, got {max_frame_size}")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a complete frame."""
        return len(self._buffer)

    def frames(self, data: bytes | bytearray | memoryview) -> Generator[memoryview, None, None]:
        """Add ``data`` and yield the body of every frame it completes, in order.

        Raises :class:`~p2pswarm.errors.RemoteProtocolError` when a length prefix exceeds
        ``max_frame_size`` (read afresh for every frame, so a caller may raise it between
        frames); frames yielded before it stay valid.
        """
        buffer = self._buffer
        if buffer:
            buffer += data
            source: bytes | bytearray | memoryview = buffer
        else:
            source = data
        end = len(source)
        position = 0
        view = memoryview(source)
        try:
            while end - position >= FRAME_HEADER_SIZE:
                size = source[position] | source[position + 1] << 8 | source[position + 2] << 16
                if size > self.max_frame_size:
                    raise RemoteProtocolError(
                        f"frame of {size} bytes exceeds the maximum of {self.max_frame_size}"
                    )
                start = position + FRAME_HEADER_SIZE
                if end - start < size:
                    break
                position = start + size
                yield view[start:position]
        finally:
            self._keep_rest(source, view, position, end)

    def _keep_rest(
        self,
        source: bytes | bytearray | memoryview,
        view: memoryview,
        position: int,
        end: int,
    ) -> None:
        """Drop the consumed bytes and keep the incomplete rest for the next call."""
        buffer = self._buffer
        try:
            view.release()
            if source is buffer:
                del buffer[:position]
                return
        except BufferError:
            # A consumer still holds a view into the buffer (a traceback that references a
            # C buffer, say): leave that bytearray to it and continue in a fresh one.
            if source is buffer:
                self._buffer = bytearray(source[position:])
                return
        if position < end:
            buffer += source[position:]
