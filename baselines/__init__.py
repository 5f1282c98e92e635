"""semsim.baselines: the comparison methods, registered as codecs."""

from . import separation  # noqa: F401
