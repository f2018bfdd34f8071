"""A UDP probe run inside a lab namespace: ``python udp_agent.py HOST:PORT [HOST:PORT ...]``.

It binds one socket per address (numbered from 0), prints ``{"ready": true}``, then obeys
JSON lines on stdin and answers each with one JSON line on stdout:

- ``{"op": "send", "sock": N, "to": [host, port], "data": "..."}`` -> ``{"ok": true}``
- ``{"op": "recv", "sock": N}`` -> ``{"from": [host, port], "data": "..."}``, or
  ``{"timeout": true}`` after 5 s (a bound, not a measurement: the tests never wait for a
  packet that should not come, they wait for a marker sent after it).

Standalone on purpose (stdlib only): it runs under ``ip netns exec`` with any Python 3.
"""

from __future__ import annotations

import json
import socket
import sys

__all__ = ()

RECV_BOUND_S = 5.0


def main() -> None:
    socks = []
    for spec in sys.argv[1:]:
        host, port = spec.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, int(port)))
        s.settimeout(RECV_BOUND_S)
        socks.append(s)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        s = socks[cmd["sock"]]
        if cmd["op"] == "send":
            s.sendto(cmd["data"].encode(), (cmd["to"][0], int(cmd["to"][1])))
            reply: dict[str, object] = {"ok": True}
        else:
            try:
                data, addr = s.recvfrom(2048)
                reply = {"from": [addr[0], addr[1]], "data": data.decode()}
            except TimeoutError:
                reply = {"timeout": True}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
