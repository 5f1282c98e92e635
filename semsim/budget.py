"""The channel-use budget and the task: the leaf types every other module shares.

The budget (:class:`Budget`) is a cap on complex channel uses per image, given either as a channel
bandwidth ratio ``cbr = N / (3 H W)`` (``H W`` the original image size, so padding never raises
``N``) or as absolute ``channel_uses``. A codec may use fewer symbols; the runner refuses one that
uses more (:class:`~semsim.errors.BudgetError`). Nothing pads the symbol vector to hit a budget.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any, ClassVar

from .errors import ConfigError


class Task(str, Enum):
    """What the receiver produces: an image, or per-pixel class logits."""

    RECONSTRUCTION = "reconstruction"
    SEGMENTATION = "segmentation"


def parse_ratio(value: Any, what: str = "cbr") -> float:
    """``1/16``, ``"1/16"`` or ``0.0625`` → ``0.0625``; anything else raises :class:`ConfigError`."""
    try:
        if isinstance(value, str):
            value = float(Fraction(value.replace(" ", "")))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        value = float(value)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{what} must be a number or a fraction like '1/16', got {value!r}") from None
    return value


@dataclass(frozen=True)
class Budget:
    """A cap on complex channel uses per image.

    :param kind: ``"cbr"`` (``value`` = N / (3 H W)) or ``"channel_uses"`` (``value`` = N).
    :param value: the cap.
    """

    kind: str
    value: float

    KINDS: ClassVar[tuple[str, ...]] = ("cbr", "channel_uses")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ConfigError(f"unknown budget kind {self.kind!r}; valid choices: 'cbr', 'channel_uses'")
        if not self.value > 0 or (self.kind == "cbr" and self.value > 1):
            raise ConfigError(f"budget {self.kind} must be positive{' and at most 1' if self.kind == 'cbr' else ''}, "
                              f"got {self.value!r}")

    def channel_uses(self, height: int, width: int) -> int:
        """The cap ``N_max`` for an image of ``height x width`` pixels (original size)."""
        if self.kind == "cbr":
            return int(math.floor(self.value * 3 * height * width + 1e-9))
        return int(self.value)

    @property
    def label(self) -> str:
        """The former name of :attr:`key` (deprecated: "label" is the ground-truth class map)."""
        warnings.warn("Budget.label is deprecated; use Budget.key", DeprecationWarning, stacklevel=2)
        return self.key

    @property
    def key(self) -> str:
        """``"cbr=1/16"`` or ``"channel_uses=10000"``: a readable key for tables and seeds."""
        if self.kind == "cbr":
            frac = Fraction(self.value).limit_denominator(1000)
            return f"cbr={frac.numerator}/{frac.denominator}" if abs(float(frac) - self.value) < 1e-12 \
                else f"cbr={self.value:g}"
        return f"channel_uses={int(self.value)}"


def cbr(channel_uses: int | float, height: int, width: int) -> float:
    """Channel bandwidth ratio ``N / (3 H W)`` for the original image size."""
    return float(channel_uses) / (3.0 * height * width)


__all__ = ["Budget", "Task", "cbr", "parse_ratio"]
