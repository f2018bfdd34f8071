"""The atheris targets (fuzz/targets.py) without atheris: every seed and every saved
regression input runs through its target and ends in a typed error at worst, so the
harness never rots and a fixed crash stays fixed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fuzz.run import NAMES
from fuzz.seeds import seeds
from fuzz.targets import TARGETS, frame as frame_target, run_one

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz" / "regressions"


def test_run_py_lists_every_target() -> None:
    assert set(NAMES) == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_and_regressions_run_clean(name: str) -> None:
    inputs = list(seeds(name))
    folder = REGRESSIONS / name
    if folder.is_dir():
        inputs += [p.read_bytes() for p in sorted(folder.iterdir())]
    rng = random.Random(name)
    for seed in list(inputs):
        for _ in range(50):  # a few damaged copies of each seed as well
            damaged = bytearray(seed)
            if damaged:
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            inputs.append(bytes(damaged))
    for data in inputs:
        run_one(name, data)


def test_a_valid_frame_seed_decodes() -> None:
    frame_target(seeds("frame")[0])
