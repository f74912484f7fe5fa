"""The sandbox under hostile programs: loops, fork bombs, memory bombs, sockets, writes outside.

Each test runs under every isolation level available here (``namespace`` needs root; ``basic`` as
root needs an interpreter that uid 65534 can run, so it uses the system Python when this venv's lives
under /root). Fork bombs are tried bounded first, and the unbounded one only runs after the bounded
one proved that RLIMIT_NPROC holds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO

from complementarity.evaluation.sandbox import (
    OUTPUT_TAIL_CHARS,
    SANDBOX_UID,
    Limits,
    SandboxError,
    resolve_isolation,
    run_many,
    run_python,
)

ROOT = os.geteuid() == 0
SANDBOX_FILE = REPO / "src" / "complementarity" / "evaluation" / "sandbox.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def _mode_params() -> list:
    return [pytest.param("namespace", id="namespace"), pytest.param("basic", id="basic")]


@pytest.fixture(params=_mode_params())
def sandbox(request):
    """``run(code, **limits) -> Result`` for one isolation level, with a base folder to inspect."""
    isolation = request.param
    interpreter = None
    try:
        resolve_isolation(isolation)
    except SandboxError as exc:
        if isolation == "basic" and os.access(SYSTEM_PYTHON, os.X_OK):
            interpreter = SYSTEM_PYTHON
            try:
                resolve_isolation(isolation, interpreter)
            except SandboxError as exc2:
                pytest.skip(str(exc2))
        else:
            pytest.skip(str(exc))
    # In the system temp folder, not tmp_path: uid 65534 must be able to reach it in basic mode.
    base = Path(tempfile.mkdtemp(prefix="complementarity-test-"))
    base.chmod(0o711)

    def run(code: str, **limits):
        return run_python(
            textwrap.dedent(code),
            limits=Limits(**limits),
            isolation=isolation,
            interpreter=interpreter,
            base_dir=base,
        )

    run.isolation = isolation
    run.base = base
    try:
        yield run
        assert not list(base.iterdir()), "a sandbox folder was left behind"
        assert _survivors(base) == [], "a sandboxed process survived its sandbox"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _survivors(base: Path, wait: float = 3.0) -> list[str]:
    """Live processes whose command line names a folder under ``base`` (zombies excluded)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(base) in cmdline and state != "Z":
                found.append(entry)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_program_passes_or_fails_by_its_exit_status(sandbox):
    ok = sandbox("print('hello'); import sys; print('warn', file=sys.stderr)")
    assert ok.passed and ok.status == "passed" and ok.isolation == sandbox.isolation
    assert ok.stdout == "hello\n" and ok.stderr == "warn\n" and ok.error == ""
    bad = sandbox("def f():\n    return 1\nassert f() == 2, 'wrong answer'")
    assert not bad.passed and bad.status == "failed" and bad.returncode == 1
    assert bad.error == "AssertionError: wrong answer"
    exits = sandbox("import sys; sys.exit(3)")
    assert exits.returncode == 3 and not exits.passed


EARLY_EXITS = {
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "sys.exit()": "import sys\nsys.exit()",
    "exit()": "exit()",
    "quit()": "quit()",
    "raise SystemExit": "raise SystemExit",
    "raise SystemExit(0)": "raise SystemExit(0)",
    "os._exit(0)": "import os\nos._exit(0)",
    "os.kill SIGKILL": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "os.kill SIGTERM": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)",
    "signal.raise_signal": "import signal\nsignal.raise_signal(signal.SIGINT)",
    "SIGALRM": "import signal, time\nsignal.alarm(1)\ntime.sleep(5)",
    "os.abort()": "import os\nos.abort()",
    "closing stdout then _exit": "import os\nos.close(1)\nos._exit(0)",
    "an atexit _exit": "import atexit, os\natexit.register(os._exit, 0)\nraise SystemExit",
    "a thread that exits": "import os, threading\nthreading.Thread(target=os._exit, args=(0,)).start()\nimport time\ntime.sleep(5)",
    "fake marker": "print('__complementarity_sandbox_completed__:' + '0' * 32)\nimport os\nos._exit(0)",
    "timeout": "while True:\n    pass",
}


