"""Run untrusted Python programs (model-written MBPP solutions) in a throw-away sandbox.

Every program runs in its own interpreter process, under limits that make looping forever, fork
bombs, unbounded allocation, sockets and writes outside the sandbox fail without harm. A small
launcher (this file run as a script: ``python -I -S sandbox.py --launch …``, which is why the module
imports only the standard library) starts it and cleans up after it. Layers in every mode:

* **a fresh working directory** (``HOME`` and ``TMPDIR`` point to it), deleted afterwards;
* **a stripped environment**: only ``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, one-thread settings for
  BLAS/OpenMP and ``PYTHONHASHSEED=0`` (set/dict-of-str ordering, and so pass/fail, is reproducible).
  The program's interpreter runs as ``python -s -c <bootstrap>`` with that environment, which is
  what ``python -I`` gives (no user site, no inherited ``PYTHON*`` variables, no script folder on
  ``sys.path``) except that ``-I`` would also ignore the pinned hash seed;
* **resource limits** (:class:`Limits`), set before the program's first line: wall clock (then the
  whole process tree is killed), ``RLIMIT_CPU``, ``RLIMIT_AS`` (memory), ``RLIMIT_NPROC`` (processes
  and threads), ``RLIMIT_FSIZE`` (which also caps captured stdout/stderr: they go to files, not
  pipes) and ``RLIMIT_NOFILE``;
* **its own session** (``start_new_session``); the process group is killed at the end;
* **no survivors**: whatever the program started is killed and reaped when it ends, even processes
  that called ``setsid()`` (a PID namespace, or in ``basic`` mode a child-subreaper launcher);
* **an unprivileged user** when the caller is root: uid/gid 65534 (``nobody``), no supplementary
  groups, ``no_new_privs``. Needed because the kernel does not enforce ``RLIMIT_NPROC`` for root.

``namespace`` isolation (:data:`ISOLATION`; ``auto`` picks it where it works: as root on Linux >= 5.12,
checked once per process by running a probe program) adds:

* a new **network namespace**: only a loopback interface, which is down; nothing on this machine or
  elsewhere can be reached;
* a new **mount namespace** in which every mount is read-only (``mount_setattr`` with
  ``AT_RECURSIVE``) and the working directory is a fresh, size-limited tmpfs
  (:attr:`Limits.disk_mb`): nothing outside it can be written, renamed or deleted, whatever the
  permissions say (world-writable ``/tmp``, ``/var/tmp``, ``/dev/shm`` included). Files stay
  readable where their permissions let uid 65534 read them. Folders the interpreter needs but uid
  65534 cannot reach (a pyenv Python under ``/root``, a ``base_dir`` under a private folder) are made
  reachable in this namespace only: the blocking folder is covered by an empty tmpfs and the needed
  folder bound back in, which also hides everything else in it;
* a new **PID namespace** with its own ``/proc``; the program is its PID 1.

``basic`` isolation (non-root callers, or where namespaces are not allowed) has only the layers of
every mode, plus a preamble that replaces ``socket.socket`` and friends (a determined program can get
around it). As root it needs an interpreter and a ``base_dir`` that uid 65534 can reach, and raises
:class:`SandboxError` otherwise rather than run the program as root; world-writable places stay
writable. As a non-root user the program runs as that user: ``RLIMIT_NPROC`` counts all of that user's
processes, so it is set to the user's current task count plus :attr:`Limits.max_processes`, and files
that user can write are not protected. Treat ``basic`` as protection against accidents, not against
an adversary.

**Completion marker.** A program passes only if it ran to its end: exit status 0 is not enough (a
program that calls ``sys.exit(0)``, ``exit()``, ``quit()``, ``raise SystemExit``, ``os._exit(0)``,
``os.kill(os.getpid(), …)`` or is killed by a signal before its last line exits early and, until
this check existed, scored as passed). The host draws a fresh random nonce per program and sends it,
ahead of the source, on the program's standard input; the bootstrap reads both, closes that input,
runs the program, and only when ``runpy`` returns normally (no exception, no ``SystemExit``) writes
``<MARKER_PREFIX><nonce>`` straight to file descriptor 1. The host looks for that exact line in the
captured standard output (:attr:`Result.completed`) and removes it from :attr:`Result.stdout`.
Threat model, honestly: the source file on the host is unlinked before the launcher starts and the
host and launcher close their copies of the input, so the nonce is nowhere on disk, not in the
environment, not on a command line. It still lives in the bootstrap's memory while the program runs
(a local of the frame that called ``runpy``): a program written to hunt for it (walking
``sys._getframe()`` back, ``gc.get_objects()``, reading ``/proc/self/mem``) and print it before exiting
could forge a pass. No in-process scheme can stop that, and lm-evaluation-harness's ``code_eval``
(``exec`` in the same process) has the same limit. It does stop every early exit, and printing a
fixed string; the program text is kept with every verdict (``code`` in the per-item results), so a
model that learned such tricks would be visible.

Concurrent sandboxes run as the same uid 65534, and ``RLIMIT_NPROC`` counts that uid's processes
machine-wide: a fork bomb running beside a normal program can make the normal program's own forks
fail until the bomb is killed (plain MBPP solutions never fork).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import logging
import math
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

ISOLATION = ("auto", "namespace", "basic")
"""Isolation levels :func:`run_python` accepts (see the module docstring)."""

SANDBOX_UID = 65534
"""The unprivileged uid/gid (``nobody``) programs run as when the caller is root."""

OUTPUT_TAIL_CHARS = 4000
"""How much of the end of stdout/stderr a :class:`Result` keeps."""

MARKER_PREFIX = "\n__complementarity_sandbox_completed__:"
"""Written (with the run's nonce and a newline) to fd 1 by the bootstrap after the program's last line."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture (new syscalls are unified since 5.1)
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
_GRACE_SECONDS = 5.0  # after a timeout, how long the launcher gets to kill and reap before SIGKILL


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not raised for programs that fail)."""


@dataclass(frozen=True)
class Limits:
    """Per-program resource limits."""

    timeout: float = 10.0
    """Wall-clock seconds before the whole process tree is killed (interpreter start-up included)."""
    cpu_seconds: int | None = None
    """RLIMIT_CPU per process; None: ``ceil(timeout) + 1``."""
    memory_mb: int = 1024
    """RLIMIT_AS (address space) per process, in MiB."""
    max_processes: int = 32
    """RLIMIT_NPROC: processes *and threads* the sandbox user may have (see the module docstring)."""
    file_size_mb: int = 16
    """RLIMIT_FSIZE: the largest file the program may write, and the cap on captured stdout/stderr."""
    open_files: int = 64
    """RLIMIT_NOFILE."""
    disk_mb: int = 64
    """Size of the working directory's tmpfs (``namespace`` mode only)."""

    def check(self) -> None:
        problems = [
            f"{name} must be positive, got {value!r}"
            for name, value in asdict(self).items()
            if value is not None and not value > 0
        ]
        if problems:
            raise ValueError("invalid sandbox limits: " + "; ".join(problems))


