"""The exceptions semsim raises for bad input.

Every user-facing error is a :class:`SemsimError`. Its message names the problem and, where there
is a finite set of valid choices, lists them. The CLI prints the message (no traceback) and exits
with status 2.
"""
from __future__ import annotations

from collections.abc import Iterable


class SemsimError(ValueError):
    """Base class of semsim's user-facing errors."""


class ConfigError(SemsimError):
    """A scenario, preset or keyword argument is malformed or names an unknown thing."""


class DataError(SemsimError):
    """A data folder is missing, or an image or label file cannot be read."""


class BudgetError(SemsimError):
    """A method would use more channel uses than the scenario's budget allows."""


class OutputError(SemsimError):
    """An output folder is in use by another run, or a run's results came out incomplete.

    :ivar holder: the run that holds the folder, in words (``""`` when not about a holder).
    """

    def __init__(self, message: str, holder: str = ""):
        super().__init__(message)
        self.holder = holder


def choices(valid: Iterable[object]) -> str:
    """Format valid choices for an error message: ``"a", "b", "c"``."""
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in valid)
