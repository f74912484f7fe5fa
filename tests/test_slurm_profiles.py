"""SLURM profiles, without a cluster: dry runs of the profiles and their resources per rule.

The model fetching for offline compute nodes is tested in test_model_fetching.py, the pipeline on a
live SLURM cluster in test_slurm_cluster.py (which reuses this file's small config).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import BIN, REPO, copy_workflow, env_with_bin, run_snakemake
from test_envs import load_rules

pytestmark = pytest.mark.workflow

GPU_RULES = ("score_base", "finetune_shard", "score_group", "finetune_final")
STUDY_GPU_RULES = ("finetune_study", "finetune_shard_seed", "evaluate_model")
LOCAL_RULES = ("all", "prepare_data", "make_shard", "check_shards", "gather_scores", "select_topk")
SHARDS = ["cand01", "cand02", "cand03", "cand04"]  # cand03 has wrong answers on purpose


def write_small_config(workdir: Path) -> str:
    """The default pipeline made small: 4 candidate shards, k=2, a smaller tiny model, 120 steps."""
    cfg = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    cfg["sharding"]["files"] = [f"config/demo/shards/{s}.jsonl" for s in SHARDS]
    cfg["selection"]["k"] = 2
    cfg["scoring"]["group_size"] = 2  # two scoring jobs of two adapters each
    cfg["base_model"]["tiny"].update(
        vocab_size=300, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128, pretrain_steps=40
    )
    # Enough steps that a shard job is cancelled mid-training, after a checkpoint (the retry resumes).
    cfg["finetune"].update(epochs=1, max_steps=120, batch_size=8, checkpoint_every=5)
    if "evaluation" in cfg:
        cfg["evaluation"]["enabled"] = False  # baselines and test-set accuracy: not what this tests, and slow
    (workdir / "config" / "small.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return "config/small.yaml"


def dry_run_jobs(workdir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """{rule: [its jobs' resource lines]} from a verbose dry run."""
    proc = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--verbose", *args],
        cwd=workdir,
        env={**env_with_bin(), **(env or {})},
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            rule = m.group(1)
            jobs.setdefault(rule, [])
        elif rule and line.strip().startswith("resources:"):
            jobs[rule].append(line.strip())
    return jobs


def resources(line: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in line.removeprefix("resources:").replace(" ", "").split(","))


# --- the profiles (no cluster needed) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_static"))
    write_small_config(workdir)
    return workdir


def test_gpu_rules_ask_for_one_gpu_and_light_rules_stay_local(scratch):
    # The default config: every rule the workflow has (evaluation included, when it is on).
    jobs = dry_run_jobs(scratch, "--profile", "profiles/slurm")
    gpu_rules = {rule for rule, lines in jobs.items() if any("gpu=" in line for line in lines)}
    assert set(GPU_RULES) <= gpu_rules, f"rules without a GPU: {set(GPU_RULES) - gpu_rules}"
    for rule in gpu_rules:
        for line in jobs[rule]:
            res = resources(line)
            assert res["gpu"] == "1", line  # `gpu=1` -> sbatch --gpus=1 (never gpus=, see the profile)
            assert "gpus" not in res and "tasks_per_gpu" not in res and "tasks" not in res, line
            assert int(res["mem_mb"]) >= 8000 and int(res["runtime"]) >= 30 and int(res["cpus_per_task"]) >= 1, line
    assert "build_base_model" not in gpu_rules, "the tiny model needs no GPU"
    rules = load_rules(scratch)
    local = {r for r, rule in rules.items() if rule["local"]}
    assert set(LOCAL_RULES) <= local, f"light rules that would become SLURM jobs: {set(LOCAL_RULES) - local}"
    assert not local & (gpu_rules | {"build_base_model"}), "the tiny model and the GPU steps are cluster jobs"
    # The study's rules too (with 2 seeds, so the extra-seed shard fine-tunes are in the DAG).
    cfg = yaml.safe_load((scratch / "config" / "config.yaml").read_text())
    cfg["study"]["seeds"] = 2
    (scratch / "config" / "study2.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    study = dry_run_jobs(scratch, "study", "--profile", "profiles/slurm", "--configfile", "config/study2.yaml")
    study_gpu = {rule for rule, lines in study.items() if any("gpu=" in line for line in lines)}
    assert set(STUDY_GPU_RULES) <= study_gpu, f"study rules without a GPU: {set(STUDY_GPU_RULES) - study_gpu}"
    for rule in study_gpu:
        assert all(resources(line)["gpu"] == "1" for line in study[rule]), rule
    assert {"study", "study_data", "analyze_study"} <= local, "the study's light rules run on the submit node"
    gpu_rules |= study_gpu
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert gpu_rules <= set(profile["set-resources"]) and gpu_rules <= set(profile["set-threads"]), (
        "every GPU rule needs its SITE partition / GPU model and its cores in profiles/slurm"
    )


def test_slurm_profile_takes_site_values_from_the_command_line(scratch):
    env = {
        "COMPLEMENTARITY_SLURM_ACCOUNT": "",  # empty = unset: left out, the plugin guesses
        "COMPLEMENTARITY_SLURM_PARTITION": "cpu",
        "COMPLEMENTARITY_SLURM_GPU_PARTITION": "gpu",
        "COMPLEMENTARITY_SLURM_GPU_MODEL": "a100",
    }
    jobs = dry_run_jobs(scratch, "--profile", "profiles/slurm", "--configfile", "config/small.yaml", env=env)
    for rule in GPU_RULES:
        res = resources(jobs[rule][0])
        assert res["slurm_partition"] == "gpu" and res["gpu_model"] == "a100" and res["gpu"] == "1", res
        assert "slurm_account" not in res
    assert resources(jobs["build_base_model"][0])["slurm_partition"] == "cpu"
    # Unset, the SITE keys are left out and the cluster's defaults apply.
    unset = {k: "" for k in env}
    res = resources(dry_run_jobs(scratch, "--profile", "profiles/slurm", env=unset)["finetune_shard"][0])
    assert not {"slurm_partition", "slurm_account", "gpu_model"} & set(res), res


def test_a_hub_base_model_is_fetched_by_a_local_rule(scratch):
    cfg = yaml.safe_load((scratch / "config" / "small.yaml").read_text())
    cfg["base_model"]["source"] = "acme/tiny-llama"
    (scratch / "config" / "hub.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert load_rules(scratch, "config/hub.yaml")["build_base_model"]["local"]


def test_every_slurm_profile_entry_is_commented():
    lines = (REPO / "profiles" / "slurm" / "config.yaml").read_text().splitlines()
    in_definitions = False
    for i, line in enumerate(lines, start=1):
        if in_definitions and (line.startswith(" ") or not line.strip()):
            continue  # Python in the YTE definitions
        in_definitions = line.startswith("__definitions__")
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"profiles/slurm/config.yaml:{i}: no comment on {line!r}"


def test_the_slurm_profile_names_only_real_rules(scratch):
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    rules = {line.split()[0] for line in run_snakemake(scratch, "--list-rules").stdout.splitlines() if line.strip()}
    for key in ("set-threads", "set-resources"):
        assert set(profile[key]) <= rules, f"{key} names unknown rules: {set(profile[key]) - rules}"
    assert "resources" not in profile, "a global gpu limit would cap what each job asks SLURM for"


@pytest.mark.parametrize(("visible", "expected"), [("0,1", 2), ("3", 1), ("", 0), ("-1", 0)])
def test_local_profile_caps_gpu_jobs_to_the_gpus_present(monkeypatch, visible, expected):
    import yte

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with open(REPO / "profiles" / "local" / "config.yaml") as f:
        profile = yte.process_yaml(f, require_use_yte=True)
    assert profile["resources"] == {"gpu": expected}