@dataclass(frozen=True)
class Result:
    """What happened to one program."""

    returncode: int | None
    """Exit status; negative: killed by that signal; None: never started."""
    timed_out: bool
    stdout: str
    """The last :data:`OUTPUT_TAIL_CHARS` characters of standard output."""
    stderr: str
    """The last :data:`OUTPUT_TAIL_CHARS` characters of standard error."""
    duration: float
    """Wall-clock seconds, set-up and clean-up included."""
    isolation: str
    """The isolation level that was used: ``namespace`` or ``basic``."""
    completed: bool = False
    """The program ran to its last line: the completion marker with this run's nonce was written."""

    @property
    def passed(self) -> bool:
        """Ran to its last line (:attr:`completed`) and exited with status 0 within the time limit."""
        return self.returncode == 0 and not self.timed_out and self.completed

    @property
    def status(self) -> str:
        """``passed``, ``timeout`` or ``failed``."""
        return "passed" if self.passed else "timeout" if self.timed_out else "failed"

    @property
    def error(self) -> str:
        """A one-line reason for a failure (the last line of stderr), or "" when passed."""
        if self.passed:
            return ""
        if self.timed_out:
            return f"timed out after {self.duration:.1f}s"
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        if lines:
            return lines[-1][:300]
        if self.returncode == 0:
            return "exited before its last line (exit status 0 but no completion marker)"
        return f"exit status {self.returncode}"


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


def run_python(
    code: str,
    *,
    limits: Limits | None = None,
    isolation: str = "auto",
    interpreter: str | None = None,
    base_dir: str | os.PathLike | None = None,
) -> Result:
    """Run ``code`` as a Python program in a sandbox and report how it ended.

    ``isolation``: one of :data:`ISOLATION`; ``auto`` picks ``namespace`` where it works, else ``basic``
    (:func:`resolve_isolation`). ``interpreter``: the Python that runs the program (default: this
    one, ``sys.executable``). ``base_dir``: where the per-program folder is created (default: the
    system temporary directory); the folder is deleted before this returns.
    """
    limits = limits or Limits()
    limits.check()
    interpreter = interpreter or sys.executable
    mode = resolve_isolation(isolation, interpreter)
    start = time.monotonic()
    work = _make_workdir(base_dir)
    try:
        return _run_in(work, code, limits, mode, interpreter, start)
    finally:
        _rmtree(work)


