"""The source tree's version (a leaf module: :mod:`semsim.provenance` reads it without importing
the package's public API)."""

__version__ = "0.1.0"