@pytest.mark.parametrize("early_exit", sorted(EARLY_EXITS))
def test_a_wrong_solution_that_exits_before_its_asserts_fails(sandbox, early_exit):
    """The gaming attempt from issue 12: a wrong solution, an early exit, then the asserts."""
    code = f"def add(a, b):\n    return a * b\n{EARLY_EXITS[early_exit]}\nassert add(2, 3) == 5\n"
    res = sandbox(code, timeout=2.0)
    assert not res.passed and not res.completed and res.status in ("failed", "timeout")
    assert res.error


def test_a_program_passes_only_when_its_last_line_ran(sandbox):
    ok = sandbox("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('done', end='')")
    assert ok.passed and ok.completed and ok.stdout == "done"  # the marker is removed from stdout
    # Exiting with 0 after every assert ran is still an exit before the end: the harness's code_eval
    # (exec in a process) fails SystemExit too.
    late = sandbox("assert 1 + 1 == 2\nimport sys\nsys.exit(0)")
    assert not late.passed and late.returncode == 0 and not late.completed
    assert late.error == "exited before its last line (exit status 0 but no completion marker)"


def test_the_nonce_is_not_on_disk_or_in_the_environment(sandbox):
    """The program cannot read the nonce from its source file, environment, argv or standard input."""
    res = sandbox(
        """
        import os, sys
        seen = " ".join([repr(os.environ), repr(sys.argv), sys.stdin.read()])
        for path in ("../program.py", "main.py"):
            try:
                seen += open(path).read()
            except OSError:
                pass
        with open("/proc/self/cmdline", "rb") as f:
            seen += f.read().decode(errors="replace")
        for fd in range(3, 64):
            try:
                seen += os.read(fd, 1 << 16).decode(errors="replace")
            except OSError:
                pass
        print(len([w for w in seen.replace("'", " ").replace('"', " ").split() if len(w) == 32
                   and all(c in "0123456789abcdef" for c in w)]))
        """
    )
    assert res.passed and res.stdout == "0\n"


def test_an_endless_loop_is_killed_at_the_wall_clock_limit(sandbox):
    result = sandbox("while True:\n    pass", timeout=1.5)
    assert result.timed_out and result.status == "timeout" and not result.passed
    assert 1.5 <= result.duration < 1.5 + 6


def test_cpu_time_is_limited_independently_of_the_wall_clock(sandbox):
    result = sandbox("while True:\n    pass", timeout=20, cpu_seconds=1)
    assert not result.timed_out and not result.passed  # SIGXCPU/SIGKILL from RLIMIT_CPU
    assert result.duration < 10


def test_fork_bombs_are_contained(sandbox):
    # Bounded first: 200 forks of children that wait, so they all count at once.
    bounded = sandbox(
        """
        import os, time
        kids = fails = 0
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                fails += 1
                continue
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            kids += 1
        print(kids, fails)
        """,
        timeout=10,
        max_processes=16,
    )
    assert bounded.passed, bounded.stderr
    kids, fails = map(int, bounded.stdout.split())
    assert kids < 16 and fails == 200 - kids  # RLIMIT_NPROC holds: safe to try the real thing
    start = time.monotonic()
    bomb = sandbox(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        timeout=2,
        max_processes=16,
    )
    assert bomb.timed_out and time.monotonic() - start < 2 + 8
    assert _survivors(sandbox.base) == []


def test_processes_that_leave_the_session_are_killed_too(sandbox):
    result = sandbox(
        """
        import os, time
        if os.fork() == 0:
            os.setsid()  # out of the process group the host kills
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        time.sleep(0.3)
        print("parent done")
        """,
        timeout=10,
    )
    assert result.passed and result.duration < 5
    assert _survivors(sandbox.base) == []


def test_unbounded_allocation_fails_with_memory_error(sandbox):
    one_big = sandbox("x = bytearray(8 << 30)", memory_mb=256)
    assert not one_big.passed and "MemoryError" in one_big.error
    growing = sandbox("x = []\nwhile True:\n    x.append(bytearray(1 << 20))", memory_mb=256, timeout=20)
    assert not growing.passed and not growing.timed_out and "MemoryError" in growing.error