def run_many(
    codes: Sequence[str],
    *,
    limits: Limits | None = None,
    isolation: str = "auto",
    interpreter: str | None = None,
    workers: int = 2,
    base_dir: str | os.PathLike | None = None,
) -> list[Result]:
    """Run several programs, ``workers`` at a time (threads that each wait on one sandbox process).

    Results come back in the order of ``codes``; the other arguments are those of :func:`run_python`.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    mode = resolve_isolation(isolation, interpreter)  # probe once, before the threads start

    def one(code: str) -> Result:
        return run_python(code, limits=limits, isolation=mode, interpreter=interpreter, base_dir=base_dir)

    if workers == 1 or len(codes) <= 1:
        return [one(c) for c in codes]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, codes))


def resolve_isolation(isolation: str = "auto", interpreter: str | None = None) -> str:
    """The isolation level ``isolation`` means here: ``namespace`` or ``basic``.

    ``namespace`` raises :class:`SandboxError` when it cannot be set up; ``auto`` then falls back to
    ``basic`` and logs a warning saying why (once per process). ``basic`` as root raises
    :class:`SandboxError` when uid 65534 could not run ``interpreter`` (e.g. a pyenv Python under
    ``/root``): running the program as root instead would leave fork bombs unbounded.
    """
    if isolation not in ISOLATION:
        raise ValueError(f"unknown sandbox isolation {isolation!r}; use one of: {', '.join(ISOLATION)}")
    interpreter = interpreter or sys.executable
    if isolation != "basic":
        reason = _namespace_unavailable(interpreter)
        if reason is None:
            return "namespace"
        if isolation == "namespace":
            raise SandboxError(f"sandbox isolation 'namespace' is not available here: {reason}; use 'basic' or 'auto'")
        _warn_basic_once(reason)
    if os.geteuid() == 0:
        hidden = _unreachable(_interpreter_dirs(interpreter), SANDBOX_UID)
        if hidden:
            raise SandboxError(
                f"sandbox isolation 'basic' runs programs as uid {SANDBOX_UID}, which cannot reach the Python "
                f"interpreter's folder(s) {', '.join(hidden)}; run the evaluation as a non-root user, allow "
                "namespaces (isolation 'namespace'), or pass an interpreter installed in a world-readable place"
            )
    return "basic"


# --------------------------------------------------------------------------------------------------
# Host side
# --------------------------------------------------------------------------------------------------


def _make_workdir(base_dir: str | os.PathLike | None) -> str:
    work = tempfile.mkdtemp(prefix="complementarity-sandbox-", dir=base_dir)
    # Traversable but not listable: the program (another uid) needs to reach its own folder inside.
    os.chmod(work, 0o711)
    return work


def _clean_env(box: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": box,
        "TMPDIR": box,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _run_in(work: str, code: str, limits: Limits, mode: str, interpreter: str, start: float) -> Result:
    box = os.path.join(work, "box")
    os.mkdir(box, 0o700)
    program = os.path.join(work, "program.py")
    nonce = secrets.token_hex(16)
    with open(program, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(nonce + "\n" + code)
    root = os.geteuid() == 0
    uid = SANDBOX_UID if root else None
    if uid is not None and mode == "basic":
        if _unreachable([work], uid):
            raise SandboxError(
                f"sandbox isolation 'basic' runs programs as uid {uid}, which cannot reach {work}; "
                "give a base_dir that every user can pass through (e.g. the default, the system temp folder)"
            )
        os.chown(box, uid, uid)
    rlimits = {
        "RLIMIT_CPU": limits.cpu_seconds or math.ceil(limits.timeout) + 1,
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_FSIZE": limits.file_size_mb << 20,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_NPROC": limits.max_processes if root else _user_tasks() + limits.max_processes,
    }
    # The folder is in the program's command line, so every process it forks can be told apart.
    boot = {"dir": box, "rlimits": rlimits, "block_sockets": mode == "basic"}
    launch = {
        "namespaces": mode == "namespace",
        "box": box,
        "uid": uid,
        "disk_mb": limits.disk_mb,
        # Folders uid 65534 cannot reach (a venv under /root, a base_dir under a private folder) are
        # made reachable inside the mount namespace only.
        "expose": _unreachable([*_interpreter_dirs(interpreter), box], SANDBOX_UID) if mode == "namespace" else [],
        "argv": [interpreter, "-s", "-c", _BOOTSTRAP, json.dumps(boot)],
        "env": _clean_env(box),
    }
    argv = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--launch", json.dumps(launch)]
    out_path, err_path = os.path.join(work, "stdout"), os.path.join(work, "stderr")
    timed_out = False
    stdin = open(program, "rb")  # closed right after the launcher starts
    os.unlink(program)  # the nonce is on no path the program could open
    with stdin, open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=out,
                stderr=err,
                cwd=work,
                env=_clean_env(box),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise SandboxError(f"could not start the sandbox launcher {sys.executable}: {exc}") from exc
        stdin.close()  # only the launcher (until it forks) and the bootstrap hold the nonce now
        try:
            proc.wait(timeout=max(limits.timeout - (time.monotonic() - start), 0.01))
        except subprocess.TimeoutExpired:
            timed_out = True
            # The launcher kills the program and reaps what it left behind, then exits.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_GRACE_SECONDS)
        finally:
            _kill_group(proc.pid)  # whatever is left in the session, launcher included
            proc.wait()
    completed = _strip_marker(out_path, nonce)
    return Result(
        returncode=proc.returncode,
        timed_out=timed_out,
        stdout=_tail(out_path),
        stderr=_tail(err_path),
        duration=time.monotonic() - start,
        isolation=mode,
        completed=completed and not timed_out,
    )


def _strip_marker(path: str, nonce: str) -> bool:
    """Whether the completion marker with ``nonce`` is in the captured stdout; removes it from the file."""
    marker = (MARKER_PREFIX + nonce + "\n").encode()
    with open(path, "rb") as f:
        data = f.read()
    at = data.rfind(marker)
    if at < 0:
        return False
    with open(path, "wb") as f:
        f.write(data[:at] + data[at + len(marker) :])
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: str) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 4 * OUTPUT_TAIL_CHARS))
        text = f.read().decode("utf-8", errors="replace")
    return text[-OUTPUT_TAIL_CHARS:]


def _rmtree(path: str) -> None:
    """Delete the per-program folder even if the program left read-only folders behind."""

    def fix(func, p, exc):
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
        func(p)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=fix)


def _user_tasks() -> int:
    """Tasks (processes and threads) of this real uid: what RLIMIT_NPROC counts for a non-root user."""
    uid, total = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 0").split()[0]) == uid:
            total += int(fields.get("Threads", "1"))
    return total


def _interpreter_dirs(interpreter: str) -> list[str]:
    """The folders ``interpreter`` needs: its own (symlinks resolved) and, for this Python, the prefixes."""
    dirs = {os.path.dirname(os.path.realpath(interpreter))}
    if os.path.realpath(interpreter) == os.path.realpath(sys.executable):
        for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
            dirs.add(os.path.realpath(prefix))
    return sorted(dirs)


def _unreachable(dirs: list[str], uid: int) -> list[str]:
    """Those of ``dirs`` that ``uid`` (not root, not in their groups) cannot reach by the permission bits."""

    def reachable(path: str) -> bool:
        parts = os.path.realpath(path).split(os.sep)
        for i in range(1, len(parts) + 1):
            st = os.stat(os.sep.join(parts[:i]) or os.sep)
            bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXOTH
            if not st.st_mode & bit:
                return False
        return True

    return [d for d in dirs if not reachable(d)]


@functools.cache
def _namespace_unavailable(interpreter: str) -> str | None:
    """None when ``namespace`` isolation works here, else the reason it does not (probed once)."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "needs root (to create namespaces and switch to an unprivileged uid)"
    work = _make_workdir(None)
    try:
        result = _run_in(work, "print('ok')", Limits(timeout=30.0), "namespace", interpreter, time.monotonic())
    except (OSError, SandboxError) as exc:
        return f"the probe program could not start ({exc})"
    finally:
        _rmtree(work)
    if not result.passed or result.stdout.strip() != "ok":
        return f"the probe program failed ({result.error})"
    return None


