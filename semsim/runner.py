"""The scenario runner: sweep the points, write a tidy CSV incrementally and atomically, resume.

Layout of an output folder::

    results.csv         every finished point's rows, in the scenario's canonical point order
    provenance.json     package versions, git commit, scenario hash, weights and data sha256, device
    .points/*.csv       one file per finished point (written atomically: temp file + rename) ...
    .points/*.json      ... beside the record of the inputs it was computed from
    .lock               the run's lock (flock): who writes into the folder
    plots/              PNG and PDF curves (``semsim plot``)

Each point is computed, written to ``.points/<id>-<seed>-<inputs>.csv`` atomically, and
``results.csv`` is then rebuilt atomically from the finished points. A run killed at any moment
(even SIGKILL) leaves only whole points behind; a rerun skips them, and because every point reseeds
all generators from its own seed, the final CSV equals an uninterrupted run's (the timing column
``seconds`` aside).

A point file is named by everything its numbers depend on: the point's key (dataset, budget,
channel, SNR, method, MCS) and seed, and a hash of its inputs (:meth:`Runner.inputs`): the
scenario-wide settings, each spec's options with the code's defaults for those not given, the
content of the dataset's files and the sha256 of the method's weights. So after editing a scenario
(another SNR, another method) a rerun computes only the points that are new, and after replacing
a weights file or an image, or after a changed default, it recomputes the points they feed and
says which and why.

One run at a time writes into a folder: a run of other inputs, or a ``--fresh`` run, is refused
while another holds the folder's lock (runs of the same inputs share it; the kernel releases it
when a process dies).

Shards. ``shard=(K, N)`` (``semsim run --shard K/N``, ``0 <= K < N``) computes only the points of
shard K into ``.points/`` and writes no ``results.csv``, provenance or plots; a later run without a
shard assembles them (computing only points still missing). Shards of one run share the folder's
lock, so they may run at once (a job array on a shared file system). The points are dealt to the
shards by :func:`shard_points`: deterministic, balanced by the estimated cost of each point.
Under ``torchrun`` (``WORLD_SIZE > 1``) each rank runs shard ``RANK/WORLD_SIZE`` on
``cuda:LOCAL_RANK`` (or the CPU), the ranks meet at a Gloo barrier (Gloo allows ranks that share
a GPU) and rank 0 then assembles the outputs.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import registry
from .config import derive_seed, seed_everything, set_device
from .errors import ConfigError, OutputError
from .evaluate import COLUMNS
from .files import check_output_folder, file_sha256, folder_lock, remove_orphans, write_atomic
from .provenance import git_commit
from .results import csv_text
from .scenario import BER_COLUMNS, Point, Scenario, SweepScenario, load_scenario, spec_key
from .shards import parse_shard, shard_points

#: a dataset whose decoded samples fit in this many bytes is decoded once per run, not per point
SAMPLE_CACHE_BYTES = 2 * 2**30
#: Columns that measure wall time and so differ between otherwise identical runs.
TIMING_COLUMNS = ("seconds",)
POINTS_DIR = ".points"


def _digest(value: Any) -> str:
    """sha256 of plain data (key order does not matter)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --- provenance ---------------------------------------------------------------------------------

