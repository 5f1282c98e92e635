"""Device and seeding: the one place that touches torch's, NumPy's and Sionna's global state.

Sionna blocks capture ``sionna.phy.config.device`` when they are built, so call
:func:`set_device` before building channels or codecs. Sionna draws its noise from
``sionna.phy.config.torch_rng``, seeded by ``sionna.phy.config.seed``; :func:`seed_everything`
reseeds it together with torch, NumPy and ``random`` so that a scenario point can be re-run alone
and give the same numbers.
"""
from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

from .errors import ConfigError

DEVICES = ("cpu", "cuda")


def set_device(device: str = "cpu") -> str:
    """Select the compute device for semsim and Sionna.

    :param device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    :returns: The canonical device string (``"cuda"`` becomes ``"cuda:0"``, as Sionna wants).
    """
    from sionna.phy import config as sionna_config

    if device == "cuda":
        device = "cuda:0"
    if not (device == "cpu" or device.startswith("cuda:")):
        raise ConfigError(f"unknown device {device!r}; valid choices: 'cpu', 'cuda', 'cuda:N'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was requested but no CUDA device is available; use 'cpu'")
    sionna_config.device = device
    return device


def get_device() -> str:
    """The device Sionna blocks are built on (``"cpu"`` or ``"cuda:N"``)."""
    from sionna.phy import config as sionna_config

    return sionna_config.device


def seed_everything(seed: int) -> None:
    """Reseed Python's ``random``, NumPy, torch and Sionna's ``config.seed`` with one integer."""
    from sionna.phy import config as sionna_config

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    sionna_config.seed = seed


def derive_seed(base_seed: int, *key: object) -> int:
    """A stable 31-bit seed for one sweep point, from the scenario seed and the point's key.

    The same ``(base_seed, key)`` always gives the same seed, in any process and any order of
    evaluation, so one point can be re-run alone.
    """
    text = "|".join([str(int(base_seed))] + [str(k) for k in key])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