@functools.cache
def _warn_basic_once(reason: str) -> None:
    log.warning(
        "sandbox: using 'basic' isolation because 'namespace' is not available (%s); "
        "programs cannot reach the network only through a socket preamble, and files the "
        "sandbox user can write are not protected",
        reason,
    )


# --------------------------------------------------------------------------------------------------
# Program side: the interpreter runs this first (as the sandbox user), then the program from stdin
# --------------------------------------------------------------------------------------------------

_BOOTSTRAP = r"""
import json, os, resource, runpy, sys
cfg = json.loads(sys.argv[1])
nonce = sys.stdin.readline().strip()
source = sys.stdin.read()
sys.stdin.close()
sys.stdin = open(os.devnull)
def _completed(marker=(MARKER_PREFIX + nonce + "\n").encode()):
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.write(1, marker)
with open("main.py", "w", encoding="utf-8") as f:
    f.write(source)
for name, value in cfg["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
if cfg["block_sockets"]:
    import _socket, socket
    def _no_network(*args, **kwargs):
        raise OSError("network access is disabled in the sandbox")
    for mod in (socket, _socket):
        for attr in ("socket", "socketpair", "fromfd", "create_connection", "create_server", "getaddrinfo"):
            if hasattr(mod, attr):
                setattr(mod, attr, _no_network)
del cfg, source, f, json, resource, name, value, nonce
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
_completed()
""".replace("MARKER_PREFIX", repr(MARKER_PREFIX))


