"""The request/response wire of :mod:`p2pswarm.rpc`: two message types on one protomux channel.

Channel ``p2pswarm/rpc/1`` (no id, no handshake), compact-encoded:

* type 0, request: ``uint id, string method, buffer body``; ``id`` 0 is a one-way message
  (no response). ``body`` is the payload encoded by the application's codec.
* type 1, response: ``uint id, uint status, ...``: status 0 then ``buffer body``; status
  1 (an error) then ``string code, string message``.

Strict and bounded: the method name, error strings and bodies have maxima, trailing bytes
are refused (:class:`~p2pswarm.errors.CompactDecodeError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..errors import CompactDecodeError
from ..mux.codecs import CompactCodec
from ..protocol.compact import Reader, Writer

__all__ = (
    "MAX_BODY",
    "MAX_ERROR",
    "MAX_METHOD",
    "PROTOCOL",
    "REQUEST",
    "RESPONSE",
    "Request",
    "Response",
)

PROTOCOL: Final = "p2pswarm/rpc/1"
MAX_METHOD: Final = 256
MAX_ERROR: Final = 4096
MAX_BODY: Final = 8 * 1024 * 1024
_OK, _ERROR = 0, 1


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    method: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    id: int
    body: bytes = b""
    #: Set for an error response (``body`` is then empty).
    error_code: str | None = None
    error_message: str = ""


def _write_request(w: Writer, r: Request) -> None:
    w.uint(r.id).string(r.method).buffer(r.body)


def _read_request(r: Reader) -> Request:
    return Request(r.uint(), r.string(MAX_METHOD), r.buffer(MAX_BODY))


def _write_response(w: Writer, r: Response) -> None:
    w.uint(r.id)
    if r.error_code is None:
        w.uint(_OK).buffer(r.body)
    else:
        w.uint(_ERROR).string(r.error_code).string(r.error_message)


def _read_response(r: Reader) -> Response:
    id = r.uint()
    status = r.uint()
    if status == _OK:
        return Response(id, r.buffer(MAX_BODY))
    if status == _ERROR:
        return Response(id, b"", r.string(MAX_ERROR), r.string(MAX_ERROR))
    raise CompactDecodeError(f"unknown response status {status}")


REQUEST: Final = CompactCodec(_write_request, _read_request)
RESPONSE: Final = CompactCodec(_write_response, _read_response)
