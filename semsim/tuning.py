"""torch's intra-op thread count for a repeated CPU workload, chosen by timing it.

On a 2-core CPU two threads decode LDPC about 1.8x faster than one when the machine is idle and
several times slower when other processes keep it busy, so :class:`~semsim.digital.DigitalLink`
asks a :class:`ThreadTuner` (one per process, :func:`shared_tuner`) which count to use.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from .errors import ConfigError


class ThreadTuner:
    """Picks torch's intra-op thread count for a repeated CPU workload by timing it.

    Each candidate is tried ``probes`` times (in turn; a candidate more than twice as slow as the
    best after one try is not tried again), then the one with the lowest time per unit of work
    runs until ``every`` further calls have passed, when the probing starts again (the load of a
    shared machine changes).

    :param candidates: thread counts to try, e.g. ``(1, 2)``.
    :param probes: timed calls per candidate in each round of probing.
    :param every: calls between rounds of probing.

    Example::

        >>> tuner = ThreadTuner((1, 2))
        >>> with tuner.threads() as run:
        ...     _ = torch.ones(1000).sum()
        ...     run.work = 1000
        >>> tuner.choice in (None, 1, 2)
        True
    """

    def __init__(self, candidates: Sequence[int], probes: int = 2, every: int = 200):
        self.candidates = tuple(dict.fromkeys(int(c) for c in candidates))
        if not self.candidates or min(self.candidates) < 1:
            raise ConfigError(f"thread counts must be positive integers, got {candidates!r}")
        self.probes, self.every = probes, every
        self._samples: dict[int, list[float]] = {c: [] for c in self.candidates}
        self._calls = 0
        self.choice: int | None = None if len(self.candidates) > 1 else self.candidates[0]

    def _to_probe(self) -> list[int]:
        best = min((min(v) for v in self._samples.values() if v), default=math.inf)
        return [c for c, v in self._samples.items() if len(v) < self.probes and not (v and min(v) > 2 * best)]

    @property
    def probing(self) -> bool:
        """Whether some candidate still needs timing in this round."""
        return bool(self._to_probe())

    def pick(self) -> int:
        """The thread count for the next call: the least-timed candidate while probing, else the
        fastest."""
        todo = self._to_probe()
        if todo:
            return min(todo, key=lambda c: len(self._samples[c]))
        return self.choice

    def threads(self) -> "TunedRun":
        """A context that sets the thread count, restores the previous one on exit and records
        ``seconds / run.work`` (set ``run.work``, e.g. codewords x iterations; 0 skips the record)."""
        return TunedRun(self)

    def record(self, threads: int, seconds_per_work: float) -> None:
        """Count one call of :meth:`pick`'s ``threads`` that took ``seconds_per_work``."""
        if self.probing:
            self._samples[threads].append(seconds_per_work)
            if not self.probing:
                self.choice = min(self.candidates, key=lambda c: min(self._samples[c], default=math.inf))
                self._calls = 0
            return
        self._calls += 1
        if self._calls >= self.every:  # the load may have changed: probe again
            self._samples = {c: [] for c in self.candidates}


_TUNERS: dict[tuple[int, ...], ThreadTuner] = {}


def shared_tuner(candidates: tuple[int, ...]) -> ThreadTuner:
    """One tuner per process and candidate set: the best thread count is the machine's, not a
    code's, and every link probing anew would pay for the slow candidate again."""
    if candidates not in _TUNERS:
        _TUNERS[candidates] = ThreadTuner(candidates)
    return _TUNERS[candidates]


class TunedRun:
    """The context :meth:`ThreadTuner.threads` returns; set ``work`` inside it."""

    def __init__(self, tuner: ThreadTuner):
        self.tuner, self.work = tuner, 0

    def __enter__(self) -> "TunedRun":
        self._previous = torch.get_num_threads()
        self._threads = self.tuner.pick()
        torch.set_num_threads(self._threads)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        seconds = time.perf_counter() - self._start
        torch.set_num_threads(self._previous)
        if exc[0] is None and self.work > 0:
            self.tuner.record(self._threads, seconds / self.work)
