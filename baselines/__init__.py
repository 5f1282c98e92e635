"""semsim.baselines: the comparison methods, registered as codecs."""

from . import separation  # noqa: F401
from . import deeplab, fcn  # noqa: F401
from . import deepjscc, adjscc, witt  # noqa: F401