def test_sockets_cannot_reach_a_server_on_this_machine(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        # Sanity: the server is reachable from outside the sandbox.
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"from the host")
        result = sandbox(
            f"""
            import socket
            with socket.create_connection(("127.0.0.1", {port}), timeout=2) as s:
                s.sendall(b"from the sandbox")
            """
        )
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert not result.passed
    assert "unreachable" in result.error or "network access is disabled" in result.error, result.error
    assert accepted == [b"from the host"]


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mode, p.read_bytes()) for p in sorted(folder.iterdir())}


ATTACKS = """
import os, shutil
results = []
def attempt(name, fn):
    try:
        fn()
        results.append(name + ": done")
    except Exception as exc:
        results.append(name + ": blocked " + type(exc).__name__)
for folder in FOLDERS:
    canary = os.path.join(folder, "canary.txt")
    attempt("overwrite", lambda: open(canary, "w").write("pwned"))
    attempt("append", lambda: open(canary, "a").write("pwned"))
    attempt("chmod", lambda: os.chmod(canary, 0o600))
    attempt("rename", lambda: os.rename(canary, canary + ".moved"))
    attempt("delete", lambda: os.remove(canary))
    attempt("create", lambda: open(os.path.join(folder, "new.txt"), "w").write("x"))
    attempt("symlink", lambda: os.symlink("/etc/passwd", os.path.join(folder, "link")))
    attempt("rmtree", lambda: shutil.rmtree(folder))
for path in EXTRA:
    attempt("create " + path, lambda: open(path, "w").write("x"))
attempt("escape cwd", lambda: open("../escaped.txt", "w").write("x"))
attempt("system rm", lambda: os.system("rm -rf " + " ".join(FOLDERS)) and None)
print("\\n".join(results))
"""


def test_files_outside_the_sandbox_cannot_be_changed(sandbox, tmp_path):
    private = tmp_path / "private"  # under pytest's root-only folder
    private.mkdir()
    (private / "canary.txt").write_text("keep me")
    folders, extra, public = [private], [], None
    if sandbox.isolation == "namespace":
        # World-writable: only the read-only mount namespace protects these.
        public = Path(tempfile.mkdtemp(prefix="complementarity-canary-"))
        public.chmod(0o777)
        (public / "canary.txt").write_text("keep me")
        (public / "canary.txt").chmod(0o666)
        folders.append(public)
        extra = [str(Path(tempfile.gettempdir()) / f"complementarity-canary-{os.getpid()}.txt"), "/var/tmp/x.txt"]
    try:
        before = {str(f): _snapshot(f) for f in folders}
        code = ATTACKS.replace("FOLDERS", json.dumps([str(f) for f in folders])).replace("EXTRA", json.dumps(extra))
        result = sandbox(code)
        assert result.passed, result.stderr
        assert "done" not in result.stdout.replace("system rm: done", ""), result.stdout
        assert {str(f): _snapshot(f) for f in folders} == before
        assert not any(os.path.exists(p) for p in extra)
    finally:
        if public is not None:
            shutil.rmtree(public)


def test_the_environment_is_stripped(sandbox, monkeypatch):
    monkeypatch.setenv("COMPLEMENTARITY_TEST_SECRET", "s3cret")
    result = sandbox(
        """
        import json, os, tempfile
        print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "tmp": tempfile.gettempdir(), "uid": os.getuid()}))
        """
    )
    assert result.passed, result.stderr
    seen = json.loads(result.stdout)
    assert "COMPLEMENTARITY_TEST_SECRET" not in seen["env"]
    assert set(seen["env"]) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
    assert seen["env"]["HOME"] == seen["cwd"] == seen["tmp"]
    assert seen["cwd"].startswith(str(sandbox.base))
    assert seen["uid"] == (SANDBOX_UID if ROOT else os.getuid())


def test_output_is_capped_and_the_folder_removed_even_when_read_only(sandbox):
    flood = sandbox("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", file_size_mb=1)
    assert not flood.passed and not flood.timed_out and len(flood.stdout) == OUTPUT_TAIL_CHARS
    assert "File too large" in flood.error
    locked = sandbox(
        "import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\nos.chmod('a/b', 0)\nos.chmod('a', 0)"
    )
    assert locked.passed, locked.stderr  # the fixture checks that the folder is gone


