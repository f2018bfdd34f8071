"""Two secret-stream machines joined by an in-memory wire (h11's ConnectionPair idea)."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pswarm.keys import KeyPair
from p2pswarm.protocol import Event, SecretStream

INITIATOR_KEYS = KeyPair.from_seed(bytes(range(32)))
RESPONDER_KEYS = KeyPair.from_seed(bytes(range(1, 33)))


@dataclass
class Pair:
    initiator: SecretStream
    responder: SecretStream
    initiator_events: list[Event] = field(default_factory=list)
    responder_events: list[Event] = field(default_factory=list)
    #: Every byte each side wrote, for replay and fuzzing.
    initiator_wire: bytearray = field(default_factory=bytearray)
    responder_wire: bytearray = field(default_factory=bytearray)

    def pump(self) -> None:
        """Deliver protocol bytes both ways until neither side has any left (bounded)."""
        for _ in range(8):
            moved = False
            data = self.initiator.data_to_send()
            if data:
                moved = True
                self.initiator_wire += data
                self.responder_events += self.responder.receive_data(data)
            data = self.responder.data_to_send()
            if data:
                moved = True
                self.responder_wire += data
                self.initiator_events += self.initiator.receive_data(data)
            if not moved:
                return
        raise AssertionError("handshake did not settle")


def make_pair(
    *,
    ik: bool = False,
    topics: tuple[bytes, ...] = (),
    initiator_kwargs: dict[str, object] | None = None,
    responder_kwargs: dict[str, object] | None = None,
    pump: bool = True,
) -> Pair:
    initiator = SecretStream(
        initiator=True,
        key_pair=INITIATOR_KEYS,
        remote_public_key=RESPONDER_KEYS.public_key if ik else None,
        topics=topics,
        **(initiator_kwargs or {}),  # type: ignore[arg-type]
    )
    responder = SecretStream(
        initiator=False,
        key_pair=RESPONDER_KEYS,
        **(responder_kwargs or {}),  # type: ignore[arg-type]
    )
    pair = Pair(initiator, responder)
    if pump:
        pair.pump()
    return pair


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(3, "little") + body
