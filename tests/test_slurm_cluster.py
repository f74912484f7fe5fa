"""The pipeline on a live single-node SLURM cluster.

The tests bring SLURM up with cluster/up.sh (Debian's slurm-wlm and munge, the node advertising
two fake GPUs through GRES), run a small pipeline with `--profile profiles/slurm` while cancelling
one running shard job with `scancel`, compare its selection with a local run of the same config, and
tear the cluster down with cluster/down.sh if they brought it up. They need root and apt (CI has both) and are skipped
elsewhere, with the reason. Their wall times are printed and written to SLURM_TIMES.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import BIN, REPO, copy_workflow, env_with_bin, job_counts, run_snakemake
from test_slurm_profiles import LOCAL_RULES, SHARDS, write_small_config

pytestmark = pytest.mark.workflow

CLUSTER_GPUS = 2
SLURM_TIMES = Path("/tmp/complementarity-slurm-test-times.txt")
SNAKEMAKE_TIMEOUT_S = 900


# --- a live single-node SLURM cluster --------------------------------------------------------------------


def cluster_skip_reason() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "the live SLURM tests bring up a cluster with cluster/up.sh, which needs root (CI has it)"
    if not shutil.which("sbatch") and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is not available to install it"
    return None


def record_time(name: str, seconds: float) -> None:
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {name}: {seconds:.1f} s"
    print(f"\n[wall time] {line}")
    with SLURM_TIMES.open("a") as f:
        f.write(line + "\n")


@pytest.fixture(scope="module")
def cluster():
    """A live single-node SLURM with fake GPUs: brought up here (and torn down after) unless it already runs."""
    reason = cluster_skip_reason()
    if reason:
        pytest.skip(reason)
    # One test session at a time on this machine's cluster (engineers share machines).
    lock = open("/tmp/complementarity-slurm-test.lock", "w")  # held until the module is done
    fcntl.flock(lock, fcntl.LOCK_EX)
    started = time.monotonic()
    was_up = (
        bool(shutil.which("scontrol"))
        and "UP" in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout
    )
    up = subprocess.run(["bash", str(REPO / "cluster" / "up.sh")], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, f"cluster/up.sh failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
    record_time("cluster/up.sh" + (" (already up)" if was_up else ""), time.monotonic() - started)
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    assert f"gpu:{CLUSTER_GPUS}" in gres, f"the cluster does not advertise gpu:{CLUSTER_GPUS} (sinfo: {gres.strip()})"
    try:
        yield
    finally:
        if not was_up:
            # --purge removes the slurm.conf up.sh wrote: with a config but no controller, `scontrol` blocks
            # ~9 s, and the SLURM executor plugin runs it when Snakemake imports it: every later snakemake
            # command in the session (the workflow tests) would wait that long.
            down = subprocess.run(
                ["bash", str(REPO / "cluster" / "down.sh"), "--purge"], capture_output=True, text=True, timeout=300
            )
            assert down.returncode == 0, f"cluster/down.sh failed:\n{down.stdout}\n{down.stderr}"
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def slurm_jobs(min_id: int, name_prefix: str = "") -> dict[int, dict[str, str]]:
    """SLURM jobs with an id above ``min_id`` (finished ones too: MinJobAge is an hour), from scontrol."""
    out = subprocess.run(["scontrol", "-d", "-o", "show", "job"], capture_output=True, text=True).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        if int(fields.get("JobId", 0)) > min_id and fields.get("JobName", "").startswith(name_prefix):
            jobs[int(fields["JobId"])] = fields
    return jobs


def last_job_id() -> int:
    return max(slurm_jobs(0), default=0)


def rule_of(job: dict[str, str]) -> tuple[str, str]:
    """(rule, wildcards) from the job comment the plugin writes: rule_<rule>[_wildcards_<values>]."""
    m = re.fullmatch(r"rule_(\w+?)(?:_wildcards_(.*))?", job.get("Comment", ""))
    assert m, f"SLURM job {job['JobId']} has no Snakemake comment: {job.get('Comment')!r}"
    return m.group(1), m.group(2) or ""


SLURM_ARGS = [
    "--profile", "profiles/slurm",
    "--configfile", "config/small.yaml",
    # The test override: check job states every second from the first second on, one thread per job
    # (the test node has 2 real cores), and a short latency wait (a local filesystem).
    "--slurm-init-seconds-before-status-checks", "1",
    "--set-threads", "build_base_model=1", "score_base=1", "finetune_shard=1", "score_group=1", "finetune_final=1",
    "--latency-wait", "5",
]  # fmt: skip


class SnakemakeOnSlurm:
    """Snakemake started in the background (so a test can act on its jobs), polling SLURM meanwhile."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.first_id = last_job_id()
        self.log = workdir / "snakemake-slurm.log"
        self.polls: list[dict[int, dict[str, str]]] = []
        self.cancelled: list[str] = []  # SLURM job ids a test cancelled
        self.proc = subprocess.Popen(
            [str(BIN / "snakemake"), *SLURM_ARGS],
            cwd=workdir,
            env=env_with_bin(),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()

    def poll(self) -> dict[int, dict[str, str]]:
        jobs = slurm_jobs(self.first_id, name_prefix="complementarity_")  # the profile's slurm-jobname-prefix
        self.polls.append(jobs)
        return jobs

    def wait(self, until=None) -> None:
        """Poll SLURM every 0.3 s until Snakemake exits (calling ``until(jobs)`` on each poll)."""
        while self.proc.poll() is None:
            jobs = self.poll()
            if until is not None and until(jobs):
                until = None
            if time.monotonic() - self.started > SNAKEMAKE_TIMEOUT_S:
                self.proc.send_signal(signal.SIGINT)  # Snakemake cancels its SLURM jobs on SIGINT
                self.proc.wait(60)
                pytest.fail(f"snakemake on SLURM ran past {SNAKEMAKE_TIMEOUT_S} s:\n{self.output()[-5000:]}")
            time.sleep(0.3)
        self.poll()
        self.elapsed = time.monotonic() - self.started
        assert self.proc.returncode == 0, f"snakemake on SLURM exited {self.proc.returncode}:\n{self.output()[-6000:]}"

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def local_run_started(tmp_path_factory):
    """The same small pipeline with the local profile, started in the background (it overlaps the SLURM
    run, which mostly waits on the scheduler): the selection SLURM must reproduce."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_local"))
    write_small_config(workdir)
    log = workdir / "snakemake-local.log"
    args = ["--profile", "profiles/local", "--cores", "2", "--configfile", "config/small.yaml"]
    proc = subprocess.Popen(
        [str(BIN / "snakemake"), *args], cwd=workdir, env=env_with_bin(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    yield proc, workdir, log, time.time()
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


@pytest.fixture(scope="module")
def local_run(local_run_started) -> Path:
    proc, workdir, log, started = local_run_started
    proc.wait(SNAKEMAKE_TIMEOUT_S)
    assert proc.returncode == 0, f"the local run exited {proc.returncode}:\n{log.read_text()[-5000:]}"
    # Its log was last written when it finished.
    record_time("local run of the small pipeline (overlapping the SLURM run)", log.stat().st_mtime - started)
    return workdir


@pytest.fixture(scope="module")
def slurm_run(cluster, local_run_started, tmp_path_factory) -> SnakemakeOnSlurm:
    """The small pipeline on SLURM; while it runs, the fine-tune of shard cand02 is cancelled with scancel."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_run"))
    write_small_config(workdir)
    run = SnakemakeOnSlurm(workdir)

    def cancel_running_shard_job(jobs):
        for job in jobs.values():
            checkpoint = workdir / "results" / "checkpoints" / "cand02" / "checkpoint.pt"
            if rule_of(job) == ("finetune_shard", "cand02") and job["JobState"] == "RUNNING" and checkpoint.exists():
                subprocess.run(["scancel", job["JobId"]], check=True)
                run.cancelled.append(job["JobId"])
                return True
        return False

    run.wait(until=cancel_running_shard_job)
    record_time("SLURM run of the small pipeline, one shard job cancelled", run.elapsed)
    return run