def test_run_many_keeps_the_order(sandbox):
    results = run_many(
        [f"print({i})" if i != 2 else "raise SystemExit(1)" for i in range(5)],
        isolation=sandbox.isolation,
        interpreter=SYSTEM_PYTHON if sandbox.isolation == "basic" and ROOT else None,
        workers=2,
        base_dir=sandbox.base,
    )
    assert [r.stdout.strip() for r in results] == ["0", "1", "", "3", "4"]
    assert [r.passed for r in results] == [True, True, False, True, True]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown sandbox isolation 'docker'"):
        resolve_isolation("docker")
    with pytest.raises(ValueError, match="timeout must be positive"):
        run_python("pass", limits=Limits(timeout=0))


@pytest.mark.skipif(not ROOT or not os.access(SYSTEM_PYTHON, os.X_OK), reason="needs root and the system Python")
def test_non_root_users_get_basic_isolation_with_a_working_process_limit(tmp_path):
    """Run the sandbox as an ordinary user (uid 65534): RLIMIT_NPROC counts that user's processes."""
    base = Path(tempfile.mkdtemp(prefix="complementarity-nonroot-"))
    base.chmod(0o777)
    # A readable copy of the module: the checkout may sit under a directory uid 65534 cannot enter
    # (for example a clone in `mktemp -d`, mode 0700).
    code_dir = Path(tempfile.mkdtemp(prefix="complementarity-nonroot-code-"))
    code_dir.chmod(0o755)
    module = code_dir / "sandbox_module.py"
    shutil.copy(SANDBOX_FILE, module)
    module.chmod(0o644)
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        # The module by its path: it needs only the standard library (the package needs the venv).
        spec = importlib.util.spec_from_file_location("sandbox", {str(module)!r})
        sandbox = importlib.util.module_from_spec(spec)
        sys.modules["sandbox"] = sandbox
        spec.loader.exec_module(sandbox)
        Limits, SandboxError = sandbox.Limits, sandbox.SandboxError
        resolve_isolation, run_python = sandbox.resolve_isolation, sandbox.run_python
        out = {{"auto": resolve_isolation("auto")}}
        try:
            resolve_isolation("namespace")
        except SandboxError as exc:
            out["namespace_error"] = str(exc)
        fork = "import os, time\\nn = 0\\nfor _ in range(100):\\n    try:\\n        pid = os.fork()\\n    except OSError:\\n        continue\\n    if pid == 0:\\n        time.sleep(2)\\n        os._exit(0)\\n    n += 1\\nprint(n)"
        r = run_python(fork, limits=Limits(timeout=10, max_processes=8), base_dir={str(base)!r})
        out["kids"] = int(r.stdout)
        bomb = "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass"
        r = run_python(bomb, limits=Limits(timeout=2, max_processes=8), base_dir={str(base)!r})
        out["bomb"] = r.status
        print(json.dumps(out))
        """
    )
    try:
        proc = subprocess.run(
            [SYSTEM_PYTHON, "-c", script],
            user=SANDBOX_UID,
            group=SANDBOX_UID,
            extra_groups=[],
            cwd=base,
            env={"PATH": "/usr/bin:/bin", "HOME": str(base)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["auto"] == "basic" and "needs root" in out["namespace_error"]
        assert 0 < out["kids"] < 8
        assert out["bomb"] == "timeout"
        assert _survivors(base) == []
        assert not list(base.iterdir())
    finally:
        shutil.rmtree(base)
        shutil.rmtree(code_dir)


def test_this_machine_gets_namespace_isolation_when_root():
    """Documents what ``auto`` picks here; namespace needs root, Linux >= 5.12 and unshare permission."""
    if not ROOT or not sys.platform.startswith("linux"):
        assert resolve_isolation("auto") == "basic"
        return
    can_unshare = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0
    if not can_unshare:
        pytest.skip("namespaces are not allowed here")
    assert resolve_isolation("auto") == "namespace"
