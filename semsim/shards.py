"""Shards of a run: ``--shard K/N`` (:func:`parse_shard`) and which points shard K computes
(:func:`shard_points`: deterministic, balanced by each point's estimated seconds)."""
from __future__ import annotations

from .errors import ConfigError
from .scenario import Point


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with ``0 <= K < N`` (SLURM: ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``
    with ``--array=0-<N-1>``); otherwise :class:`ConfigError`."""
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        k = n = -1
    if not 0 <= k < n:
        raise ConfigError(f"--shard wants K/N with 0 <= K < N (e.g. 0/4 ... 3/4), not {text!r}")
    return k, n


def shard_points(points: list[Point], seconds: list[float], k: int, n: int) -> list[Point]:
    """The points of shard ``k`` of ``n``, in their order: greedy longest-processing-time, the
    points sorted by estimated ``seconds`` (longest first, ties by point index), each to the shard
    with the least estimated load so far (ties to the lower shard)."""
    load = [0.0] * n
    mine = set()
    for i in sorted(range(len(points)), key=lambda i: (-seconds[i], points[i].index)):
        s = min(range(n), key=lambda j: (load[j], j))
        load[s] += seconds[i]
        if s == k:
            mine.add(i)
    return [p for i, p in enumerate(points) if i in mine]
