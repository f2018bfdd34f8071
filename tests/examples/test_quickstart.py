"""The README's quick start, run exactly as a reader would: two copies, two processes."""

from __future__ import annotations

import pytest

from tests.cli.proc import REPO, Runner

pytestmark = pytest.mark.anyio


async def test_two_copies_of_the_quick_start_greet_each_other(cli: Runner) -> None:
    script = REPO / "examples" / "quickstart.py"
    first = await cli.start(script=script)
    first_id = (await first.wait_for(r"([0-9a-f]{8}) joined my-room", stream="stdout"))[1]
    second = await cli.start(script=script)
    second_id = (await second.wait_for(r"([0-9a-f]{8}) joined my-room", stream="stdout"))[1]
    assert first_id != second_id
    await first.wait_for(rf"b'hello from {second_id}'", stream="stdout")
    await second.wait_for(rf"b'hello from {first_id}'", stream="stdout")
