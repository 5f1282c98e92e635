"""Files of a run: atomic writes, checks that an output path can be written (made before any work
starts), content hashes cached by file status, and the output-folder lock.

- :func:`atomic_file`, :func:`write_atomic`: readers see the old file or the new one, never a torn one.
- :func:`check_output_folder` / :func:`check_output_file`: refuse an unwritable output first.
- :func:`file_sha256`: sha256 of files' bytes, cached by path, size and times, so an unchanged
  file is read once per machine.
- :func:`folder_lock`: a kernel lock (``flock``) on an output folder that says who may write into it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError, OutputError

#: the cache of file hashes, in ``$SEMSIM_CACHE_DIR`` (default ``~/.cache/semsim``)
HASH_CACHE = "file_sha256.json"
LOCK_FILE, GUARD_FILE = ".lock", ".lock.guard"


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:  # reading it leaves the process's umask alone
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is flushed to disk and
    renamed onto ``path``, on any error (or interrupt) it is removed. Parent folders are created.

    The temporary file is private (mode 0600) while it is written; the file renamed into place has
    the mode of a newly created file (0666 less the umask), as ``open(path, "w")`` would give it.
    A temporary file left by SIGKILL is named ``.<name>.*.tmp``.

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
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_file`: readers see the old file or the new one."""
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def remove_orphans(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Remove the temporary files that :func:`atomic_file` left in ``folder`` when a process was
    killed (``.<name>.*.tmp``; only those of ``names`` if given). Only safe while no other process
    writes there. Returns the removed paths."""
    patterns = [f".{n}.*.tmp" for n in names] if names is not None else [".*.tmp"]
    found = sorted({p for pattern in patterns for p in Path(folder).glob(pattern)})
    for p in found:
        p.unlink(missing_ok=True)
    return found


# --- content hashes ------------------------------------------------------------------------------

def cache_dir() -> Path:
    """``$SEMSIM_CACHE_DIR``, default ``~/.cache/semsim``."""
    return Path(os.environ.get("SEMSIM_CACHE_DIR") or "~/.cache/semsim").expanduser()


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Hex sha256 of each file's bytes.

    A hash is cached (``cache_dir()/file_sha256.json``) under the file's absolute path with its size,
    modification time and status-change time: a file written again, even with its old size and a
    restored modification time (``cp -p``), is read again. The hash itself names content only, so
    the same file in another checkout or on another node gives the same hash. A cache that cannot
    be read or written is ignored.
    """
    file = cache_dir() / HASH_CACHE
    try:
        cache = json.loads(file.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    out, changed = [], False
    for p in paths:
        path = Path(os.path.abspath(p))
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        entry = cache.get(str(path))
        if isinstance(entry, list) and len(entry) == 4 and entry[:3] == stamp:
            out.append(entry[3])
            continue
        digest = sha256(path)
        cache[str(path)] = [*stamp, digest]
        out.append(digest)
        changed = True
    if changed:
        try:
            with atomic_file(file) as tmp:
                tmp.write_text(json.dumps(cache))
        except OSError:
            pass
    return out


# --- the output-folder lock ----------------------------------------------------------------------

class FolderLock:
    """A held lock on an output folder (see :func:`folder_lock`). ``alone`` says whether no other
    run held it when it was taken (so temporary files found there are orphans)."""

    def __init__(self, folder: Path, fd: int, alone: bool, exclusive: bool):
        self.folder, self.fd, self.alone, self.exclusive = folder, fd, alone, exclusive

    def share(self) -> None:
        """Turn an exclusive lock into a shared one (runs of the same identity may then join)."""
        if self.exclusive:
            with _guard(self.folder):
                fcntl.flock(self.fd, fcntl.LOCK_SH)
            self.exclusive = False


@contextmanager
def _guard(folder: Path) -> Iterator[None]:
    # Every lock change happens under this short-held lock, so reading the holder's identity and
    # taking the lock is one step for other runs.
    fd = os.open(folder / GUARD_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 1 << 16, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    return (f"scenario {holder.get('scenario', '?')!r}, pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"since {holder.get('started', '?')}")


@contextmanager
def folder_lock(folder: str | os.PathLike, identity: str, about: dict[str, Any] | None = None,
                exclusive: bool = False, when_alone: Callable[[], Any] | None = None) -> Iterator[FolderLock]:
    """Hold the lock of an output folder for a run whose inputs hash to ``identity``.

    Runs of one identity share the lock (shards of one sweep write the same point files);
    ``exclusive`` (a ``--fresh`` run, which deletes finished points) needs the folder to itself
    until it calls :meth:`FolderLock.share`. The lock is the kernel's (``flock`` on
    ``<folder>/.lock``), so a killed run leaves no stale lock behind.

    :param about: what names this run to another one that is refused (scenario name, ...).
    :param when_alone: called when no other run holds the folder, before any other run may join
        (it still holds the lock exclusively): cleaning up what a killed run left is safe there.
    :raises OutputError: another run of a different identity holds the folder, or any run does
        and this one is exclusive, or an exclusive run does.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        with _guard(folder):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            if alone:
                info = {"identity": identity, "pid": os.getpid(), "host": platform.node(),
                        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "exclusive": exclusive, **(about or {})}
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(info).encode(), 0)
                if when_alone is not None:
                    when_alone()
                if not exclusive:
                    fcntl.flock(fd, fcntl.LOCK_SH)
            else:
                holder = _holder(fd)
                who = _describe(holder)
                if exclusive:
                    raise OutputError(f"output folder '{folder}' is in use by another semsim run "
                                      f"({who}); --fresh would delete its points: wait for it to end "
                                      f"or use another --output", who)
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise OutputError(f"output folder '{folder}' is being reset by a --fresh semsim run "
                                      f"({who}); wait for it to end or use another --output", who) from None
                if holder.get("identity") != identity:
                    raise OutputError(f"output folder '{folder}' is in use by another semsim run with other inputs "
                                      f"({who}); wait for it to end or use another --output", who)
        yield FolderLock(folder, fd, alone, exclusive)
    finally:
        os.close(fd)  # releases the lock

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
    """Create the missing folders down to ``folder`` and a file in it, then remove all of them.
    Another process probing the same new folder at once (shards of one sweep) may remove it under
    this one's feet: the probe is then tried again."""
    for attempt in range(3):
        try:
            return _probe_once(folder, what)
        except FileNotFoundError:
            if attempt == 2:
                raise ConfigError(f"{what} '{folder}' is not writable: it vanished while being tried") from None


def _probe_once(folder: Path, what: str) -> None:
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
            try:
                d.mkdir()
            except FileExistsError:  # another process (a shard) made it meanwhile: not ours to remove
                if not d.is_dir():
                    raise
                continue
            created.append(d)
        fd, name = tempfile.mkstemp(dir=folder.absolute(), prefix=".semsim-probe-")
        os.close(fd)
        os.unlink(name)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what} '{folder}' is not writable: {getattr(e, 'strerror', None) or e}") from None
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
