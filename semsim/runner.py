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

import csv
import hashlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
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
from .codec import Task, cbr
from .config import derive_seed, seed_everything, set_device
from .errors import ConfigError, OutputError
from .files import atomic_file, check_output_folder, file_sha256, folder_lock, remove_orphans
from .metrics import ConfusionMatrix, ms_ssim, psnr
from .scenario import Point, Scenario, load_scenario, spec_label

#: a dataset whose decoded samples fit in this many bytes is decoded once per run, not per point
SAMPLE_CACHE_BYTES = 2 * 2**30
COLUMNS = ("scenario", "dataset", "task", "method", "weights", "train_channel", "channel", "snr_db", "budget", "mcs",
           "code_rate", "image", "height", "width", "channel_uses", "overhead", "cbr", "psnr", "ms_ssim",
           "miou", "bits", "quality", "bler", "failed", "seed", "point", "seconds")
BER_COLUMNS = ("scenario", "channel", "modulation", "code_rate", "snr_db", "ebno_db", "bits", "bit_errors",
               "ber", "blocks", "block_errors", "bler", "seed", "point", "seconds")
#: Columns that measure wall time and so differ between otherwise identical runs.
TIMING_COLUMNS = ("seconds",)
POINTS_DIR = ".points"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.10g}"
    return str(value)


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def _csv_text(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in columns})
    return buf.getvalue()


