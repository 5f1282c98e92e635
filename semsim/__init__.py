"""semsim: a link-level wireless simulator with learned semantic codecs (PyTorch + Sionna 2.x).

Public API (see :mod:`semsim.api`): :func:`load_scenario`, :func:`run`, :func:`plot`,
:func:`train`, :func:`transmit`, :func:`resolve_task`, :func:`build_channel`, :func:`build_codec`,
:func:`build_dataset`, :func:`grid`, :func:`report`, :class:`Budget`.
Conventions: SNR is Es/N0 per complex channel symbol in dB; each image's channel symbols have unit
average power; CBR = N / (3 H W) with H W the original image size; the budget is a cap.
Importing the package registers the built-in channels, codecs and datasets (:mod:`semsim.builtins`);
a user's own come from plugin modules (:mod:`semsim.registry`: the ``semsim.plugins`` entry points,
``--plugin MODULE``).
"""
from . import builtins  # noqa: F401  (registers the built-in channels, codecs and datasets)
from .api import (Budget, Scenario, TransmitResult, build, build_channel, build_codec, build_dataset,
                  estimate_seconds, grid, load_scenario, names, plot, report, resolve_task, run, train, transmit)
from .version import __version__

__all__ = ["Budget", "Scenario", "TransmitResult", "build", "build_channel", "build_codec", "build_dataset",
           "estimate_seconds", "grid", "load_scenario", "names", "plot", "report", "resolve_task", "run", "train",
           "transmit", "__version__"]
