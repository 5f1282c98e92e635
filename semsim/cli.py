"""The ``semsim`` command line: ``validate``, ``run``, ``train``, ``ship``, ``report``, ``plot``, ``list``,
``info``, ``transmit``, ``grid``.

:func:`main` takes ``argv`` and returns an exit status, so tests call it directly; each subcommand
is a function ``cmd_<name>(args)``. User errors (:class:`~semsim.errors.SemsimError`) print one line
to stderr and exit 2. ``--plugin MODULE`` (repeatable, on every subcommand but ``plot``) imports a
module that registers a user's channels, codecs or datasets before the command runs.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence

from .errors import SemsimError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semsim", description="Link-level simulator with learned semantic codecs.")
    sub = p.add_subparsers(dest="command", required=True)
    plugin = argparse.ArgumentParser(add_help=False)
    plugin.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first: its @register classes become usable by name (repeatable)")
    _add_scenario_commands(sub, plugin)
    _add_release_commands(sub, plugin)
    pl = sub.add_parser("plot", help="draw PNG/PDF curves from a results CSV")
    pl.add_argument("csv")
    pl.add_argument("--out", default=None, help="folder for the plots (default: plots/ beside the CSV)")
    pl.add_argument("--x", choices=("snr", "ebno"), default="snr", help="BER plots: Es/N0 or Eb/N0 axis")
    pl.add_argument("--anchors", default=None, metavar="CSV",
                    help="published curves to overlay on Kodak PSNR plots (default: $SEMSIM_SHARED/anchors)")
    sub.add_parser("list", parents=[plugin], help="list registered channels, codecs and datasets")
    i = sub.add_parser("info", parents=[plugin], help="parameters per module of a learned method's preset (built "
                                                      "on the meta device: no memory, no weights)")
    i.add_argument("preset", nargs="?", default=None,
                   help="a preset (small, paper) of --method; omitted: every learned method and preset")
    i.add_argument("--method", default="semantic", help="registered codec name (default: semantic)")
    _add_transmit(sub, plugin)
    g = sub.add_parser("grid", parents=[plugin], help="draw one figure of every method's output for a few images "
                                                      "of a scenario (first dataset and budget, one channel, one SNR)")
    g.add_argument("scenario")
    g.add_argument("--snr", type=float, default=None, metavar="DB",
                   help="Es/N0 in dB (default: the scenario's first snr_db)")
    g.add_argument("--images", nargs="+", default=None, metavar="ID", help="sample ids (default: the whole dataset)")
    g.add_argument("--out", default=None, metavar="PNG", help="the picture (default: <scenario output>/grid.png)")
    g.add_argument("--device", choices=("cpu", "cuda"), default=None, help="overrides the scenario's device")
    g.add_argument("--channel", default=None, metavar="NAME",
                   help="one of the scenario's channels (default: the first; its picture is grid_<channel>.png)")
    return p


def _add_scenario_commands(sub, plugin: argparse.ArgumentParser) -> None:
    """``validate``, ``run`` and ``train``."""
    v = sub.add_parser("validate", parents=[plugin], help="check a scenario, list its points and estimate the run time")
    v.add_argument("scenario")
    v.add_argument("--all", action="store_true", help="list every point (default: the first 20)")

    r = sub.add_parser("run", parents=[plugin], help="run a scenario: results.csv, provenance.json and plots")
    r.add_argument("scenario")
    r.add_argument("--device", choices=("cpu", "cuda"), default=None, help="overrides the scenario's device")
    r.add_argument("--output", default=None, help="output folder (default: the scenario's `output`)")
    r.add_argument("--fresh", action="store_true", help="discard finished points in the output folder")
    r.add_argument("--point", action="append", default=None, metavar="ID",
                   help="run only this point id (repeatable); ids are listed by `semsim validate --all`")
    r.add_argument("--shard", default=None, metavar="K/N",
                   help="compute only shard K of N (0 <= K < N; e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT) "
                        "into the output folder's point files; a later run without --shard assembles results.csv")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    t = sub.add_parser("train", parents=[plugin],
                       help="train the learned codecs of a `kind: train` scenario (resumes by default)")
    t.add_argument("scenario")
    t.add_argument("--device", choices=("cpu", "cuda"), default=None, help="overrides the scenario's device")
    t.add_argument("--output", default=None, help="output folder (default: the scenario's `output`)")
    t.add_argument("--fresh", action="store_true", help="discard earlier checkpoints, curves and weights")
    t.add_argument("--max-minutes", type=float, default=None, metavar="M",
                   help="stop after the step that passes M minutes, with a checkpoint; rerun to resume")
    t.add_argument("--steps", type=int, default=None, metavar="N", help="overrides the scenario's steps")
    t.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_release_commands(sub, plugin: argparse.ArgumentParser) -> None:
    """``ship`` and ``report``."""
    sh = sub.add_parser("ship", parents=[plugin], help="copy final trained weights into the package's pretrained/ "
                        "folder and record them (sha256, recipe, data, steps, device, ...) in its manifest")
    sh.add_argument("weights", nargs="+",
                    help="<output>/<method>/<method>.safetensors files (or training output folders) from semsim train")
    sh.add_argument("--into", default=None, metavar="DIR", help="folder (default: semsim/pretrained)")
    sh.add_argument("--force", action="store_true",
                    help="ship even if a candidate scores below the shipped weights or the budgets differ")
    sh.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the validation runs")

    rp = sub.add_parser("report", parents=[plugin], help="write docs/results.md (tables, plots, training curves, "
                        "timings) from the figure scenarios' results")
    rp.add_argument("--results", default="results", help="the results folder (default: results)")
    rp.add_argument("--out", default="docs/results.md", help="the page to write; figures go beside it")
    rp.add_argument("--anchors", default=None, metavar="CSV", help="published curves (default: $SEMSIM_SHARED/anchors)")
    rp.add_argument("--layout", default="docs/report.yaml", metavar="YAML",
                    help="which figures, grids and prose the page shows (default: docs/report.yaml)")


def _add_transmit(sub, plugin: argparse.ArgumentParser) -> None:
    x = sub.add_parser("transmit", parents=[plugin], help="send one image through a method and a channel; write "
                       "the reconstruction or a class overlay, print channel uses, CBR and PSNR / mIoU")
    x.add_argument("image", help="an image file (PNG, JPEG, …)")
    x.add_argument("--task", default=None, metavar="REQUEST",
                   help='a task name (reconstruction, segmentation) or a free-text request resolved by the '
                        'task KB, e.g. "label every pixel"; an ambiguous request is refused (default: the '
                        "method's task)")
    x.add_argument("--channel", default="awgn",
                   help='registered channel name, or inline YAML like "{name: rayleigh, block_length: 64}"')
    x.add_argument("--snr", type=float, default=10.0, metavar="DB", help="average Es/N0 in dB (default 10)")
    x.add_argument("--out", required=True, help="output picture, .png or .jpg (parent folders are created)")
    x.add_argument("--method", default=None, help="registered codec (default: semantic, the paper's system)")
    x.add_argument("--weights", default=None, metavar="FILE", help="a .safetensors file from `semsim train`")
    x.add_argument("--preset", default=None, help="preset of a learned method (default: small)")
    cap = x.add_mutually_exclusive_group()
    cap.add_argument("--budget", default=None, metavar="CBR", help="channel-use cap as a CBR, e.g. 1/16 (default)")
    cap.add_argument("--channel-uses", type=int, default=None, metavar="N", help="channel-use cap per image")
    x.add_argument("--mcs", default=None, help="MCS of a digital method (default: 16qam-1/2)")
    x.add_argument("--label", default=None, metavar="FILE",
                   help="ground-truth class map (palette or grey PNG) for the mIoU of a segmentation")
    x.add_argument("--steps", type=int, default=None, metavar="N",
                   help="diffusion sampling steps of the semantic decoder (default 1, the MMSE estimate)")
    x.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    x.add_argument("--seed", type=int, default=0, help="seeds untrained weights and the channel noise")


def cmd_validate(args) -> int:
    from .api import estimate_seconds, load_scenario

    sc = load_scenario(args.scenario)
    points = sc.points()
    print(f"scenario {sc.name!r} ({sc.kind}) is valid: {len(points)} points, seed {sc.seed}, "
          f"output {sc.output}")
    shown = points if args.all else points[:20]
    for p in shown:
        print(f"  {p.id}  seed={p.seed:<10d}  {p.key}")
    if len(shown) < len(points):
        print(f"  … {len(points) - len(shown)} more (--all lists every point)")
    est = estimate_seconds(sc)
    print(f"estimated run time on a 2-core CPU: about {_duration(est)} (a rough model, not a measurement)")
    return 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_run(args) -> int:
    from .api import plot, run
    from .results import ber_table, is_ber, read_csv, summary_table

    from .runner import parse_shard

    if args.shard is not None:
        parse_shard(args.shard)  # before anything slow
    t0 = time.perf_counter()
    csv_path = run(args.scenario, output=args.output, device=args.device, fresh=args.fresh, only=args.point,
                   progress=not args.quiet, shard=args.shard)
    if csv_path is None:  # a torchrun rank other than 0: rank 0 writes the outputs
        return 0
    if args.shard is not None:
        print(f"shard {args.shard}: its points are in {csv_path} ({time.perf_counter() - t0:.1f} s); when every "
              f"shard has finished, `semsim run` without --shard writes results.csv, provenance and plots")
        return 0
    rows = read_csv(csv_path)
    print(ber_table(rows) if is_ber(rows) else summary_table(rows))
    if not args.no_plots:
        plot(csv_path)
    print(f"\nwrote {csv_path} ({len(rows)} rows) in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_train(args) -> int:
    from .files import check_output_folder
    from .train import Trainer

    if args.output is not None:
        check_output_folder(args.output)
    trainer = Trainer(args.scenario, output=args.output, device=args.device, fresh=args.fresh,
                      max_minutes=args.max_minutes, steps=args.steps, progress=not args.quiet)
    try:
        paths = trainer.run()
    except KeyboardInterrupt:
        if trainer.dist.main:
            print("semsim: interrupted; a checkpoint was written, rerun the same command to resume", file=sys.stderr)
        return 130
    if trainer.dist.main:
        if trainer.stopped is not None:
            print(trainer.stopped.message())
        for name, path in paths.items():
            print(f"{name}: {path}")
    return 0


def cmd_plot(args) -> int:
    from pathlib import Path

    from .api import plot
    from .errors import ConfigError
    from .files import check_output_folder

    path = Path(args.csv)
    if not path.is_file():
        raise ConfigError(f"results file {args.csv!r} {'is a folder' if path.is_dir() else 'not found'}")
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read results file {args.csv!r}: {e}") from None
    if not {"scenario", "snr_db", "point"} <= set(header):
        raise ConfigError(f"{args.csv!r} is not a semsim results CSV (its header lacks the columns scenario, "
                          f"snr_db and point); give the results.csv that `semsim run` wrote")
    check_output_folder(args.out if args.out is not None else path.parent / "plots")
    paths = plot(args.csv, out_dir=args.out, x=args.x, anchors=args.anchors)
    for p in paths:
        print(p)
    if not paths:
        print(f"{args.csv}: no rows, nothing to plot")
    return 0


def cmd_list(args) -> int:
    from .registry import names

    for kind in ("channel", "codec", "dataset"):
        print(f"{kind}s: {', '.join(names(kind))}")
    return 0


def cmd_report(args) -> int:
    from .files import check_output_file
    from .report import report

    check_output_file(args.out)
    print(f"wrote {report(args.results, args.out, args.anchors, args.layout)}")
    return 0


def cmd_ship(args) -> int:
    from .config import set_device
    from .ship import ship_weights

    entries = ship_weights(args.weights, args.into, force=args.force, device=set_device(args.device), log=print)
    for name, e in entries.items():
        c = e["cumulative"]
        print(f"{name}: {e['file']} ({e['bytes'] / 2**20:.2f} MiB, sha256 {e['sha256'][:12]}…, {e.get('steps')} steps "
              f"on {e.get('device_name', e.get('device'))}, trained on {e.get('train_channel')}; cumulative "
              f"{c['steps']} steps, {c['images']} images in {len(c['rounds'])} round(s))")
    return 0


def cmd_info(args) -> int:
    from .info import describe_method, summary

    print(summary() if args.preset is None else describe_method(args.method, args.preset))
    return 0


def cmd_transmit(args) -> int:
    from .transmit import transmit

    budget = {"channel_uses": args.channel_uses} if args.channel_uses is not None else args.budget
    result = transmit(args.image, args.task, channel=args.channel, snr_db=args.snr, method=args.method,
                      weights=args.weights, preset=args.preset, budget=budget, mcs=args.mcs, truth=args.label,
                      sampling_steps=args.steps, device=args.device, seed=args.seed, out=args.out)
    if result.warning:
        print(f"semsim: warning: {result.warning}", file=sys.stderr)
    print("\n".join(result.lines()))
    w, h = result.picture.size
    shown = "input | predicted classes" if result.prediction is not None else "reconstruction"
    print(f"wrote {args.out} ({w}x{h}, {shown})")
    return 0


def cmd_grid(args) -> int:
    from .files import check_output_file
    from .visual import grid

    if args.out is not None:
        check_output_file(args.out)
    g = grid(args.scenario, snr_db=args.snr, images=args.images, out=args.out, device=args.device,
             channel=args.channel)
    for t in g.tiles:
        if t.caption:
            print(f"{t.image}  {' · '.join(t.column.splitlines())}: {' · '.join(t.caption.splitlines())}")
    print(f"wrote {g.path} ({len(g.images)} images x {len(g.columns)} columns) in {g.seconds:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from .registry import load_plugin

        for module in getattr(args, "plugin", []):
            load_plugin(module)
        return {"validate": cmd_validate, "run": cmd_run, "plot": cmd_plot, "list": cmd_list, "train": cmd_train,
                "info": cmd_info, "ship": cmd_ship, "report": cmd_report, "transmit": cmd_transmit, "grid": cmd_grid}[args.command](args)
    except SemsimError as e:
        print(f"semsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semsim: interrupted; finished points are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
