"""Outputs written whole or not at all.

Every output is written under a temporary name beside its final path and renamed into place once
complete (a rename within one folder is atomic), so a kill, a crash or a full disk mid-write never
leaves a file that looks complete. On failure the temporary file or folder is removed, and a write
that failed for lack of space or permission is reported as one :class:`~complementarity.errors.DiskError`
naming the path and the free space.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import disk_error


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | Path, *, directory: bool = False, need: int | None = None) -> Iterator[Path]:
    """Yield a temporary path (``<name>.tmp``, or ``<name>.partial/`` for a folder) that becomes ``path`` on success.

    ``need``: bytes the write needs, if known, named in a disk-full message.
    """
    path = Path(path)
    tmp = path.with_name(path.name + (".partial" if directory else ".tmp"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
        if directory:
            tmp.mkdir()
        yield tmp
        if directory and path.exists():
            shutil.rmtree(path)
        tmp.replace(path)
    except Exception as exc:
        _remove(tmp)
        translated = disk_error(exc, path, need)
        if translated is not None:
            raise translated from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` whole or not at all (see :func:`atomic_output`), creating the folder."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def check_writable(base_dir: str | Path, names: tuple[str, ...] = ("results", "logs", "benchmarks")) -> None:
    """Refuse to start when an output folder (or the folder it would be made in) cannot be written.

    Raises a DiskError naming the folder and the fix (a read-only file system, no permission, a full disk).
    """
    import tempfile

    base = Path(base_dir)
    for name in names:
        folder = base / name
        probe = folder if folder.is_dir() else base
        try:
            with tempfile.TemporaryFile(dir=probe):
                pass
        except OSError as exc:
            translated = disk_error(exc, f"{folder}/")
            if translated is None:
                raise
            raise translated from exc
