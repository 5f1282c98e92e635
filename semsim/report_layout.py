"""The layout of a results page (``semsim report``): which figures, grids and sections, in which
order, with which prose. A layout is data, a YAML file outside the package (this repository's:
``docs/report.yaml``), read into :class:`Layout` by :func:`load_layout`, which names a bad key.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .typed import from_mapping

#: the layout ``semsim report`` reads by default (relative to the working directory)
DEFAULT_LAYOUT = "docs/report.yaml"
#: sections a layout's ``sections`` may name besides its figures and grids
SECTIONS = ("weights", "ablation", "digital_receiver", "timings", "account")


@dataclass(frozen=True)
class Figure:
    """One figure scenario: its key, scenario file, results folder, metric (``psnr``, ``miou``),
    title and what it shows. Key ``cbr`` is drawn as a PSNR-vs-CBR table."""

    key: str
    scenario: str
    folder: str
    metric: str
    title: str
    about: str
    #: overlay the published curves (``--anchors``) as extra rows of the AWGN table
    anchors: bool = False


@dataclass(frozen=True)
class Grid:
    """One visual grid (``semsim grid``): its key, scenario file, results folder and title."""

    key: str
    scenario: str
    folder: str
    title: str


@dataclass(frozen=True)
class Layout:
    """What a results page shows, in order (read from a YAML file by :func:`load_layout`).

    :ivar highlight: the method label the account compares with every other method.
    :ivar intro: the first paragraphs (``{now}`` and ``{results}`` are filled in).
    :ivar sections: keys of figures and grids, and of :data:`SECTIONS`, in page order.
    :ivar account: groups of figures the account compares on: ``{what: "Kodak", figures: [fig5]}``.
    :ivar why: the account's explanation, after its computed lines.
    :ivar weights: the shipped-weights section's prose (``{recipes}`` filled in); ``curves``: the
        training curves' picture, relative to the results folder.
    :ivar ablation: the ablation section's prose (``{path}``, ``{crop}`` filled in).
    :ivar timings: the sentence above the timings table; ``timed``: the results folders (a glob) it times.
    """

    highlight: str
    intro: str
    sections: list[str]
    figures: list[dict[str, Any]]
    grids: list[dict[str, str]]
    account: list[dict[str, Any]]
    why: str = ""
    weights: str = ""
    curves: str = ""
    ablation: str = ""
    timings: str = ""
    timed: str = ""

    def figure(self, key: str) -> Figure | None:
        return next((Figure(**f) for f in self.figures if f["key"] == key), None)

    def grid(self, key: str) -> Grid | None:
        return next((Grid(**g) for g in self.grids if g["key"] == key), None)


def load_layout(path: str | Path = DEFAULT_LAYOUT) -> Layout:
    """The :class:`Layout` in the YAML file ``path``; :class:`ConfigError` naming a bad key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"report layout {str(path)!r} not found; give the YAML file that lists the figures "
                          f"(this repository's: {DEFAULT_LAYOUT})")
    layout = from_mapping(Layout, yaml.safe_load(path.read_text()), f"report layout {str(path)!r}")
    for f in layout.figures:
        from_mapping(Figure, f, f"report layout {str(path)!r}: figure")
    for g in layout.grids:
        from_mapping(Grid, g, f"report layout {str(path)!r}: grid")
    known = [*SECTIONS, *(f["key"] for f in layout.figures), *(g["key"] for g in layout.grids)]
    unknown = [k for k in layout.sections if k not in known]
    if unknown:
        raise ConfigError(f"report layout {str(path)!r}: unknown section {unknown[0]!r}; valid keys: "
                          f"{', '.join(map(repr, known))}")
    return layout