def assert_same_selection(workdir: Path, local: Path) -> None:
    sel = json.loads((workdir / "results" / "selection.json").read_text())
    expected = json.loads((local / "results" / "selection.json").read_text())
    assert sel["selected"] == expected["selected"] and sel["ranking"] == expected["ranking"], (sel, expected)
    table = pd.read_csv(workdir / "results" / "complementarity.tsv", sep="\t")
    expected_table = pd.read_csv(local / "results" / "complementarity.tsv", sep="\t")
    pd.testing.assert_frame_equal(table, expected_table, rtol=1e-5)
    assert (workdir / "results" / "final" / "adapter_model.safetensors").is_file()


def test_pipeline_on_slurm_runs_every_gpu_job_on_one_gpu_and_selects_as_a_local_run(slurm_run, local_run):
    jobs = slurm_run.polls[-1]
    attempts: dict[tuple[str, str], list[dict[str, str]]] = {}
    for job_id in sorted(jobs):
        attempts.setdefault(rule_of(jobs[job_id]), []).append(jobs[job_id])
    rules = {rule for rule, _ in attempts}
    assert not rules & set(LOCAL_RULES), f"local rules ran as SLURM jobs: {rules & set(LOCAL_RULES)}"
    # scoring.group_size 2 in the small config: two scoring jobs of two shard models each.
    expected = [("score_base", ""), ("finetune_final", ""), ("score_group", "shards-1"), ("score_group", "shards-2")]
    expected += [("finetune_shard", s) for s in SHARDS]
    assert {("build_base_model", ""), *expected} <= set(attempts), sorted(attempts)

    # Every GPU-rule job ran as a SLURM job (its last attempt completed) with exactly one GPU, as one task.
    for key in expected:
        assert attempts[key][-1]["JobState"] == "COMPLETED", attempts[key]
        for job in attempts[key]:
            assert job["TresPerJob"] == "gres:gpu:1" and job["JOB_GRES"] == "gpu:1", job
            assert job["NumTasks"] == "1" and job["NumNodes"] == "1", job
    assert attempts[("build_base_model", "")][0].get("JOB_GRES") in (None, "(null)"), "the tiny model got a GPU"

    # While they ran: each running GPU job held its own GPU, never more than the node has.
    most_at_once, waited_for_a_gpu = 0, False
    for poll in slurm_run.polls:
        gpu_jobs = [j for j in poll.values() if "gpu" in j.get("TresPerJob", "")]
        running = [j for j in gpu_jobs if j["JobState"] == "RUNNING"]
        indices = [re.search(r"IDX:(\d+)", j.get("GRES", "")) for j in running]
        assert all(indices), f"a running GPU job has no GPU index: {running}"
        assert len({m.group(1) for m in indices}) == len(running), f"two jobs on one GPU: {running}"
        most_at_once = max(most_at_once, len(running))
        waited_for_a_gpu |= any(j["JobState"] == "PENDING" and j["Reason"] == "Resources" for j in gpu_jobs)
    assert 1 <= most_at_once <= CLUSTER_GPUS
    assert waited_for_a_gpu, "no GPU job ever queued for a GPU: the node's GPU limit was not exercised"

    # The same from SLURM's records of start and end times: at most 2 GPU jobs overlap.
    gpu_jobs = [j for j in jobs.values() if "gpu" in j.get("TresPerJob", "")]
    events = [(j[t], step) for j in gpu_jobs for t, step in (("StartTime", 1), ("EndTime", -1))]
    running_now = peak = 0
    for _, step in sorted(events):  # at the same second an end (-1) sorts before a start (+1)
        running_now += step
        peak = max(peak, running_now)
    assert peak <= CLUSTER_GPUS, f"{peak} GPU jobs overlapped on a node with {CLUSTER_GPUS} GPUs"

    assert_same_selection(slurm_run.workdir, local_run)
    assert job_counts(run_snakemake(slurm_run.workdir, "-n", "--configfile", "config/small.yaml").stdout) == {}


def test_a_cancelled_shard_job_is_retried_and_the_run_completes(slurm_run, local_run):
    """scancel on a running finetune_shard job: Snakemake sees it fail, resubmits it (retries: 1), finishes."""
    out = slurm_run.output()
    assert slurm_run.cancelled, f"no finetune_shard job for cand02 was seen running:\n{out[-4000:]}"
    jobs = slurm_run.polls[-1]
    attempts = [jobs[i] for i in sorted(jobs) if rule_of(jobs[i]) == ("finetune_shard", "cand02")]
    assert [j["JobState"] for j in attempts] == ["CANCELLED", "COMPLETED"], attempts
    assert attempts[0]["JobId"] == slurm_run.cancelled[0]
    assert f"SLURM-job '{slurm_run.cancelled[0]}' failed, SLURM status is: 'CANCELLED'" in out, out[-4000:]
    assert "steps (100%) done" in out
    # The retry resumed from the cancelled job's checkpoint, and still selects exactly as the local run.
    metrics = json.loads((slurm_run.workdir / "results" / "shards" / "cand02" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] is not None and metrics["resumed_from_step"] >= 5, metrics
    assert_same_selection(slurm_run.workdir, local_run)
