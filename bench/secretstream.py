"""Push + pull speed of the two secretstream implementations, per message size.

Prints one JSON line per (implementation, size): microseconds per push+pull round trip
(best of --repeat batches) and the MiB/s that makes. It picks the size threshold of
``p2pswarm.protocol._secretstream_fast``: below it libsodium is faster, above it OpenSSL.

    python bench/secretstream.py [--sizes 64,1024,65536] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from collections.abc import Callable

from p2pswarm.protocol import _secretstream as libsodium, _secretstream_fast as fast

DEFAULT_SIZES = "64,256,1024,2048,4096,8192,16384,65536"


def round_trip(make: Callable[[bytes], tuple[object, object]], size: int) -> Callable[[], None]:
    pusher, puller = make(os.urandom(32))
    message = os.urandom(size)
    push, pull = pusher.push, puller.pull  # type: ignore[attr-defined]

    def run() -> None:
        pull(push(message))

    return run


def libsodium_pair(key: bytes) -> tuple[object, object]:
    pusher = libsodium.Pusher(key)
    return pusher, libsodium.Puller(key, pusher.header)


def fast_pair(threshold: int) -> Callable[[bytes], tuple[object, object]]:
    def make(key: bytes) -> tuple[object, object]:
        pusher = fast.Pusher(key, threshold=threshold)
        return pusher, fast.Puller(key, pusher.header, threshold=threshold)

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    implementations = {
        "libsodium": libsodium_pair,
        "openssl": fast_pair(0),
        f"hybrid@{fast.DEFAULT_THRESHOLD}": fast_pair(fast.DEFAULT_THRESHOLD),
    }
    for size in (int(s) for s in args.sizes.split(",")):
        number = max(200, min(50_000, 20_000_000 // max(size, 1) // 8))
        for name, make in implementations.items():
            run = round_trip(make, size)
            best = min(timeit.repeat(run, number=number, repeat=args.repeat)) / number
            line = {
                "bench": "secretstream",
                "impl": name,
                "size": size,
                "us_per_push_pull": round(best * 1e6, 2),
                "mib_per_s": round(size / best / 2**20, 1),
            }
            sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
