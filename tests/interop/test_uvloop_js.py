"""The JS exchanges again with asyncio on uvloop, which p2pswarm users may choose.

uvloop is not a dependency: these tests run where it is importable and skip elsewhere.
uvloop's transports are not subclasses of ``asyncio.Transport``, so nothing on the asyncio
path may insist that they are.
"""

from __future__ import annotations

import importlib.util

import pytest

from ._js import SKIP_REASON
from .test_secret_stream_js import KIB, PATTERNS, SIDES, check, exchange

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
    pytest.mark.skipif(
        importlib.util.find_spec("uvloop") is None,
        reason="uvloop is not installed (it is optional, not a dependency)",
    ),
]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("side", SIDES)
async def test_data_both_ways_on_uvloop(side: str, pattern: str) -> None:
    outcome = await exchange(side, pattern, js_sends=64 * KIB, py_sends=64 * KIB)
    check(outcome, js_sends=64 * KIB, py_sends=64 * KIB)
