"""Shared fixtures: the device, the ../shared data folder, a fresh seed per test."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cells_close(a: str, b: str, rel: float, abs_tol: float) -> bool:
    """Two CSV cells are equal: the same text, both NaN, or numbers within ``rel`` (relative) or
    ``abs_tol`` (absolute) of each other."""
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rel, abs_tol=abs_tol)


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


def fit_steps(codec, task, images, labels, steps: int, lr: float = 1e-3, snr_db: float = 10.0):
    """``steps`` AdamW steps of ``codec.training_step`` on one fixed batch through AWGN at
    ``snr_db``; returns the losses and the last output. The seed cycles over five values so the
    random draws inside (time steps, symbol counts, noise) repeat."""
    import torch

    from semsim.channels import build_channel

    channel = build_channel("awgn")
    opt = torch.optim.AdamW(codec.parameters(), lr=lr)
    losses, out = [], None
    for step in range(steps):
        torch.manual_seed(100 + step % 5)
        loss, out = codec.training_step(task, images, labels, channel, torch.full((images.shape[0],), snr_db))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, out