# --------------------------------------------------------------------------------------------------
# Launcher side (namespace mode): runs as root in a fresh interpreter, never imported by the host
# --------------------------------------------------------------------------------------------------


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _launch(cfg: dict) -> int:
    """Fork the program, wait for it, then make sure nothing it started survives.

    ``namespace``: the program is PID 1 of a new PID namespace, so the kernel kills and reaps the rest
    when it ends. ``basic``: this process is a child subreaper, so everything the program leaves
    behind (even after ``setsid()``) is re-parented here, killed and reaped. SIGTERM (the host's
    timeout) kills the program.
    """
    libc = _libc()
    if cfg["namespaces"]:
        _check(libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID), "unshare")
    else:
        _check(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl child_subreaper")
    pid = 0

    def on_term(signum, frame):
        if pid > 0:
            os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_term)
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _child(libc, cfg)
        except BaseException as exc:
            os.write(2, f"sandbox launcher: {type(exc).__name__}: {exc}\n".encode())
        os._exit(125)
    # The program's standard input carries the completion nonce: only the program's bootstrap keeps it.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if not cfg["namespaces"]:
        _reap_descendants()
    return code if code >= 0 else 128 - code  # killed by signal N: exit 128 + N, as a shell reports it


def _reap_descendants() -> None:
    """Kill every child (orphans of the program are re-parented to this subreaper) until none is left."""
    me = str(os.getpid())
    while True:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = f.read().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
                if ppid == me:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(entry), signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return


def _child(libc, cfg: dict) -> None:
    """As root or the caller: set up the namespaces' file system (namespace mode), drop privileges, exec."""
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    box = cfg["box"]
    if cfg["namespaces"]:
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing done here reaches the host
        _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)  # this PID namespace only
        _expose(libc, cfg["expose"], cfg["uid"])
        attr = (ctypes.c_uint64 * 4)(_MOUNT_ATTR_RDONLY, 0, 0, 0)
        ret = libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))
        _check(0 if ret == 0 else -1, "mount_setattr / read-only")
        owner = "" if cfg["uid"] is None else f",uid={cfg['uid']},gid={cfg['uid']}"
        _mount(libc, "tmpfs", box, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={cfg['disk_mb']}m,mode=0700{owner}")
    os.chdir(box)
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
    _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl pdeathsig")  # setuid clears it
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def _expose(libc, dirs: list[str], uid: int) -> None:
    """Make ``dirs`` reachable for ``uid`` without changing the host's permissions.

    For each, the topmost folder on its path that ``uid`` cannot pass through (e.g. ``/root``, mode
    0700) is covered, in this mount namespace only, by an empty tmpfs (mode 0755) and the needed
    folder is bind-mounted back at its own path. Everything else in the covered folder stays hidden.
    """
    covers: dict[str, list[str]] = {}
    for d in dirs:
        parts = d.split(os.sep)
        for i in range(2, len(parts) + 1):
            anc = os.sep.join(parts[:i])
            st = os.stat(anc)
            if not st.st_mode & (stat.S_IXUSR if st.st_uid == uid else stat.S_IXOTH):
                covers.setdefault(anc, []).append(d)
                break
    for anc, needed in sorted(covers.items()):
        fds = [os.open(d, os.O_PATH | os.O_DIRECTORY) for d in needed]  # keep hold before covering them
        _mount(libc, "tmpfs", anc, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
        for d, fd in zip(needed, fds, strict=True):
            os.makedirs(d, mode=0o755, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", d, None, _MS_BIND | _MS_REC)
            os.close(fd)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--launch":
    sys.exit(_launch(json.loads(sys.argv[2])))
