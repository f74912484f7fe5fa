"""Errors that tell the user what to do, and the CLI's top-level handler.

Every error raised for bad input names the offending value (file, line, key) and the fix. The CLI
prints them as ``ERROR: …`` and exits with status 2, without a traceback. A write that fails for lack of
space or permission becomes such an error too (:func:`disk_error`), naming the path and the free space.
Anything else is a bug or an unforeseen fault: one ``ERROR:`` line, exit status 1, and the traceback
goes to a file named in that line (or to the terminal with ``--debug`` or ``COMPLEMENTARITY_DEBUG=1``).
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """Bad input or configuration; the message names the value and the fix."""


class ConfigError(UserError):
    """The workflow configuration is invalid."""


class DataError(UserError):
    """A data file or dataset is malformed."""


class DiskError(UserError):
    """A write failed: no space left, a read-only file system or no permission."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_error(exc: BaseException, path: str | Path | None, need: int | None = None) -> DiskError | None:
    """A DiskError naming ``path`` for a write that failed for lack of space or permission; None otherwise.

    Some writers (``torch.save``, safetensors) raise RuntimeError without an errno on a full disk, so the
    free space is checked too: less than ``need`` bytes (or next to nothing) left means the disk is full.
    """
    code = getattr(exc, "errno", None)
    text = str(exc)
    shown = str(path or getattr(exc, "filename", None) or "an output")
    target = Path(path) if path else Path(getattr(exc, "filename", None) or ".")
    try:
        free = shutil.disk_usage(_existing_parent(target)).free
    except OSError:
        free = None
    full = code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "os error 28" in text
    writer_error = isinstance(exc, (OSError, RuntimeError)) or type(exc).__name__ == "SafetensorError"
    if not full and code is None and writer_error and free is not None:
        full = free < (need if need else 64 * 1024)
    if full:
        needed = f", and it needs about {human_bytes(need)}" if need else ""
        have = f"{human_bytes(free)} free there" if free is not None else "free space unknown"
        return DiskError(
            f"no space left on the device writing {shown} ({have}{needed}); free some space on that disk, "
            "or run the workflow from a folder on a larger disk. The incomplete file was removed; rerun the same "
            "command afterwards (finished outputs and checkpoints are kept)"
        )
    if code == errno.EROFS:
        return DiskError(
            f"cannot write {shown}: read-only file system; run the workflow in a writable folder (a copy of the "
            "repository, or a results/ symlink to writable storage)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return DiskError(f"cannot write {shown}: permission denied; make it writable (chmod -R u+w) or run elsewhere")
    return None


def path_error(exc: OSError) -> UserError | None:
    """A UserError for a file named on the command line that is missing, a directory, or a link loop."""
    name = exc.filename
    if name is None:
        return None
    if exc.errno == errno.ENOENT:
        return UserError(f"{name} does not exist; check the path, or run the step that makes it first")
    if exc.errno == errno.EISDIR:
        return UserError(f"{name} is a directory, not a file; give the path of a file")
    if exc.errno == errno.ENOTDIR:
        return UserError(f"{name}: a part of this path is a file, not a folder; check the path")
    if exc.errno == errno.ELOOP:
        return UserError(f"{name} is a symbolic link loop; point the link at a real file")
    return None


def _unexpected(exc: BaseException) -> str:
    """Write the traceback to a file; return the one line the user sees."""
    fd, name = tempfile.mkstemp(prefix="complementarity-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"argv: {sys.argv}\n")
        traceback.print_exception(exc, file=f)
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return (
        f"ERROR: unexpected {type(exc).__name__}: {first} -- this is a bug or an unforeseen fault. The traceback "
        f"is in {name}; rerun with --debug (or COMPLEMENTARITY_DEBUG=1) to print it, and report it"
    )


def run_reporting_errors(run: Callable[[], object], *, debug: bool = False) -> int:
    """Run a command; turn every failure into one ``ERROR:`` line and an exit status, not a traceback.

    2: bad input, configuration or a full / read-only disk (the message names the fix); 1: anything
    else (traceback in a file, or shown with ``debug``); 130: interrupted. SystemExit (a SIGTERM
    checkpoint exits 143) passes through.
    """
    debug = debug or os.environ.get("COMPLEMENTARITY_DEBUG", "") not in ("", "0")
    try:
        run()
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ERROR: interrupted (Ctrl-C); rerun the same command to go on", file=sys.stderr)
        return 130
    except Exception as exc:
        translated = None
        if isinstance(exc, OSError):
            translated = disk_error(exc, exc.filename) or path_error(exc)
        if translated is not None:
            if debug:
                traceback.print_exc()
            print(f"ERROR: {translated}", file=sys.stderr)
            return 2
        if debug:
            raise
        print(_unexpected(exc), file=sys.stderr)
        return 1
    return 0
