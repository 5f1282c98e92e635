"""Where results and weights come from: the git commit of the code, semsim's version and the device
in words. Recorded in ``provenance.json`` (:mod:`semsim.runner`) and in weights' metadata
(:mod:`semsim.train`).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch


def git_commit() -> str:
    """``git rev-parse HEAD`` of semsim's source (``-dirty`` when tracked files changed), else
    ``$SEMSIM_GIT_COMMIT`` (a launcher may say which commit a copy without ``.git`` is), else ``"unknown"``."""
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is None or out.returncode != 0:  # no git, or a copy without .git: the launcher may say which commit
        return os.environ.get("SEMSIM_GIT_COMMIT", "unknown")
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def known_commit() -> str:
    """:func:`git_commit`, or ``""`` when it is unknown (the form weights' metadata records)."""
    commit = git_commit()
    return "" if commit == "unknown" else commit


def semsim_version() -> str:
    """The installed package's version, else the source tree's ``semsim.__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("semsim")
    except PackageNotFoundError:
        from .version import __version__

        return __version__


def device_name(device: str) -> str:
    """What computed something, in words: the GPU's name (``"NVIDIA H200"``) or ``"CPU (N cores)"``."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({os.cpu_count()} cores)"