def _digest(value: Any) -> str:
    """sha256 of plain data (key order does not matter)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --- provenance ---------------------------------------------------------------------------------

def _git_commit() -> str:
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
        "git_commit": _git_commit(),
        "versions": {"python": platform.python_version(), **versions},
        "device": dev,
        "host": platform.node(),
        "weights_sha256": weights or {},
        "data_sha256": data or {},
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --- shards -------------------------------------------------------------------------------------

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


# --- the runner ---------------------------------------------------------------------------------

class Runner:
    """Runs a validated :class:`Scenario` into an output folder. See the module docstring."""

    def __init__(self, scenario: Scenario | str | Path, output: str | Path | None = None,
                 device: str | None = None, fresh: bool = False, progress: bool = True,
                 shard: tuple[int, int] | str | None = None):
        self.sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if self.sc.kind == "train":
            raise ConfigError(f"scenario {self.sc.name!r} is of kind 'train'; run it with `semsim train`")
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
        self.columns = BER_COLUMNS if self.sc.kind == "ber" else COLUMNS
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
    def _settings(self) -> dict[str, Any]:
        """The scenario-wide settings that change a point's numbers besides its key and seed."""
        sc = self.sc
        return ({"kind": "ber", "min_errors": sc.min_errors, "max_bits": sc.max_bits,
                 "codeword_length": sc.codeword_length, "num_bp_iter": sc.num_bp_iter}
                if sc.kind == "ber" else {"kind": sc.kind, "batch_size": sc.batch_size})

    def _specs_inputs(self) -> dict[tuple[str, int], tuple[str, str]]:
        """``(kind, index) -> (what, digest)`` for every channel, dataset and method of the scenario
        (computed once: it reads the datasets' files and the weights, through the hash cache)."""
        from .codec import load_preset
        from .data import content_hash

        if self._spec_inputs is not None:
            return self._spec_inputs
        sc, out = self.sc, {}
        for c, ch in enumerate(sc.channels):
            out["channel", c] = (f"options of channel {spec_label(ch)}", _digest(registry.resolved("channel", ch)))
        if sc.kind != "ber":
            for d, spec in enumerate(sc.data):
                label = spec_label(spec)
                self.data_sha256[label] = content_hash(self._dataset(d))
                out["data", d] = (f"options of data {label}", _digest(registry.resolved("dataset", spec)))
                out["content", d] = (f"content of data {label}", self.data_sha256[label])
            for m, spec in enumerate(sc.methods):
                label = spec_label(spec, skip=("mcs",))  # a point's MCS is in its key
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
        refs = [("channel", pt.channel)]
        if self.sc.kind != "ber":
            refs += [("data", pt.data), ("content", pt.data), ("method", pt.method), ("weights", pt.method)]
        return {"scenario settings": _digest(self._settings()), **dict(specs[r] for r in refs if r in specs)}

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
        chunks = [_csv_text([], self.columns)]
        for pt in points:
            try:
                chunks.append(self._part(pt).read_text().split("\n", 1)[1])
            except FileNotFoundError:
                continue
        _atomic_write(self.csv_path, "".join(chunks))

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
        from .train import _Dist

        dist, self.device = _Dist.setup(self.device, backend="gloo", timeout=timedelta(days=30))
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
            from .api import point_seconds

            seconds = dict(zip((p.id for p in points), point_seconds(self.sc)))
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
            _atomic_write(self.out / "provenance.json", json.dumps(prov, indent=2))
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
                rows = self.ber_point(pt) if self.sc.kind == "ber" else self.transmission_point(pt)
                record = {"point": pt.id, "key": pt.key, "seed": pt.seed, "inputs": self.inputs(pt)}
                _atomic_write(part.with_suffix(".json"), json.dumps(record, indent=1))
                _atomic_write(part, _csv_text(rows, self.columns))
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
        _atomic_write(self.out / "provenance.json", json.dumps(prov, indent=2))
        self.assembled = True
        return self.csv_path

    # --- one point ------------------------------------------------------------------------------
    def _dataset(self, i: int):
        if i not in self._datasets:
            self._datasets[i] = registry.build("dataset", self.sc.data[i])
        return self._datasets[i]

    def _samples(self, i: int):
        """Dataset ``i``, decoded once and kept for the next points when it fits in
        :data:`SAMPLE_CACHE_BYTES` (float32 images and int64 labels); otherwise read every point."""
        from .data import image_sizes

        if i not in self._decoded:
            ds = self._dataset(i)
            nbytes = sum(h * w for h, w in image_sizes(ds)) * (3 * 4 + 8)
            self._decoded[i] = list(ds) if nbytes <= SAMPLE_CACHE_BYTES else None
        return self._decoded[i] if self._decoded[i] is not None else self._dataset(i)

    def _channel(self, i: int):
        if i not in self._channels:
            self._channels[i] = registry.build("channel", self.sc.channels[i])
        return self._channels[i]

    def _codec(self, pt: Point):
        key = (pt.method, pt.budget.label)
        if key not in self._codecs:
            # untrained weights are a function of (scenario seed, method, budget) alone, so a shard
            # or an --only run initialises them as the whole sweep does
            seed_everything(derive_seed(self.sc.seed, "init", spec_label(self.sc.methods[pt.method]), pt.budget.label))
            codec = registry.build("codec", self.sc.methods[pt.method], budget=pt.budget)
            expected = (self._spec_inputs or {}).get(("weights", pt.method), ("", ""))[1]
            loaded = getattr(codec, "weights_sha256", "")
            if expected and loaded and loaded != expected:  # the point would be filed under other weights
                raise OutputError(f"the weights of method {spec_label(self.sc.methods[pt.method], skip=('mcs',))} "
                                  f"changed during the run (sha256 {expected[:12]}… became {loaded[:12]}…); "
                                  f"rerun to compute their points with the new file")
            self._codecs[key] = codec.to(self.device).eval()
        return self._codecs[key].with_axes(**dict(pt.axes))

    def transmission_point(self, pt: Point) -> list[dict[str, Any]]:
        from .data import batches_by_size, stack

        ds, channel = self._dataset(pt.data), self._channel(pt.channel)
        codec = self._codec(pt)
        seed_everything(pt.seed)
        seg = codec.task is Task.SEGMENTATION
        cm = ConfusionMatrix(ds.num_classes, ds.ignore_index) if seg else None
        base = {"scenario": self.sc.name, "dataset": spec_label(self.sc.data[pt.data]), "task": codec.task.value,
                "method": codec.label, "weights": codec.weights,
                "train_channel": codec.train_channel, "channel": spec_label(self.sc.channels[pt.channel]),
                "snr_db": pt.snr_db, "budget": pt.budget.label, "seed": pt.seed, "point": pt.id,
                **dict(pt.axes)}
        rows = []
        for batch in batches_by_size(self._samples(pt.data), self.sc.batch_size):
            images, labels, ids = stack(batch)
            images = images.to(self.device)
            b, _, h, w = images.shape
            snr = torch.full((b,), pt.snr_db, device=self.device)
            t0 = time.perf_counter()
            with torch.no_grad():
                tr = codec.transmit(images, channel, snr)
            seconds = (time.perf_counter() - t0) / b
            for n in tr.channel_uses:
                codec.check_budget(n, h, w)
            if seg:
                cm.update(tr.output, labels)
                p = m = torch.full((b,), math.nan, dtype=torch.float64)
            else:
                p, m = psnr(images, tr.output).cpu(), ms_ssim(images, tr.output)
            for i in range(b):
                row = dict(base, image=ids[i], height=h, width=w, channel_uses=tr.channel_uses[i],
                           overhead=tr.overhead[i], cbr=cbr(tr.channel_uses[i], h, w), psnr=float(p[i]),
                           ms_ssim=float(m[i]), miou=math.nan, bits=tr.bits[i], failed=bool(tr.failed[i]),
                           seconds=seconds)
                row.update({k: v[i] for k, v in tr.extra.items()})
                rows.append(row)
        if seg:
            miou = cm.miou()
            for r in rows:
                r["miou"] = miou
        return rows

    def ber_point(self, pt: Point) -> list[dict[str, Any]]:
        from .ber import simulate_ber
        from .digital import MCS

        axes = dict(pt.axes)
        rate = None if axes["code_rate"] == "uncoded" else axes["code_rate"]
        mcs = MCS(axes["modulation"], rate)
        row = simulate_ber(self._channel(pt.channel), mcs, pt.snr_db, min_errors=self.sc.min_errors,
                           max_bits=self.sc.max_bits, codeword_length=self.sc.codeword_length,
                           num_bp_iter=self.sc.num_bp_iter, seed=pt.seed)
        row.update(scenario=self.sc.name, channel=spec_label(self.sc.channels[pt.channel]), seed=pt.seed,
                   point=pt.id, modulation=axes["modulation"], code_rate=axes["code_rate"])
        return [row]


def run(scenario: Scenario | str | Path, output: str | Path | None = None, device: str | None = None,
        fresh: bool = False, only: Iterable[str] | None = None, progress: bool = True,
        shard: tuple[int, int] | str | None = None) -> Path | None:
    """Run a scenario (a path or a :class:`Scenario`); returns the path of ``results.csv`` (a shard:
    of the folder of its point files; a torchrun rank other than 0: ``None``). See the module
    docstring for shards."""
    return Runner(scenario, output=output, device=device, fresh=fresh, progress=progress,
                  shard=shard).run(only=only)
