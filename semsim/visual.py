"""Visual grids: what every method of a scenario delivers for a few images (``semsim grid``).

One figure per command, from an ordinary transmission scenario: its first dataset (or the images
named), its first budget, its first channel and one SNR. Rows are images; the columns are the
original, the ground truth (labelled data: a colour overlay of the class map), then one column per
method and MCS, titled as the results tables name the method (:func:`semsim.results.series_name`;
below it the task of a codec serving several, and the MCS). Every column is sent and scored by
:func:`semsim.evaluate.evaluate_batch`. A reconstruction tile shows the received image with its
PSNR; a segmentation tile the predicted classes blended over the input
(:func:`semsim.pictures.overlay`) with the image's mIoU. A segmentation method trained on another label space than the data's (CamVid weights, 11
classes, on PASCAL VOC, 21) is drawn in its own palette and marked "not scored".

Each method is sent exactly as ``semsim run`` sends that point: the point's seed (from the scenario
seed and the point's key), the scenario's ``batch_size``, the same codec and channel, so the grid
is reproducible and, over the whole dataset, its numbers are the run's per-image numbers (mIoU
aside: the run's is over the dataset, a tile's over its image). An untrained learned codec is also
built right after seeding with its point's seed, so its random weights are reproducible too.

Example::

    >>> from semsim.visual import grid
    >>> g = grid({"name": "doc", "data": {"name": "procedural", "num": 1, "height": 48, "width": 64},
    ...           "budget": {"cbr": "1/4"}, "channels": ["awgn"], "snr_db": [20],
    ...           "methods": [{"name": "jpeg+ldpc", "mcs": ["16qam-1/2"]}]}, out=tmp / "grid.png")
    >>> [t.column for t in g.tiles], g.path.name
    (['original', 'ground truth', 'JPEG+LDPC\\n16qam-1/2'], 'grid.png')
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import registry
from .codec import Task
from .errors import ConfigError
from .plots import slug
from .scenario import Point, Scenario, TransmissionScenario, load_scenario, parse_snr, spec_key

#: grid file name inside the scenario's output folder
GRID_FILE = "grid.png"
#: width of one tile in inches (the figure is drawn at :data:`DPI`)
TILE_INCHES = 2.8
DPI = 150
#: longest one-line caption under a tile; longer ones break after the score
CAPTION_CHARS = 46


@dataclass
class Tile:
    """One drawn tile.

    :ivar row: image row (dataset order); ``col``: column index.
    :ivar image: the sample id.
    :ivar column: the column title (method label, MCS on a second line).
    :ivar kind: ``"original"``, ``"truth"``, ``"reconstruction"`` or ``"segmentation"``.
    :ivar picture: what is drawn: ``[H, W, 3]`` float32 in [0, 1].
    :ivar caption: the text under the tile ("" for the original).
    :ivar psnr: dB of ``picture`` against the original (reconstruction), else NaN.
    :ivar miou: the image's mIoU (segmentation with the data's classes), else NaN.
    :ivar classes: the drawn class map, ``[H, W]`` int64 (void: -1), for truth and segmentation, else None.
    :ivar num_classes: classes of that map's label space, else None.
    :ivar scored: False for a segmentation in another label space than the data's.
    :ivar channel_uses: complex data symbols sent for the image (methods), else None.
    :ivar failed: a digital receiver could not decode (the picture is its fallback).
    """

    row: int
    col: int
    image: str
    column: str
    kind: str
    picture: np.ndarray
    caption: str = ""
    psnr: float = math.nan
    miou: float = math.nan
    classes: np.ndarray | None = None
    num_classes: int | None = None
    scored: bool = True
    channel_uses: int | None = None
    failed: bool = False


@dataclass
class Grid:
    """A drawn grid: the file, its title, columns, rows and tiles (row-major), and timing.

    :ivar axes: number of axes the figure holds (one per tile).
    :ivar seconds: wall time of the transmissions and the drawing.
    """

    path: Path
    title: str
    columns: list[str]
    images: list[str]
    tiles: list[Tile]
    axes: int
    seconds: float


def grid(scenario: Scenario | str | os.PathLike | dict[str, Any], snr_db: float | None = None,
         images: list[str] | None = None, out: str | os.PathLike | None = None,
         device: str | None = None, channel: str | None = None) -> Grid:
    """Send the first dataset's images through every method of ``scenario`` and draw the grid.

    :param scenario: a transmission scenario (file, mapping or :class:`Scenario`); files and
        mappings are loaded with ``check_classes=False``, so a segmentation method may predict
        another class count than the data's (drawn, not scored).
    :param snr_db: Es/N0 in dB (default: the scenario's first ``snr_db``).
    :param images: sample ids of the first dataset to show (default: all of it); the batches then
        differ from the whole dataset's, and with them the noise each image sees.
    :param out: the picture, ``.png`` or ``.jpg`` (default ``<scenario output>/grid.png``).
    :param device: ``"cpu"`` or ``"cuda"`` (default: the scenario's).
    :param channel: which of the scenario's channels, by name or label (default: the first); the
        default picture of another channel is ``grid_<channel>.png``.
    :returns: the :class:`Grid` written.
    :raises SemsimError: a bad scenario, SNR, image id, output path or budget.
    """
    from .pictures import check_output
    from .runner import Runner

    t0 = time.perf_counter()
    # cheap checks first: loading a scenario builds every codec
    if out is not None:
        check_output(out)
    if snr_db is not None:
        parse_snr(snr_db, "snr_db")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario, check_classes=False)
    if not isinstance(sc, TransmissionScenario):
        raise ConfigError(f"scenario {sc.name!r} is of kind {sc.kind!r}; a grid needs a transmission scenario")
    snr = sc.snr_db[0] if snr_db is None else float(snr_db)
    c = _channel_index(sc, channel)
    label = spec_key(sc.channels[c])
    path = check_output(Path(out) if out is not None else
                        sc.output / (GRID_FILE if c == 0 else f"grid_{slug(label)}.png"))
    runner = Runner(sc, device=device, progress=False)  # builds codecs and channels as `semsim run` does
    data_spec = sc.data[0] if images is None else {**sc.data[0], "ids": list(images)}
    ds = runner.dataset(0) if images is None else registry.build("dataset", data_spec)
    samples = list(ds)
    if not samples:
        raise ConfigError(f"no images to draw: {spec_key(data_spec)} selects none")
    columns, tiles = _input_tiles(samples, ds)
    for pt in _points(sc, snr, c):
        columns.append(_column_title(runner.codec(pt), sc.methods[pt.method]["name"], pt))
        tiles += _method_tiles(runner, pt, samples, ds, len(columns) - 1, columns[-1])
    tiles.sort(key=lambda t: (t.row, t.col))
    title = (f"{sc.name}: {spec_key(sc.data[0], skip=('ids', 'limit'))} · {label} at SNR "
             f"{snr:g} dB (Es/N0) · budget {sc.budgets[0].key} · seed {sc.seed}")
    g = Grid(path, title, columns, [s.id for s in samples], tiles, 0, 0.0)
    g.axes = draw(g, ds)
    g.seconds = time.perf_counter() - t0
    return g


def _channel_index(sc: Scenario, channel: str | None) -> int:
    """Which of the scenario's channels ``channel`` names (by label or name; None: the first)."""
    labels = [spec_key(c) for c in sc.channels]
    names = [ch["name"] for ch in sc.channels]
    if channel is None:
        return 0
    if channel in labels:
        return labels.index(channel)
    if channel in names:
        return names.index(channel)
    raise ConfigError(f"channel {channel!r} is not one of the scenario's channels; valid choices: "
                      f"{', '.join(labels)}")


def _input_tiles(samples: list, ds) -> tuple[list[str], list[Tile]]:
    """The first columns: the originals, and the ground truth of labelled data."""
    labelled = samples[0].label is not None
    columns = ["original"] + (["ground truth"] if labelled else [])
    tiles = []
    for r, s in enumerate(samples):
        tiles.append(Tile(r, 0, s.id, "original", "original", _rgb(s.image)))
        if labelled:
            void = (s.label < 0) | (s.label >= ds.num_classes)
            tiles.append(Tile(r, 1, s.id, "ground truth", "truth", _truth(s.image, s.label, void, ds),
                              classes=s.label.masked_fill(void, -1).numpy(), num_classes=ds.num_classes))
    return columns, tiles


def _method_tiles(runner, pt: Point, samples: list, ds, col: int, title: str) -> list[Tile]:
    """Column ``col``: the samples sent as ``semsim run`` sends point ``pt`` (its seed, batches,
    codec and channel) by :func:`~semsim.evaluate.evaluate_batch`."""
    from .config import seed_everything
    from .data import batches_by_size, stack
    from .evaluate import evaluate_batch

    seed_everything(pt.seed)  # fixes an untrained codec's weights (a method's MCS share its first point's)
    codec, channel = runner.codec(pt), runner.channel(pt.channel)
    seed_everything(pt.seed)  # the channel noise, as the runner draws it for this point
    rows = {s.id: r for r, s in enumerate(samples)}
    tiles = []
    for batch in batches_by_size(samples, runner.sc.batch_size):
        x, labels, ids = stack(batch)
        sent = evaluate_batch(codec, channel, x.to(runner.device), labels, pt.snr_db, task=codec.task,
                              metrics=("psnr",))
        tr, output = sent.transmission, sent.output.detach().float().cpu()
        for i, sample_id in enumerate(ids):
            tile = Tile(rows[sample_id], col, sample_id, title, sent.task.value, x[i].permute(1, 2, 0).numpy(),
                        channel_uses=int(tr.channel_uses[i]), failed=bool(tr.failed[i]))
            if sent.task is Task.SEGMENTATION:
                _segmentation_tile(tile, x[i], output[i], None if labels is None else labels[i], ds)
            else:
                _reconstruction_tile(tile, output[i], float(sent.scores["psnr"][i]))
            tiles.append(tile)
    return tiles


def _points(sc: Scenario, snr_db: float, channel: int = 0) -> list[Point]:
    """The scenario's points on its first dataset and budget, and channel ``channel``, at ``snr_db``:
    one per method and MCS, with the seeds ``semsim run`` gives them (the SNR is part of a point's key)."""
    one = dataclasses.replace(sc, snr_db=[snr_db])
    return [p for p in one.points() if p.data == 0 and p.budget == sc.budgets[0] and p.channel == channel]


def _column_title(codec, method: str, pt: Point) -> str:
    """The results tables' method label, "(untrained)" for a learned method without weights, and on a
    second line the task (of a codec that serves several) and the MCS."""
    from .results import series_name

    name = series_name({"method": codec.display_name, "train_channel": codec.train_channel})
    if "weights" in registry.parameters("codec", method) and not codec.weights:
        name += " (untrained)"
    extra = [codec.task.value] if len(codec.tasks) > 1 else []  # GenSC serves both tasks
    extra += [str(v) for k, v in pt.axes if k == "mcs"]
    return "\n".join([name, " · ".join(extra)] if extra else [name])


def _rgb(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float → ``[H, W, 3]`` float32 in [0, 1]."""
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def _blend(image: torch.Tensor, classes: torch.Tensor, num_classes: int) -> np.ndarray:
    """The input blended with the class colours (the right half of :func:`semsim.pictures.overlay`),
    ``[H, W, 3]`` float32 in [0, 1]."""
    from .pictures import overlay

    w = image.shape[-1]
    return np.asarray(overlay(image, classes, num_classes), dtype=np.float32)[:, w:] / 255


def _truth(image: torch.Tensor, label: torch.Tensor, void: torch.Tensor, ds) -> np.ndarray:
    """The ground truth over the input; ``void`` pixels (``[H, W]`` bool) stay the input."""
    picture = _blend(image, label.masked_fill(void, 0), ds.num_classes)
    picture[void.numpy()] = _rgb(image)[void.numpy()]
    return picture


def _reconstruction_tile(tile: Tile, output: torch.Tensor, psnr: float) -> None:
    tile.picture = _rgb(output)
    tile.psnr = psnr
    tile.caption = _caption(tile, f"PSNR {tile.psnr:.1f} dB")


def _segmentation_tile(tile: Tile, image: torch.Tensor, logits: torch.Tensor, label: torch.Tensor | None,
                       ds) -> None:
    from .metrics import ConfusionMatrix

    tile.num_classes = logits.shape[0]
    prediction = logits.argmax(0)
    tile.classes = prediction.numpy()
    tile.picture = _blend(image, prediction, tile.num_classes)
    tile.scored = tile.num_classes == ds.num_classes and label is not None
    if tile.scored:
        cm = ConfusionMatrix(ds.num_classes, ds.ignore_index)
        cm.update(prediction[None], label[None])
        tile.miou = cm.miou()
        score = f"mIoU {tile.miou:.2f}"
    else:
        score = f"trained on {tile.num_classes} classes: not scored"
    tile.caption = _caption(tile, score)


def _caption(tile: Tile, score: str) -> str:
    """``score · N channel uses`` (and a digital link's failure), on two lines when long."""
    rest = [f"{tile.channel_uses:,} channel uses"]
    if tile.failed:  # no source quality fits the budget (nothing sent), or the decoder failed
        rest.append("nothing sent: no quality fits" if tile.channel_uses == 0 else "decoding failed")
    line = " · ".join([score, *rest])
    return line if len(line) <= CAPTION_CHARS else score + "\n" + " · ".join(rest)


def _class_names(num_classes: int, ds) -> tuple[str, ...]:
    from .data import CAMVID_CLASSES, VOC_CLASSES

    if num_classes == ds.num_classes and ds.class_names:
        return tuple(ds.class_names)
    known = {len(CAMVID_CLASSES): CAMVID_CLASSES, len(VOC_CLASSES): VOC_CLASSES}
    return known.get(num_classes, tuple(f"class {c}" for c in range(num_classes)))


def draw(g: Grid, ds) -> int:
    """Draw ``g`` (tiles, column titles, captions, the classes shown) and write ``g.path`` atomically.

    :param ds: the dataset shown (its label space heads the legend).
    :returns: the number of axes the figure holds.
    """
    from matplotlib.patches import Patch

    from .files import atomic_file
    from .pictures import OUTPUT_FORMATS, palette
    from .plots import pyplot

    plt = pyplot()
    n_rows, n_cols = len(g.images), len(g.columns)
    aspect = float(np.median([t.picture.shape[0] / t.picture.shape[1] for t in g.tiles if t.col == 0]))
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(TILE_INCHES * n_cols, (0.85 * TILE_INCHES * aspect + 0.4) * n_rows + 1.0))
    for t in g.tiles:
        ax = axes[t.row, t.col]
        ax.imshow(t.picture, interpolation="lanczos" if t.picture.shape[1] > TILE_INCHES * DPI else "nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(t.caption, fontsize=7.5, color="firebrick" if t.failed or not t.scored else "black")
        if t.row == 0:
            ax.set_title(t.column, fontsize=9)
        if t.col == 0:
            ax.set_ylabel(t.image, fontsize=8)
    fig.suptitle(g.title, fontsize=11)
    shown: dict[int, set[int]] = {}  # label space → classes drawn in it, for the legend
    for t in g.tiles:
        if t.classes is not None:
            shown.setdefault(t.num_classes, set()).update(int(c) for c in np.unique(t.classes) if c >= 0)
    lines, width = [], max(12, 2 * n_cols)  # legend rows: one label space per row (the data's first)
    for n, present in sorted(shown.items(), key=lambda kv: kv[0] != ds.num_classes):
        names, colours = _class_names(n, ds), palette(n) / 255
        head = [Patch(color="none", label=f"{n} classes:")] if len(shown) > 1 else []
        entries = head + [Patch(color=colours[c], label=names[c]) for c in sorted(present)]
        lines += [entries[i:i + width] for i in range(0, len(entries), width)]
    if lines:
        ncol = max(map(len, lines))
        blank = Patch(color="none", label="")
        # matplotlib fills a legend column by column
        handles = [line[c] if c < len(line) else blank for c in range(ncol) for line in lines]
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=7, frameon=False)
    path = g.path
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format=OUTPUT_FORMATS[path.suffix.lower()].lower(), dpi=DPI)
    plt.close(fig)
    return len(fig.axes)


__all__ = ["GRID_FILE", "Grid", "Tile", "draw", "grid"]
