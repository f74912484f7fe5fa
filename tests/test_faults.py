"""Faults fed to the real CLI and workflow: each ends with a non-zero exit (or a success a user would
expect), one ``ERROR:`` line naming the place and the fix, no traceback, and no partial output that
looks complete.

The full disk is real: a small tmpfs mounted for the test (root only; elsewhere those tests skip and
say why). Running out of GPU memory cannot happen on a CPU, so that one fault is injected
(``COMPLEMENTARITY_FAULT_GPU_FITS``: micro-batches larger than that raise ``torch.OutOfMemoryError``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from conftest import BASE_CFG, BIN, FINETUNE, REPO, env_with_bin, finetune_flags, run_cli, run_snakemake
from safetensors.torch import load_file

from complementarity.config import load_schema

TRACEBACK = "Traceback (most recent call last)"
TOPK = (
    "selection",
    "topk",
    "--k",
    "1",
    "--metric",
    "relative",
    "--threshold",
    "0",
    "--weights",
    "{}",
    "--confidence",
    "0.95",
)


def finetune_args(base: Path, train: Path, out: Path, ckpt: Path | None = None, **overrides) -> list[str]:
    args = ["finetune", "--base", str(base), "--base-model", json.dumps(BASE_CFG)]
    args += [*finetune_flags({**FINETUNE, **overrides}), "--train", str(train), "--name", out.name]
    return args + (["--checkpoint-dir", str(ckpt)] if ckpt else []) + ["--out", str(out)]


def fails(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run the CLI expecting exit status 2; return stderr, checked for one ERROR line and no traceback."""
    proc = subprocess.run(
        [str(BIN / "complementarity"), *args],
        env=env or env_with_bin(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 2, f"exit {proc.returncode}, expected 2:\n{proc.stderr[-3000:]}"
    assert TRACEBACK not in proc.stderr, proc.stderr[-3000:]
    assert len([line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]) == 1, proc.stderr[-3000:]
    return proc.stderr


def no_partial(*folders: Path) -> None:
    for folder in folders:
        if folder.exists():
            stray = [p for p in folder.rglob("*") if p.name.endswith((".partial", ".tmp"))]
            assert not stray, f"partial outputs left behind: {stray}"


@pytest.fixture(scope="module")
def train_file(demo_prepared) -> Path:
    return demo_prepared / "sort" / "train.jsonl"


# --- training faults ------------------------------------------------------------------------------


def test_truncation_that_drops_every_example_stops_before_any_step(tiny_base, train_file, tmp_path):
    """Was a hang: with nothing left to train on, the epoch loop never ended."""
    err = fails(*finetune_args(tiny_base, train_file, tmp_path / "s1", truncation="drop", max_seq_len=8), timeout=120)
    n = len(train_file.read_text().splitlines())
    assert f"s1: all {n} training examples" in err and "max_seq_len=8" in err and "truncation: cut_prompt" in err
    assert " step " not in err and not (tmp_path / "s1").exists()


def test_nan_loss_stops_the_job_and_writes_no_adapter(tiny_base, train_file, tmp_path):
    """On the tiny model a learning rate of 1e3 saturates (loss ln(vocab)) without NaN; 1e30 overflows."""
    ckpt = tmp_path / "ckpt"
    err = fails(*finetune_args(tiny_base, train_file, tmp_path / "lr", ckpt, learning_rate=1e30, checkpoint_every=1))
    assert re.search(r"the training loss became (nan|inf|-inf) (at|between) step", err) and "learning_rate=1e+30" in err
    assert "no adapter was written" in err and "Lower finetune.learning_rate" in err
    assert not (tmp_path / "lr").exists()
    for path in ckpt.glob("*.pt"):  # the checkpoints written before the loss went NaN hold finite weights
        payload = torch.load(path, weights_only=False)
        assert all(torch.isfinite(t).all() for t in payload["trainable"].values()), f"{path} holds NaNs"


def test_corrupted_checkpoint_is_set_aside_and_the_previous_one_resumed(tiny_base, train_file, tmp_path):
    ckpt = tmp_path / "ckpt"
    kw = {"max_steps": 20, "checkpoint_every": 5, "keep_checkpoints": True, "lora_dropout": 0.1}
    first = run_cli(*finetune_args(tiny_base, train_file, tmp_path / "a", ckpt, **kw))
    # No noise in a job log: bitsandbytes is not imported without quantization; no deprecation warnings.
    for noise in ("kernels", "bitsandbytes", "Warning", "WARNING"):
        assert noise not in first.stderr, f"{noise!r} in the log of a plain fine-tune:\n{first.stderr}"
    latest, previous = ckpt / "checkpoint.pt", ckpt / "checkpoint.prev.pt"
    assert latest.is_file() and previous.is_file()
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # what the user did: truncate to half

    proc = run_cli(*finetune_args(tiny_base, train_file, tmp_path / "b", ckpt, **kw))
    assert f"checkpoint {latest} cannot be read" in proc.stderr and "set aside as" in proc.stderr
    assert (ckpt / "checkpoint.pt.corrupt").is_file()
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 15, "did not resume from the previous good checkpoint"
    a, b = (
        load_file(tmp_path / "a" / "adapter_model.safetensors"),
        load_file(tmp_path / "b" / "adapter_model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a), "resuming from the previous checkpoint changed the adapter"

    for name in ("checkpoint.pt", "checkpoint.prev.pt"):  # both unreadable: start from scratch
        (ckpt / name).write_bytes(b"not a checkpoint")
    proc = run_cli(*finetune_args(tiny_base, train_file, tmp_path / "c", ckpt, **kw))
    assert proc.stderr.count("cannot be read") == 2 and TRACEBACK not in proc.stderr
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["resumed_from_step"] is None

    # An adapter damaged after it was written (a later fault, not a half-write): scoring names it.
    weights = tmp_path / "c" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    err = fails("scoring", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), "--validation",
                f"sort={train_file}", "--adapter", f"c={tmp_path / 'c'}", "--max-seq-len", "64", "--batch-size", "8",
                "--out", str(tmp_path / "scores.json"))  # fmt: skip
    assert f"adapter {tmp_path / 'c'} cannot be read" in err and "delete the folder and rerun" in err


def test_out_of_memory_retries_halve_the_micro_batch_and_nothing_else_does(tiny_base, train_file, tmp_path):
    """The record of an out-of-memory attempt is what halves the next one; it goes once an attempt fits."""
    ckpt, out = tmp_path / "ckpt", tmp_path / "oom"
    env = {**env_with_bin(), "COMPLEMENTARITY_FAULT_GPU_FITS": "2"}  # a "GPU" that fits 2 sequences
    args = finetune_args(tiny_base, train_file, out, ckpt, max_steps=4, batch_size=8)
    err = fails(*args, env=env)
    assert "out of GPU memory with micro-batches of 8" in err and "halves the micro-batch to 4" in err
    assert json.loads((ckpt / "out_of_memory.json").read_text()) == {"micro_batch": 8}
    err = fails(*args, env=env)
    assert "the previous attempt ran out of memory with micro-batches of 8, so this one uses 4" in err
    assert json.loads((ckpt / "out_of_memory.json").read_text()) == {"micro_batch": 4}
    proc = subprocess.run([str(BIN / "complementarity"), *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "micro-batches of 4, so this one uses 2" in proc.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["micro_batch_size"] == 2 and m["effective_batch_size"] == 8
    assert not ckpt.exists(), "the out-of-memory record outlived a successful attempt"
    # A retry for any other reason (no record): the configured micro-batch, no out-of-memory claim.
    proc = run_cli(*finetune_args(tiny_base, train_file, tmp_path / "plain", ckpt, max_steps=4, batch_size=8))
    assert "out of memory" not in proc.stderr
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["micro_batch_size"] == 8


# --- a full disk ------------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path) -> Iterator[Path]:
    """A real 1 MB tmpfs, filled until one 4 KB page is left."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the disk-full tests use a real full file system)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (mnt / "filler").write_bytes(b"\0" * (1024 * 1024 - 4 * 1024))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_disk_full_writing_the_adapter(tiny_base, train_file, full_disk, tmp_path):
    out = full_disk / "adapter"
    err = fails(*finetune_args(tiny_base, train_file, out, max_steps=2))
    assert f"no space left on the device writing {out}" in err and "free there" in err and "needs about" in err
    assert not out.exists()
    no_partial(full_disk)


def test_disk_full_writing_a_checkpoint(tiny_base, train_file, full_disk, tmp_path):
    ckpt = full_disk / "ckpt"
    err = fails(*finetune_args(tiny_base, train_file, tmp_path / "a", ckpt, max_steps=4, checkpoint_every=2))
    assert f"no space left on the device writing {ckpt / 'checkpoint.pt'}" in err
    assert not (tmp_path / "a").exists() and not (ckpt / "checkpoint.pt").exists()
    no_partial(full_disk)


def test_disk_full_for_every_light_output_type(demo_prepared, full_disk, tmp_path):
    """JSONL (shards split), TSV (shards check), JSON (selection random): none left half-written."""
    sort = demo_prepared / "sort" / "train.jsonl"
    (tmp_path / "links").mkdir()
    shards = [tmp_path / "links" / f"shard{i:03d}.jsonl" for i in range(300)]  # one row each in checked.tsv
    for link in shards:
        link.symlink_to(sort)
    cases = {  # each output is larger than the 4 KB left
        "shards split": ["shards", "split", "--train", str(sort), "--seed", "0", "--out", str(full_disk / "s1.jsonl")],
        "shards check": ["shards", "check", "--shards", *map(str, shards), "--out", str(full_disk / "checked.tsv")],
        "selection random": [
            "selection", "random", "--selected", *[f"shard{i:04d}" for i in range(500)], "--seed", "0",
            "--out", str(full_disk / "selection.json"),
        ],
    }  # fmt: skip
    for name, args in cases.items():
        err = fails(*args)
        assert "no space left on the device writing" in err and str(full_disk) in err, name
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


# --- what the user sees ------------------------------------------------------------------------------


def test_a_damaged_output_is_named_with_the_fix(tmp_path):
    """Outputs cut short or edited outside the workflow: scores JSON, Complementarity table, prepared JSONL."""
    scores, table, shard = tmp_path / "scores.json", tmp_path / "c.tsv", tmp_path / "s1.jsonl"
    scores.write_text('{"scores": {"base": ')  # cut short
    table.write_text("shard\tfoo\nA\t1\n")
    shard.write_text('{"prompt": "1 + 1 =", "response": "2", "id": "a"}\n{"prompt": "2 +')
    err = fails("selection", "gather", "--base-scores", str(scores), "--shard-scores", str(scores),
                "--metric", "relative", "--weights", "{}", "--k", "1", "--resamples", "10", "--confidence", "0.95",
                "--bootstrap-seed", "0", "--bootstrap", str(tmp_path / "b.npz"),
                "--out", str(tmp_path / "o.tsv"), "--losses", str(tmp_path / "l.tsv"))  # fmt: skip
    assert f"{scores} is not a complete output" in err and "delete it and rerun" in err
    err = fails(*TOPK, "--table", str(table), "--out", str(tmp_path / "s.json"))
    assert f"{table} is not a complete Complementarity table (no column 'mean')" in err
    err = fails("shards", "check", "--shards", str(shard), "--out", str(tmp_path / "checked.tsv"))
    assert f"{shard}, line 2: not a record written by this workflow" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tsv", "s1.jsonl", "scores.json"]
    err = fails(*TOPK, "--table", str(tmp_path / "none.tsv"), "--out", "s.json")
    assert f"{tmp_path / 'none.tsv'} does not exist; check the path" in err
    err = fails(*TOPK, "--table", str(tmp_path), "--out", "s.json")
    assert f"{tmp_path} is a directory, not a file" in err


def test_an_unforeseen_error_is_one_line_and_the_traceback_goes_to_a_file(capsys, monkeypatch):
    """The CLI's top-level handler, on an error no check foresees (a bug): here one raised on purpose."""
    from complementarity.errors import run_reporting_errors

    def bug() -> None:
        raise KeyError("mean")

    monkeypatch.delenv("COMPLEMENTARITY_DEBUG", raising=False)
    assert run_reporting_errors(bug) == 1
    err = capsys.readouterr().err
    assert TRACEBACK not in err and err.startswith("ERROR: unexpected KeyError: 'mean'") and "--debug" in err
    trace = Path(err.split("traceback is in ")[1].split(";")[0])
    assert TRACEBACK in trace.read_text() and "in bug" in trace.read_text()
    trace.unlink()
    with pytest.raises(KeyError):
        run_reporting_errors(bug, debug=True)
    proc = run_cli("--debug", *TOPK, "--table", "/nonexistent/c.tsv", "--out", "/nonexistent/s.json", check=False)
    assert proc.returncode == 2 and TRACEBACK in proc.stderr  # --debug shows the traceback of a user error too


@pytest.mark.parametrize(
    "text, where",
    [
        ("finetune:\n  max_steps: 3\n   learning_rate: [1\n", ":3:"),  # bad indentation
        ("finetune:\n\tmax_steps: 3\n", ":2:"),  # a tab
        ("domains: {sort: {train: a.jsonl}\n", ":2:"),  # unclosed brace
    ],
)
def test_yaml_syntax_error_names_file_and_line(tmp_path, text, where):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    err = fails("validate-config", str(path))
    assert f"{path}{where}" in err and "YAML syntax error" in err


def wrong_type_cases() -> list[tuple[str, str, object]]:
    """For every section of the schema, its first key with a scalar type, and a value of another type."""
    cases = []
    for section, spec in load_schema()["properties"].items():
        props = spec.get("properties") or spec.get("additionalProperties", {}).get("properties", {})
        for key, sub in props.items():
            types = sub.get("type")
            types = [types] if isinstance(types, str) else types or []
            if types and set(types) <= {"integer", "number", "boolean", "string", "null"}:
                value = ["a", "list"] if "string" in types else "a string"
                cases.append((section, key, value))
                break
    return cases


@pytest.mark.parametrize("section, key, value", wrong_type_cases())
def test_a_key_of_the_wrong_type_in_every_section(tmp_path, section, key, value):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if section == "domains":
        cfg["domains"][next(iter(cfg["domains"]))][key] = value
        where = f"domains.{next(iter(cfg['domains']))}.{key}"
    else:
        cfg.setdefault(section, {})[key] = value
        where = f"{section}.{key}"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    err = fails("validate-config", str(path), "--base-dir", str(REPO))
    assert f"{where}: {value!r} is a " in err and "but this key must be" in err


def test_the_report_output_is_ignored_by_git():
    """`snakemake --report report.html` (or .zip) leaves nothing untracked in the repository."""
    for name in ("report.html", "report.zip"):
        proc = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
        assert proc.returncode == 0, f"{name} is not git-ignored"


# --- the workflow ------------------------------------------------------------------------------------


def test_after_a_sigkill_of_snakemake_the_rerun_names_unlock(tmp_path):
    """What the README's fault section says: a killed Snakemake leaves its lock; --unlock clears it."""
    from test_bad_input import small_workdir

    wd = small_workdir(tmp_path / "wf")
    cmd = [str(BIN / "snakemake"), "--profile", "profiles/local", "--cores", "1", "--configfile", "config/small.yaml"]
    proc = subprocess.Popen(cmd, cwd=wd, env=env_with_bin(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((wd / ".snakemake" / "locks").glob("*")):
        assert proc.poll() is None and time.monotonic() < deadline, "snakemake ended before taking its lock"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    again = run_snakemake(wd, *cmd[1:], check=False)
    assert again.returncode != 0 and "--unlock" in again.stdout + again.stderr
    run_snakemake(wd, "--unlock", "--configfile", "config/small.yaml")
    # "The same command again": the profile's rerun-incomplete redoes the jobs the kill cut short (which
    # jobs those are depends on when the kill lands; a plain `snakemake -n` would stop on them).
    assert run_snakemake(wd, "-n", *cmd[1:]).returncode == 0


def test_yaml_syntax_error_in_the_default_config_names_file_and_line(tmp_path):
    from conftest import copy_workflow

    wd = copy_workflow(tmp_path / "wf")
    with (wd / "config" / "config.yaml").open("a") as f:
        f.write("finetune:\n  max_steps: 3\n   learning_rate: 1\n")
    n = len((wd / "config" / "config.yaml").read_text().splitlines())
    proc = run_snakemake(wd, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"config/config.yaml:{n}:" in out and "YAML syntax error" in out, out[-2000:]


def test_read_only_results_is_named_with_the_fix(tmp_path):
    from test_bad_input import small_workdir

    wd = small_workdir(tmp_path / "wf")
    results = wd / "results"
    results.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: make it a read-only file system, as the user had
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(results)], check=True)
    else:
        results.chmod(0o555)
    try:
        proc = run_snakemake(wd, "--profile", "profiles/local", "--cores", "1", "--configfile", "config/small.yaml", check=False)  # fmt: skip
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(results)], check=True)
        else:
            results.chmod(0o755)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"cannot write {results}/" in out and ("read-only file system" in out or "permission denied" in out), out[
        -2000:
    ]
    assert "writable" in out and "Errno" not in out


def test_ctrl_c_is_one_line_and_exit_130(tiny_base, train_file, tmp_path):
    log = tmp_path / "run.log"
    args = finetune_args(tiny_base, train_file, tmp_path / "a", max_steps=100000)
    # As from a terminal: SIGINT at its default. A shell without job control starts background commands
    # (CI runners, `cmd &` in a script) with SIGINT ignored, and an ignored signal survives exec, so
    # Python would never raise KeyboardInterrupt and Ctrl-C could not be tested there.
    proc = subprocess.Popen([str(BIN / "complementarity"), *args], env=env_with_bin(), stdout=log.open("w"),
                            stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    while "steps of" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    text = log.read_text()
    assert TRACEBACK not in text and "ERROR: interrupted" in text and not (tmp_path / "a").exists()
