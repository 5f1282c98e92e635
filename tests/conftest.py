"""Shared fixtures: the device, the ../shared data folder, a fresh seed per test."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """``$SEMSIM_SHARED`` or ``../shared`` beside the checkout (CI has it there too)."""
    return Path(os.environ.get("SEMSIM_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_root()
    if not (root / "data").is_dir():
        pytest.skip(f"shared data folder not found at {root}")
    return root


@pytest.fixture(scope="session")
def kodak_dir(shared) -> Path:
    return shared / "data" / "kodak"


@pytest.fixture(params=["cpu"] + (["cuda:0"] if os.environ.get("SEMSIM_TEST_CUDA") else []))
def device(request):
    """Tests that take this fixture run on the CPU, and also on CUDA when SEMSIM_TEST_CUDA=1."""
    from semsim.config import set_device

    dev = set_device(request.param)
    yield dev
    set_device("cpu")


@pytest.fixture(autouse=True)
def _seed():
    from semsim.config import seed_everything

    seed_everything(1234)
