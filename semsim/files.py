"""Atomic file writes (readers see the old file or the new one, never a torn one) and checks that an
output path can be written, made before any work starts."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is flushed to disk and
    renamed onto ``path``, on any error (or interrupt) it is removed. Parent folders are created.

    Example::

        with atomic_file("results/table.csv") as tmp:
            tmp.write_text(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output_folder(path: str | os.PathLike) -> Path:
    """``path`` if a folder can be written there (it exists as a folder, or can be created);
    otherwise :class:`~semsim.errors.ConfigError` saying why. Nothing is left behind."""
    path = Path(path)
    try:
        is_file = path.exists() and not path.is_dir()
    except (OSError, ValueError) as e:
        raise ConfigError(f"output folder '{path}' is not a usable path: {getattr(e, 'strerror', None) or e}") from None
    if is_file:
        raise ConfigError(f"output folder '{path}' is a file")
    _probe(path, "output folder")
    return path


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` if a file can be written there (not a folder; its folder exists or can be
    created); otherwise :class:`~semsim.errors.ConfigError` saying why. Nothing is left behind."""
    path = Path(path)
    try:
        is_dir = path.is_dir()
    except (OSError, ValueError) as e:
        raise ConfigError(f"output '{path}' is not a usable path: {getattr(e, 'strerror', None) or e}") from None
    if is_dir:
        raise ConfigError(f"output '{path}' is a folder; give a file name inside it")
    _probe(path.parent, "the folder of output")
    return path


def _probe(folder: Path, what: str) -> None:
    """Create the missing folders down to ``folder`` and a file in it, then remove all of them."""
    try:
        missing, existing = [], folder.absolute()
        while not existing.exists():
            missing.append(existing)
            existing = existing.parent
        is_dir = existing.is_dir()
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what} '{folder}' is not a usable path: {getattr(e, 'strerror', None) or e}") from None
    if not is_dir:
        raise ConfigError(f"{what} '{folder}' cannot be created: '{existing}' is a file")
    created: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        fd, name = tempfile.mkstemp(dir=folder.absolute(), prefix=".semsim-probe-")
        os.close(fd)
        os.unlink(name)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what} '{folder}' is not writable: {getattr(e, 'strerror', None) or e}") from None
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