def provenance(sc: Scenario, device: str, weights: dict[str, str] | None = None,
               data: dict[str, str] | None = None) -> dict[str, Any]:
    """Package versions, git commit, scenario hash, weights and data sha256 and device of a run."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("semsim", "torch", "torchvision", "sionna-no-rt", "numpy", "Pillow", "pytorch-msssim",
                "torchmetrics"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "scenario": sc.name,
        "scenario_file": str(sc.path) if sc.path else None,
        "scenario_hash": sc.hash,
        "scenario_content": sc.raw,
        "git_commit": git_commit(),
        "versions": {"python": platform.python_version(), **versions},
        "device": dev,
        "host": platform.node(),
        "weights_sha256": weights or {},
        "data_sha256": data or {},
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --- the runner ---------------------------------------------------------------------------------

class Runner:
    """Runs a validated :class:`~semsim.scenario.SweepScenario` (transmission or BER) into an output
    folder. See the module docstring. The runner knows no kind: a point's rows come from its
    scenario's :meth:`~semsim.scenario.SweepScenario.point_rows`, which builds what it needs through
    :meth:`dataset`, :meth:`samples`, :meth:`channel` and :meth:`codec` (each built once per run)."""

    def __init__(self, scenario: Scenario | str | Path, output: str | Path | None = None,
                 device: str | None = None, fresh: bool = False, progress: bool = True,
                 shard: tuple[int, int] | str | None = None):
        self.sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if not isinstance(self.sc, SweepScenario):
            raise ConfigError(f"scenario {self.sc.name!r} is of kind {self.sc.kind!r}; run it with `semsim train`")
        self.device = set_device(device or self.sc.device)
        self.out = Path(output) if output is not None else self.sc.output
        self.fresh = fresh
        self.progress = progress
        self.shard = parse_shard(shard) if isinstance(shard, str) else shard
        if self.shard is not None:
            parse_shard(f"{self.shard[0]}/{self.shard[1]}")
            if fresh:
                raise ConfigError("--fresh cannot be used with --shard (each shard would delete the others' "
                                  "points); delete the output folder first")
        #: whether this run wrote the merged outputs (results.csv, provenance); a shard, or a torchrun
        #: rank other than 0, does not
        self.assembled = False
        self._joined = False  # whether this process has joined a torchrun launch
        self.columns = self.sc.columns
        self._datasets: dict[int, Any] = {}
        self._decoded: dict[int, list | None] = {}
        self._channels: dict[int, Any] = {}
        self._codecs: dict[tuple[int, str], Any] = {}
        self._spec_inputs: dict[tuple[str, int], tuple[str, str]] | None = None
        self._stems: dict[str, str] = {}
        #: sha256 of each method's weights file (by method label) and of each dataset's content
        self.weights_sha256: dict[str, str] = {}
        self.data_sha256: dict[str, str] = {}

    @property
    def csv_path(self) -> Path:
        return self.out / "results.csv"

    def _prepare_output(self) -> None:
        if self.fresh:
            shutil.rmtree(self.out / POINTS_DIR, ignore_errors=True)
            self.csv_path.unlink(missing_ok=True)
        (self.out / POINTS_DIR).mkdir(parents=True, exist_ok=True)

    # --- what a point's numbers depend on -------------------------------------------------------
    def _specs_inputs(self) -> dict[tuple[str, int], tuple[str, str]]:
        """``(kind, index) -> (what, digest)`` for every channel, dataset and method of the scenario
        (computed once: it reads the datasets' files and the weights, through the hash cache)."""
        from .presets import load_preset
        from .data import content_hash

        if self._spec_inputs is not None:
            return self._spec_inputs
        specs, out = self.sc.specs(), {}
        for c, ch in enumerate(specs["channel"]):
            out["channel", c] = (f"options of channel {spec_key(ch)}", _digest(registry.resolved("channel", ch)))
        for d, spec in enumerate(specs.get("dataset", [])):
            label = spec_key(spec)
            self.data_sha256[label] = content_hash(self.dataset(d))
            out["data", d] = (f"options of data {label}", _digest(registry.resolved("dataset", spec)))
            out["content", d] = (f"content of data {label}", self.data_sha256[label])
        for m, spec in enumerate(specs.get("codec", [])):
            label = spec_key(spec, skip=("mcs",))  # a point's MCS is in its key
            opts = registry.resolved("codec", spec, skip=("mcs",))
            cls, _ = registry.lookup("codec", spec["name"])
            if getattr(cls, "presets_file", None) and opts.get("preset"):  # the architecture, as data
                opts["preset_config"] = load_preset(cls.presets_file, cls.method, opts["preset"])
            out["method", m] = (f"options of method {label}", _digest(opts))
            if opts.get("weights"):
                from .presets import weights_file

                path = weights_file(cls.method, opts.get("preset", ""), opts["weights"])
                self.weights_sha256[label] = file_sha256([path])[0]
                out["weights", m] = (f"weights of method {label}", self.weights_sha256[label])
        self._spec_inputs = out
        return out

    def inputs(self, pt: Point) -> dict[str, str]:
        """What ``pt``'s numbers depend on besides its key and seed, as ``{what: digest}``: the
        scenario-wide settings, the options of its channel, dataset and method (with the code's
        defaults for options not given; a learned method's preset as data), the content of its
        dataset's files and the sha256 of its method's weights."""
        specs = self._specs_inputs()
        return {"scenario settings": _digest(self.sc.settings()),
                **dict(specs[r] for r in self.sc.input_refs(pt) if r in specs)}

    def _part(self, pt: Point) -> Path:
        """A finished point's file, named ``<id>-<seed>-<hash of its inputs>.csv``; the inputs are
        recorded beside it (``.json``). See the module docstring."""
        if pt.id not in self._stems:
            self._stems[pt.id] = f"{pt.id}-{pt.seed}-{_digest(self.inputs(pt))[:16]}"
        return self.out / POINTS_DIR / f"{self._stems[pt.id]}.csv"

    def _why(self, pt: Point, files: list[Path]) -> list[str]:
        """Why ``pt`` is computed again: what differs from the inputs of its newest earlier file
        among ``files`` (the point files of ``pt.id``); none if it was never computed."""
        older = [p for p in files if p != self._part(pt)]
        if not older:
            return []
        last = max(older, key=lambda p: p.stat().st_mtime_ns)
        try:
            before = json.loads(last.with_suffix(".json").read_text())
            old = before["inputs"]
        except (OSError, ValueError, KeyError, TypeError):
            return ["its inputs were not recorded (an older semsim wrote it)"]
        new = self.inputs(pt)
        why = [f"{k} changed" for k in sorted(new.keys() | old.keys()) if new.get(k) != old.get(k)]
        if before.get("seed") != pt.seed:
            why.append("the scenario seed changed")
        return why or ["its inputs changed"]

    def _rebuild_csv(self, points: list[Point]) -> None:
        chunks = [csv_text([], self.columns)]
        for pt in points:
            try:
                chunks.append(self._part(pt).read_text().split("\n", 1)[1])
            except FileNotFoundError:
                continue
        write_atomic(self.csv_path, "".join(chunks))

    def run(self, only: Iterable[str] | None = None) -> Path:
        """Run every unfinished point (or only the point ids in ``only``); return the CSV path.

        The output folder is checked first; a run that fails before its first point finishes
        removes the folder it created, so it leaves no files.

        :raises OutputError: another run with other inputs (or a ``--fresh`` one) holds the output
            folder, or points of this run have no results at its end.
        """
        check_output_folder(self.out)
        if self.shard is None and not self._joined and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return self._ranks(only)
        created = not self.out.exists()
        try:
            return self._locked(only)
        except BaseException:  # (a shard leaves the folder: other shards may be starting in it)
            if created and self.shard is None and not any((self.out / POINTS_DIR).glob("*.csv")):
                shutil.rmtree(self.out, ignore_errors=True)
            raise

    def _ranks(self, only: Iterable[str] | None) -> Path | None:
        """A ``torchrun`` rank: compute shard ``RANK/WORLD_SIZE``, wait for all ranks, rank 0 assembles."""
        from .distributed import Dist

        dist, self.device = Dist.setup(self.device, backend="gloo", timeout=timedelta(days=30))
        self._joined = True
        try:
            if self.fresh:
                if dist.main:  # rank 0 clears the folder before any rank writes into it
                    self.run(only=[])
                self.fresh = False
                dist.barrier()
            self.shard = (dist.rank, dist.world)
            self.run(only)
            dist.barrier()
            self.shard = None
            return self.run(only) if dist.main else None
        finally:
            dist.close()

    def _locked(self, only: Iterable[str] | None = None) -> Path:
        """Take the output folder's lock, clean up what a killed run left, then run the points."""
        points = self.sc.points()
        if only is not None:
            wanted = set(only)
            unknown = wanted - {p.id for p in points}
            if unknown:
                raise ConfigError(f"unknown point id(s) {sorted(unknown)}; `semsim validate` lists them")
            todo = [p for p in points if p.id in wanted]
        else:
            todo = points
        if self.shard is not None:
            seconds = dict(zip((p.id for p in points), self.sc.point_seconds()))
            todo = shard_points(todo, [seconds[p.id] for p in todo], *self.shard)
        identity = _digest({"scenario": self.sc.hash, "points": [self._part(p).name for p in points]})

        def orphans() -> None:  # no other run writes here (none may join yet): temporary files are a killed run's
            remove_orphans(self.out, ("results.csv", "provenance.json"))
            remove_orphans(self.out / POINTS_DIR)

        with folder_lock(self.out, identity, {"scenario": self.sc.name}, exclusive=self.fresh,
                         when_alone=orphans) as lock:
            self._prepare_output()
            lock.share()
            return self._run(points, todo)

    def _run(self, points: list[Point], todo: list[Point]) -> Path:
        assemble = self.shard is None
        prov = provenance(self.sc, self.device, self.weights_sha256, self.data_sha256)
        if assemble:
            write_atomic(self.out / "provenance.json", json.dumps(prov, indent=2))
        pending = [p for p in todo if not self._part(p).exists()]
        files: dict[str, list[Path]] = {}
        for f in (self.out / POINTS_DIR).glob("*.csv"):
            files.setdefault(f.name.split("-", 1)[0], []).append(f)
        why = {p.id: self._why(p, files.get(p.id, [])) for p in pending}
        recomputed = sum(1 for p in pending if why[p.id])
        reasons = Counter(r for p in pending for r in why[p.id])
        if recomputed:
            print(f"semsim: recomputing {recomputed} point(s) computed before from other inputs: "
                  + "; ".join(f"{r} ({n})" for r, n in reasons.most_common()), file=sys.stderr)
        t_run = time.perf_counter()
        bar = tqdm(total=len(todo), initial=len(todo) - len(pending), desc=self.sc.name, unit="point",
                   disable=not self.progress)
        for pt in pending:
            part = self._part(pt)
            if not part.exists():  # else a run of the same inputs finished it meanwhile
                bar.set_postfix_str(pt.key[-60:])
                rows = self.point_rows(pt)
                record = {"point": pt.id, "key": pt.key, "seed": pt.seed, "inputs": self.inputs(pt)}
                write_atomic(part.with_suffix(".json"), json.dumps(record, indent=1))
                write_atomic(part, csv_text(rows, self.columns))
                if assemble:
                    self._rebuild_csv(points)
            bar.update(1)
        bar.close()
        missing = [p for p in todo if not self._part(p).exists()]
        if missing:
            raise OutputError(f"{len(missing)} of {len(todo)} points have no results in '{self.out}' (their files "
                              f"were removed while this run went on); rerun to compute them")
        if not assemble:
            return self.out / POINTS_DIR
        self._rebuild_csv(points)
        prov["last_run"] = {"points_run": len(pending), "points_already_done": len(todo) - len(pending),
                            "points_recomputed": recomputed, "recomputed_because": dict(reasons),
                            "wall_seconds": round(time.perf_counter() - t_run, 2)}
        prov["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_atomic(self.out / "provenance.json", json.dumps(prov, indent=2))
        self.assembled = True
        return self.csv_path

    # --- one point ------------------------------------------------------------------------------
    def point_rows(self, pt: Point) -> list[dict[str, Any]]:
        """Compute point ``pt`` (its scenario kind's :meth:`~semsim.scenario.SweepScenario.point_rows`)."""
        return self.sc.point_rows(self, pt)

    def dataset(self, i: int):
        """Dataset ``i`` of the scenario, built once."""
        if i not in self._datasets:
            self._datasets[i] = registry.build("dataset", self.sc.data[i])
        return self._datasets[i]

    def samples(self, i: int):
        """Dataset ``i``, decoded once and kept for the next points when it fits in
        :data:`SAMPLE_CACHE_BYTES` (float32 images and int64 labels); otherwise read every point."""
        from .data import image_sizes

        if i not in self._decoded:
            ds = self.dataset(i)
            nbytes = sum(h * w for h, w in image_sizes(ds)) * (3 * 4 + 8)
            self._decoded[i] = list(ds) if nbytes <= SAMPLE_CACHE_BYTES else None
        return self._decoded[i] if self._decoded[i] is not None else self.dataset(i)

    def channel(self, i: int):
        """Channel ``i`` of the scenario, built once."""
        if i not in self._channels:
            self._channels[i] = registry.build("channel", self.sc.channels[i])
        return self._channels[i]

    def codec(self, pt: Point):
        """The codec of ``pt`` (built once per method and budget, on the run's device, in eval mode),
        set to the point's sweep axes (its MCS)."""
        key = (pt.method, pt.budget.key)
        if key not in self._codecs:
            # untrained weights are a function of (scenario seed, method, budget) alone, so a shard
            # or an --only run initialises them as the whole sweep does
            seed_everything(derive_seed(self.sc.seed, "init", spec_key(self.sc.methods[pt.method]), pt.budget.key))
            codec = registry.build("codec", self.sc.methods[pt.method], budget=pt.budget)
            expected = (self._spec_inputs or {}).get(("weights", pt.method), ("", ""))[1]
            loaded = getattr(codec, "weights_sha256", "")
            if expected and loaded and loaded != expected:  # the point would be filed under other weights
                raise OutputError(f"the weights of method {spec_key(self.sc.methods[pt.method], skip=('mcs',))} "
                                  f"changed during the run (sha256 {expected[:12]}… became {loaded[:12]}…); "
                                  f"rerun to compute their points with the new file")
            self._codecs[key] = codec.to(self.device).eval()
        return self._codecs[key].with_axes(**dict(pt.axes))


def run(scenario: Scenario | str | Path, output: str | Path | None = None, device: str | None = None,
        fresh: bool = False, only: Iterable[str] | None = None, progress: bool = True,
        shard: tuple[int, int] | str | None = None) -> Path | None:
    """Run a scenario (a path or a :class:`Scenario`); returns the path of ``results.csv`` (a shard:
    of the folder of its point files; a torchrun rank other than 0: ``None``). See the module
    docstring for shards."""
    return Runner(scenario, output=output, device=device, fresh=fresh, progress=progress,
                  shard=shard).run(only=only)


__all__ = ["BER_COLUMNS", "COLUMNS", "TIMING_COLUMNS", "Runner", "parse_shard", "provenance", "run", "shard_points"]
