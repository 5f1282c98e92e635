"""The built-in channels, codecs and datasets: importing this module registers them.

``semsim/__init__`` imports it (as timm's package imports its models), so every ``import semsim``
or ``import semsim.<anything>`` sees the built-ins, while :mod:`semsim.registry` itself imports
nothing of semsim's. Third-party plugins come from entry points and ``--plugin`` (see
:mod:`semsim.registry`).
"""
from __future__ import annotations

from . import baselines, channels, channels_ofdm, data  # noqa: F401  (their @register decorators run)
from .semantic import system  # noqa: F401
