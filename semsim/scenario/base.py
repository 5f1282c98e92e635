"""What every scenario kind shares: :class:`Point`, the :class:`Scenario` base (name, seed, the
parsed YAML and its hash, output, device, channels) and :class:`SweepScenario`, the base of the
kinds ``semsim run`` computes point by point into rows."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..codec import Budget

#: the keys every kind takes
COMMON_KEYS = frozenset({"name", "kind", "seed", "description", "output", "device"})


@dataclass(frozen=True)
class Point:
    """One point of a sweep. ``key`` names it in words; ``id`` is a short stable hash of the key."""

    index: int
    key: str
    seed: int
    data: int = 0          # index into Scenario.data
    budget: Budget | None = None
    channel: int = 0       # index into Scenario.channels
    snr_db: float = 0.0
    method: int = 0        # index into Scenario.methods
    axes: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:12]


@dataclass
class Scenario:
    """A validated scenario (one subclass per ``kind``). ``raw`` keeps the parsed YAML mapping;
    ``hash`` identifies its content."""

    #: the ``kind:`` value of the subclass, and the keys it takes
    kind: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = COMMON_KEYS

    name: str
    seed: int
    raw: dict[str, Any]
    path: Path | None = None
    output: Path | None = None
    device: str = "cpu"
    channels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hash(self) -> str:
        """sha256 of the scenario's content (key order and formatting do not matter)."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def default_output(cls, name: str) -> str:
        """The output folder when the scenario names none."""
        return f"results/{name}"

    def parse(self, raw: dict[str, Any], check_classes: bool = True) -> None:
        """Fill and check this kind's fields from ``raw`` (the common ones are set)."""
        raise NotImplementedError

    def points(self) -> list[Point]:
        """The points in canonical order; every point carries its own seed."""
        raise NotImplementedError


@dataclass
class SweepScenario(Scenario):
    """A kind that ``semsim run`` computes point by point (:class:`~semsim.runner.Runner`): each
    point gives rows of :attr:`columns`, written to its own file named by its inputs."""

    #: the columns of the results CSV
    columns: ClassVar[tuple[str, ...]] = ()
    snr_db: list[float] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        """The scenario-wide settings that change a point's numbers besides its key and seed."""
        raise NotImplementedError

    def specs(self) -> dict[str, list[dict[str, Any]]]:
        """The specs a point's numbers depend on, by registry kind: ``{"channel": [...], ...}``
        (``"dataset"`` and ``"codec"`` where the kind has them)."""
        return {"channel": self.channels}

    def input_refs(self, pt: Point) -> list[tuple[str, int]]:
        """``(what, index)`` of the inputs ``pt`` depends on: ``("channel", c)``, and where the kind
        has them ``("data", d)``, ``("content", d)``, ``("method", m)``, ``("weights", m)``."""
        return [("channel", pt.channel)]

    def point_rows(self, runner, pt: Point) -> list[dict[str, Any]]:
        """Compute point ``pt``: its rows (dicts keyed by :attr:`columns`). ``runner`` gives the
        built channels, datasets and codecs (:class:`~semsim.runner.Runner`) and the device."""
        raise NotImplementedError

    def point_seconds(self) -> list[float]:
        """A rough run-time estimate of each point of :meth:`points` (same order) on a 2-core CPU;
        shards of a run are balanced by it and ``semsim validate`` sums it."""
        raise NotImplementedError
