"""Workflow tests: lint, dry runs, the full default run, invalidation, and a run on real data.

The default run happens once per session in a scratch copy of the workflow (so a user's results/ is
never touched) and takes about 2.5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REAL, REPO, copy_workflow, job_counts, run_snakemake

from complementarity.selection import random_k

pytestmark = pytest.mark.workflow

DEMO_DOMAINS = ["after", "count", "maximum", "minimum"]


def write_config(workdir: Path, name: str, edit) -> str:
    """Copy config/config.yaml with ``edit(cfg)`` applied; return its path relative to workdir."""
    cfg = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    edit(cfg)
    path = workdir / "config" / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f"config/{name}"


def dry_run(workdir: Path, *args: str) -> dict[str, int]:
    return job_counts(run_snakemake(workdir, "-n", *args).stdout)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("wf"))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    """The real default pipeline, run once with the local profile, as `make run` does."""
    workdir = copy_workflow(tmp_path_factory.mktemp("default"))
    proc = run_snakemake(workdir, "--profile", "profiles/local", "--cores", "2")
    assert "steps (100%) done" in proc.stderr + proc.stdout
    return workdir


# --- static checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("configfile", [None, "config/paper.yaml"])
def test_lint_is_clean(configfile):
    args = ["--lint"] + (["--configfile", configfile] if configfile else [])
    proc = run_snakemake(REPO, *args)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def test_dry_run_has_one_finetune_and_score_job_per_shard(scratch):
    counts = dry_run(scratch)
    # scoring.group_size 5: the 10 shard models are scored by 2 jobs, one base-model load each.
    assert counts["finetune_shard"] == 10 and counts["score_group"] == 2 and counts["make_shard"] == 10
    for rule in (
        "prepare_data",
        "check_shards",
        "build_base_model",
        "score_base",
        "gather_scores",
        "select_topk",
        "finetune_final",
    ):
        assert counts[rule] == 1, rule
    # Evaluation: base, final and all_data one job each; the 6 random-k baselines (ready together) in 2 jobs
    # (evaluation.group_size 3), whose results are copied to results/evaluation/<model>.json.
    assert counts["evaluate_model"] == 3 and counts["evaluate_group"] == 2 and counts["copy_evaluation"] == 6
    one = dry_run(
        scratch, "--configfile", write_config(scratch, "eval1.yaml", lambda c: c["evaluation"].update(group_size=1))
    )
    assert one["evaluate_model"] == 9 and "evaluate_group" not in one and "copy_evaluation" not in one


def test_dry_run_random_strategy_makes_n_shards(scratch):
    def edit(cfg):
        cfg["sharding"] = {"strategy": "random", "n_shards": 7, "seed": 3}

    counts = dry_run(scratch, "--configfile", write_config(scratch, "random7.yaml", edit))
    assert counts["finetune_shard"] == 7 and counts["make_shards"] == 1 and "make_shard" not in counts


def test_every_shell_command_fits_one_argument_at_1200_shards(scratch):
    """Snakemake runs a shell command as one `bash -c` argument, which Linux caps at 128 KiB: at N = 1,200
    shards (evaluation on) no command may reach it (cost_table, which names every job's files, runs
    in-process for that reason)."""
    sys.path.insert(0, str(REPO / "bench"))
    from run import MAX_ARG_STRLEN, longest_commands

    def edit(cfg):
        cfg["sharding"].update(strategy="random", n_shards=1200)

    proc = run_snakemake(scratch, "-n", "-p", "--configfile", write_config(scratch, "n1200.yaml", edit))
    counts = job_counts(proc.stdout)
    assert counts["finetune_shard"] == 1200 and counts["cost_table"] == 1
    longest = longest_commands(proc.stdout)
    assert "cost_table" not in longest  # in-process: no shell command
    assert longest and max(longest.values()) < MAX_ARG_STRLEN, longest


def test_paper_config_builds_its_dag_offline(scratch):
    proc = run_snakemake(scratch, "-n", "-p", "--configfile", "config/paper.yaml")
    counts = job_counts(proc.stdout)
    assert counts["finetune_shard"] == 10 and counts["score_group"] == 2 and counts["make_shards"] == 1
    for domain in ("math", "coding", "medicine", "physics"):
        assert f"results/data/domains/{domain}/validation.jsonl" in proc.stdout
    assert "config/digits" not in proc.stdout, "the default config leaked into the paper run"
    assert "mistralai/Mistral-7B-Instruct-v0.2" in proc.stdout and '"quantization": "4bit"' in proc.stdout
    # GPU jobs run with the hub offline (compute nodes): the model was fetched by a local rule.
    for command in ("finetune", "scoring", "evaluation"):
        gpu_lines = [ln for ln in proc.stdout.splitlines() if f"complementarity {command} " in ln]
        prefix = f"HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 complementarity {command} "
        assert gpu_lines and all(prefix in ln for ln in gpu_lines), command
    # The study in full: 4 single + 6 pair models, 3 seeds (20 more shard fine-tunes), every model evaluated.
    study = job_counts(run_snakemake(scratch, "-n", "study", "--configfile", "config/paper.yaml").stdout)
    assert study["finetune_study"] == 10 and study["finetune_shard_seed"] == 20 and study["finetune_shard"] == 10
    # ... and the selection rules compared (study.rules): the final model (topk) and the coverage and
    # threshold models fine-tuned and evaluated.
    # Evaluated: base and final alone; 10 study, 10 shard and 2 rule models in groups of 3 (9 jobs).
    assert study["evaluate_model"] == 2 and study["evaluate_group"] == 4 + 4 + 1 and study["copy_evaluation"] == 22
    assert study["score_group"] == 2 + 2 + 2 * 2
    assert study["finetune_rule"] == 2 and study["compare_rules"] == 1


def test_dry_run_of_both_final_methods_and_the_export(scratch):
    def edit(cfg):
        cfg["final"]["method"] = "merge"
        cfg["evaluation"]["final_methods"] = ["retrain"]

    proc = run_snakemake(scratch, "-n", "-p", "--configfile", write_config(scratch, "merge_both.yaml", edit))
    counts = job_counts(proc.stdout)
    assert counts["merge_final"] == 1 and counts["finetune_final"] == 1 and counts["cost_table"] == 1
    assert counts["evaluate_model"] == 4  # base, final, final_retrain, all_data
    assert counts["evaluate_group"] == 2 and counts["copy_evaluation"] == 6  # 6 random-k baselines, 3 per job
    assert "--name final_retrain" in proc.stdout and "results/final_retrain" in proc.stdout
    assert "complementarity merge" in proc.stdout and "--out results/final " in proc.stdout.replace("'", "")
    # The export: on the CPU for the tiny model, on a GPU (its own rule) for the paper's 4-bit base.
    assert job_counts(run_snakemake(scratch, "-n", "export").stdout)["export_merged"] == 1
    paper = job_counts(run_snakemake(scratch, "-n", "export", "--configfile", "config/paper.yaml").stdout)
    assert paper["export_merged_gpu"] == 1 and "export_merged" not in paper


def test_invalid_config_stops_before_any_job(scratch):
    path = write_config(scratch, "bad.yaml", lambda cfg: cfg["selection"].update(k=12))
    proc = run_snakemake(scratch, "-n", "--configfile", path, check=False)
    assert proc.returncode != 0
    assert "selection.k: k=12 is larger than the number of shards N=10" in proc.stdout + proc.stderr
    assert not (scratch / "results").exists()


def test_pretrain_on_domains_without_train_data_stops_at_validation(scratch):
    """Issue 13: it used to pass validation, then fail in build_base_model with a traceback."""

    def validation_only(cfg):
        for spec in cfg["domains"].values():
            spec["validation"] = spec.pop("train")
        cfg["base_model"]["tiny"]["pretrain_on"] = "domains"

    path = write_config(scratch, "no_train.yaml", validation_only)
    proc = run_snakemake(scratch, "-n", "--configfile", path, check=False)
    assert proc.returncode != 0 and "base_model.tiny.pretrain_on" in proc.stdout + proc.stderr
    assert "set pretrain_on: shards" in proc.stdout + proc.stderr
    assert not (scratch / "results").exists()
    # The run says which config it uses and what it left to schema defaults (here: nothing differs).
    ok = run_snakemake(scratch, "-n", "--configfile", write_config(scratch, "copy.yaml", lambda cfg: None))
    assert "config: " in ok.stderr and "It replaces config/config.yaml (the two are not merged)" in ok.stderr
    assert "key(s) left out" not in ok.stderr
    # The embedded default announces itself in one line.
    assert "config: config/config.yaml (the embedded default)" in run_snakemake(scratch, "-n").stderr


def test_dry_run_of_the_text_config(scratch):
    """config/text.yaml (the earlier default): its own domains and shards, 3 random-k seeds, its recipe."""
    proc = run_snakemake(scratch, "-n", "-p", "--configfile", "config/text.yaml")
    counts = job_counts(proc.stdout)
    assert counts["finetune_shard"] == 10 and counts["make_shard"] == 10 and counts["score_group"] == 2
    assert counts["finetune_random"] == 3 and counts["evaluate_model"] == 3  # base, final, all data
    assert counts["evaluate_group"] == 1 and counts["copy_evaluation"] == 3  # the 3 random-k baselines
    for domain in ("arithmetic", "reverse", "sort", "units"):
        assert f"results/data/domains/{domain}/test.jsonl" in proc.stdout
    assert "config/demo/shards/cand03.jsonl" in proc.stdout and "config/digits/" not in proc.stdout
    assert '"pretrain_loss": "all"' in proc.stdout and '"max_new_tokens": 24' in proc.stdout
    assert "config: config/text.yaml. It replaces config/config.yaml" in proc.stderr
    assert "key(s) left out" not in proc.stderr


def test_study_without_test_sets_names_the_fix(scratch):
    def drop_tests(cfg):
        for spec in cfg["domains"].values():
            spec.pop("test", None)

    path = write_config(scratch, "no_test.yaml", drop_tests)
    proc = run_snakemake(scratch, "-n", "study", "--configfile", path, check=False)
    assert proc.returncode != 0
    assert "study: no domain has a `test` set" in proc.stdout + proc.stderr
    assert "add domains.<name>.test" in proc.stdout + proc.stderr
    assert not (scratch / "results").exists()


# --- the full default run ------------------------------------------------------------------------------


def test_default_run_outputs(default_run):
    from peft import PeftModel

    from complementarity.modeling import load_base

    table = pd.read_csv(default_run / "results" / "complementarity.tsv", sep="\t")
    # The paper's columns first (unchanged), then the bootstrap's (issue 15).
    assert list(table.columns) == ["shard", *DEMO_DOMAINS, "mean", "mean_ci_low", "mean_ci_high", "p_topk"] + [
        f"{d}_ci_{end}" for d in DEMO_DOMAINS for end in ("low", "high")
    ]
    assert (table["mean_ci_low"] <= table["mean"]).all() and (table["mean"] <= table["mean_ci_high"]).all()
    assert table["p_topk"].sum() == pytest.approx(2.0)  # k shards in the top k of every resample
    assert len(table) == 10
    assert table["mean"].is_monotonic_decreasing
    # The TSV keeps 6 significant digits, so the mean of the rounded columns may differ in the last one.
    assert table[DEMO_DOMAINS].mean(axis=1).to_numpy() == pytest.approx(table["mean"].to_numpy(), rel=1e-5, abs=2e-6)

    sel = json.loads((default_run / "results" / "selection.json").read_text())
    assert sel["k"] == 2 and sel["metric"] == "relative" and sel["method"] == "topk"
    assert sel["selected"] == table["shard"].head(2).tolist()
    assert set(sel["scores"]) == set(table["shard"])
    unc = sel["uncertainty"]
    assert unc["resamples"] == 1000 and unc["seeds"] == 1 and unc["topk"] == sel["selected"]
    assert unc["p_topk"] == pytest.approx(dict(zip(table["shard"], table["p_topk"], strict=True)), abs=1e-6)
    assert unc["separated"] == (unc["p_same_topk"] >= 0.95)

    for shard in table["shard"]:
        adapter = default_run / "results" / "shards" / shard
        assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "metrics.json").is_file()
        assert (default_run / "logs" / "finetune_shard" / f"{shard}.log").is_file()
        assert (default_run / "benchmarks" / "finetune_shard" / f"{shard}.tsv").is_file()

    final = default_run / "results" / "final"
    metrics = json.loads((final / "metrics.json").read_text())
    shard_sizes = sum(
        sum(1 for _ in open(default_run / "results" / "data" / "shards" / f"{s}.jsonl")) for s in sel["selected"]
    )
    assert metrics["examples"] == shard_sizes
    prov = json.loads((final / "train_config.json").read_text())
    assert prov["settings"]["finetune"]["seed"] == 0 and prov["versions"]["transformers"]
    base, _, _ = load_base(default_run / "results" / "base_model")
    model = PeftModel.from_pretrained(base, str(final))
    assert model.active_adapter == "default"

    assert not list((default_run / "results" / "checkpoints").glob("*/checkpoint.pt")), "checkpoints left behind"

    # Evaluation: every model on every domain's 300 test items, with intervals and training fractions.
    ev = pd.read_csv(default_run / "results" / "evaluation.tsv", sep="\t")
    models = {"base", "final", "all_data", *(f"random_k_seed{s}" for s in range(1, 7))}
    assert set(ev["model"]) == models and set(ev["domain"]) == set(DEMO_DOMAINS) and len(ev) == 36
    assert (ev["n"] == 300).all() and (ev["ci_low"] <= ev["score"]).all() and (ev["score"] <= ev["ci_high"]).all()
    fraction = ev.groupby("model")["train_fraction"].first()
    assert fraction["base"] == 0 and fraction["all_data"] == 1 and fraction["final"] == pytest.approx(0.2)
    report = (default_run / "results" / "report.md").read_text()
    assert "**Embedded tiny model.**" in report and "random k (mean ± sd of 6 seeds)" in report
    assert "Is the selected model better?" in report
    assert ("**The top 2 is separated from the rest**" in report) == unc["separated"]
    assert ("**The top 2 is NOT separated from the rest**" in report) != unc["separated"]
    for fig in ("complementarity_heatmap", "accuracy"):
        for ext in ("png", "svg"):
            assert (default_run / "results" / "figures" / f"{fig}.{ext}").stat().st_size > 5000, fig
    # Cost: every stage from the benchmark files; the selection against the all-data baseline.
    cost = pd.read_csv(default_run / "results" / "cost.tsv", sep="\t").set_index("stage")
    assert (
        cost.loc["fan-out", "jobs"] == 10 and cost.loc["scoring", "jobs"] == 3 and cost.loc["evaluation", "jobs"] == 5
    )  # evaluation: base, final, all_data, and 2 jobs for the 6 random-k baselines (evaluation.group_size 3)
    assert cost.loc["fan-out", "tokens_trained"] > 0 and cost.loc["scoring", "tokens_scored"] > 0
    selection_total = cost.loc["total: Complementarity selection (fan-out + scoring + final (retrain))"]
    assert selection_total["data_fraction"] == pytest.approx(0.2) and selection_total["jobs"] == 14
    assert cost.loc["total: all-data baseline", "data_fraction"] == 1 and (cost["wall_s"] > 0).all()
    assert cost.loc["fan-out", "gpu_hours_requested"] == 10 * 4  # 10 jobs x gpu=1 x runtime 240 min
    assert "## Cost of each stage" in report and "| **total: all-data baseline** | 1 |" in report
    # Nothing left to do: the run is complete and consistent.
    assert dry_run(default_run) == {}


def test_default_run_avoids_the_corrupted_shards(default_run):
    """The acceptance criterion, on our own demo data: clean picks, corrupted shards ranked last."""
    corrupted = set(json.loads((REPO / "config" / "digits" / "MANIFEST.json").read_text())["corrupted"])
    table = pd.read_csv(default_run / "results" / "complementarity.tsv", sep="\t")
    sel = json.loads((default_run / "results" / "selection.json").read_text())
    assert not corrupted & set(sel["selected"]), f"selected a corrupted shard: {sel['selected']}"
    assert set(table["shard"].tail(len(corrupted))) == corrupted, table.to_string()


def test_study_target_on_the_default_run(default_run):
    """`snakemake study` reuses the main run's models and scores; tables carry CIs and point counts."""
    before = dry_run(default_run, "study")
    # 4 single + 6 pair models; shard models are reused (not retrained), only evaluated.
    # Selection rules (study.rules: topk, coverage): coverage selects, fine-tunes, evaluates; topk is `final`.
    assert before == {
        "study_data": 1, "finetune_study": 10, "score_group": 2, "evaluate_group": 9, "copy_evaluation": 21,
        "analyze_study": 1, "select_rule": 1, "finetune_rule": 1, "compare_rules": 1, "study": 1,
    }  # fmt: skip
    run_snakemake(default_run, "--profile", "profiles/local", "--cores", "2", "study")
    out = default_run / "results" / "study"

    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["examples_per_model"] == 400 and len(manifest["models"]) == 10
    assert all(m["records"] == 400 for m in manifest["models"].values())

    corr = pd.read_csv(out / "correlation.tsv", sep="\t")
    assert set(corr["scope"]) == {"all", *DEMO_DOMAINS} and set(corr["method"]) == {"pearson", "spearman"}
    assert (corr.loc[corr["scope"] == "all", "n"] == 40).all()  # 10 models x 4 evaluated domains
    assert (corr.loc[corr["scope"] != "all", "n"] == 10).all()
    defined = corr.dropna(subset=["r"])
    assert len(defined) and defined["r"].between(-1, 1).all()
    assert (defined["low"] <= defined["high"]).all()
    points = pd.read_csv(out / "correlation_points.tsv", sep="\t")
    assert len(points) == 40 and points["in_domain"].sum() == 4 + 6 * 2
    pearson_all = corr[(corr["scope"] == "all") & (corr["method"] == "pearson")].iloc[0]
    expected = points[["complementarity", "delta_score"]].corr().iloc[0, 1]
    assert pearson_all["r"] == pytest.approx(expected) or (pd.isna(pearson_all["r"]) and pd.isna(expected))

    pred = pd.read_csv(out / "predictors.tsv", sep="\t")
    assert list(pred["scope"]) == ["all", *DEMO_DOMAINS]
    assert (pred["n_models"] == 10).all() and (pred["draws"] == 20).all()
    assert pred.set_index("scope").loc["after", "test_validation_items"] == 20
    assert pred.set_index("scope").loc["after", "remaining_items"] == 280
    draws = pd.read_csv(out / "predictor_draws.tsv", sep="\t")
    assert len(draws) == 5 * 20

    seeds = pd.read_csv(out / "seed_selection.tsv", sep="\t")
    sel = json.loads((default_run / "results" / "selection.json").read_text())
    assert set(seeds.loc[seeds["selected"] == 1, "shard"]) == set(sel["selected"])  # seed 0 = the main run

    report = (out / "report.md").read_text()
    assert "**Embedded tiny model.**" in report and "On this run, averaged over" in report
    assert "| all | 40 |" in report
    for fig in ("correlation", "predictors", "seed_selection"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000, fig
    assert dry_run(default_run, "study") == {}
    rules_table = pd.read_csv(out / "rules.tsv", sep="\t")
    assert list(dict.fromkeys(rules_table["rule"])) == ["topk", "coverage"]
    assert set(rules_table["scope"]) == {"all", *DEMO_DOMAINS} and (rules_table["ci_low"] <= rules_table["score"]).all()
    topk_row = rules_table[rules_table["rule"] == "topk"].iloc[0]
    assert topk_row["selected"] == " ".join(sel["selected"]) and topk_row["diff_vs_topk"] == 0
    assert "# Selection rules compared" in (out / "rules.md").read_text()
    # The Snakemake report bundles the study's tables and figures.
    run_snakemake(default_run, "--report", "study_report.html", "study")
    html = (default_run / "study_report.html").read_text(errors="ignore")
    for name in ("correlation.tsv", "predictors.tsv", "seed_selection.tsv", "correlation.png", "predictors.png"):
        assert name in html, name
    # Analysis settings rerun the analysis only; more seeds add the extra-seed fine-tunes and their scoring.
    path = write_config(default_run, "draws.yaml", lambda cfg: cfg["study"].update(test_validation_draws=5))
    assert dry_run(default_run, "study", "--configfile", path) == {"analyze_study": 1, "study": 1}
    path = write_config(default_run, "seeds.yaml", lambda cfg: cfg["study"].update(seeds=2))
    assert dry_run(default_run, "study", "--configfile", path) == {
        "finetune_shard_seed": 10, "score_group": 2, "analyze_study": 1, "study": 1,
    }  # fmt: skip


def test_changing_k_reruns_only_selection_and_final(default_run):
    path = write_config(default_run, "k3.yaml", lambda cfg: cfg["selection"].update(k=3))
    # k also defines the random-k baselines; the shard fine-tunes, scores and all-data baseline stay.
    # gather_scores (seconds) recomputes P(top-k) for the new k.
    assert dry_run(default_run, "--configfile", path) == {
        "gather_scores": 1, "select_topk": 1, "finetune_final": 1, "select_random": 6, "finetune_random": 6,
        "evaluate_model": 1, "evaluate_group": 2, "copy_evaluation": 6, "cost_table": 1, "report": 1, "all": 1,
    }  # fmt: skip


def test_changing_the_selection_rule_reruns_only_selection_and_what_follows(default_run):
    # coverage keeps k: the random-k baselines stay.
    path = write_config(default_run, "coverage.yaml", lambda cfg: cfg["selection"].update(method="coverage"))
    assert dry_run(default_run, "--configfile", path) == {
        "select_topk": 1, "finetune_final": 1, "evaluate_model": 1, "cost_table": 1, "report": 1, "all": 1,
    }  # fmt: skip
    # threshold: k follows from the selection, so the random-k baselines are redrawn with its count.
    path = write_config(
        default_run, "threshold.yaml", lambda cfg: cfg["selection"].update(method="threshold", threshold=-1.0)
    )
    assert dry_run(default_run, "--configfile", path) == {
        "select_topk": 1, "finetune_final": 1, "select_random": 6, "finetune_random": 6, "evaluate_model": 1,
        "evaluate_group": 2, "copy_evaluation": 6, "cost_table": 1, "report": 1, "all": 1,
    }  # fmt: skip
    # The bootstrap's settings rerun the table and selection, never a fine-tune or a score.
    path = write_config(default_run, "boot.yaml", lambda cfg: cfg["selection"]["bootstrap"].update(resamples=500))
    assert dry_run(default_run, "--configfile", path) == {
        "gather_scores": 1, "select_topk": 1, "finetune_final": 1, "evaluate_model": 1, "cost_table": 1,
        "report": 1, "all": 1,
    }  # fmt: skip


def test_selection_seeds_reuse_the_study_seed_jobs(default_run):
    """selection.seeds 2 adds one fine-tune and score per shard (the study's jobs); the study then reuses them."""
    path = write_config(default_run, "sel_seeds.yaml", lambda cfg: cfg["selection"].update(seeds=2))
    assert dry_run(default_run, "--configfile", path) == {
        "finetune_shard_seed": 10, "score_group": 2, "gather_scores": 1, "select_topk": 1, "finetune_final": 1,
        "evaluate_model": 1, "cost_table": 1, "report": 1, "all": 1,
    }  # fmt: skip
    both = write_config(
        default_run, "both_seeds.yaml", lambda cfg: (cfg["selection"].update(seeds=2), cfg["study"].update(seeds=2))
    )
    proc = run_snakemake(
        default_run, "-n", "all", "study", "--configfile", both
    )  # targets before --configfile (nargs +)
    counts = job_counts(proc.stdout)
    assert counts["finetune_shard_seed"] == 10 and "results/scores/seed1-1.json" in proc.stdout


def test_changing_the_metric_reruns_the_fan_in_only(default_run):
    path = write_config(default_run, "absolute.yaml", lambda cfg: cfg["selection"].update(metric="absolute"))
    counts = dry_run(default_run, "--configfile", path)
    assert counts == {
        "gather_scores": 1,
        "select_topk": 1,
        "finetune_final": 1,
        "evaluate_model": 1,
        "cost_table": 1,
        "report": 1,
        "all": 1,
    }


def test_changing_the_final_method_reruns_only_the_final_stage_and_what_follows(default_run):
    """final.method merge replaces the final fine-tune by a merge; nothing upstream reruns."""
    path = write_config(default_run, "merge.yaml", lambda cfg: cfg["final"].update(method="merge"))
    after_final = {"evaluate_model": 1, "cost_table": 1, "report": 1, "all": 1}
    assert dry_run(default_run, "--configfile", path) == {"merge_final": 1, **after_final}
    # Merge settings only matter to the merge: with retrain they rerun nothing.
    path = write_config(default_run, "dens.yaml", lambda cfg: cfg["final"]["merge"].update(combination="svd"))
    assert dry_run(default_run, "--configfile", path) == {}
    # Both methods evaluated: the merge is built beside results/final (untouched) and evaluated as final_merge.
    path = write_config(
        default_run, "both.yaml", lambda cfg: cfg["evaluation"].update(final_methods=["retrain", "merge"])
    )
    proc = run_snakemake(default_run, "-n", "--configfile", path)
    assert job_counts(proc.stdout) == {"merge_final": 1, **after_final}
    assert "results/final_merge" in proc.stdout and "wildcards: model=final_merge" in proc.stdout


def test_changing_a_learning_rate_reruns_every_finetune_but_not_the_base(default_run):
    path = write_config(default_run, "lr.yaml", lambda cfg: cfg["finetune"].update(learning_rate=0.001))
    counts = dry_run(default_run, "--configfile", path)
    assert counts["finetune_shard"] == 10 and counts["finetune_final"] == 1 and counts["finetune_random"] == 6
    assert counts["finetune_all_data"] == 1 and counts["evaluate_model"] == 2  # final, all data (not the base)
    assert counts["evaluate_group"] == 2 and counts["copy_evaluation"] == 6  # the random-k baselines
    assert "build_base_model" not in counts and "score_base" not in counts and "make_shard" not in counts
    # ... and what follows them: their scoring, the fan-in, the report.
    assert counts["score_group"] == 2 and counts["gather_scores"] == 1 and counts["report"] == 1


def test_changing_checkpointing_or_training_logs_reruns_nothing(default_run):
    """Checkpoint cadence and retention, and the training logs, change how a fine-tune runs, not the
    adapter it writes."""
    path = write_config(
        default_run,
        "ckpt.yaml",
        lambda cfg: cfg["finetune"].update(checkpoint_every=7, keep_checkpoints=True, report_to="tensorboard"),
    )
    assert dry_run(default_run, "--configfile", path) == {}
    # The values still reach the job (as resources, which Snakemake does not compare between runs).
    proc = run_snakemake(default_run, "-n", "-p", "--forcerun", "finetune_final", "--configfile", path)
    assert "--checkpoint-every 7 --keep-checkpoints 1 --report-to tensorboard" in proc.stdout


def test_changing_one_shard_file_reruns_only_that_shard_and_the_fan_in(default_run):
    shard_file = default_run / "config" / "digits" / "shards" / "cand05.jsonl"
    lines = shard_file.read_text().splitlines(keepends=True)
    shard_file.write_text("".join(lines[:-1]))  # drop one record
    # check_shards is the barrier before training: re-checked, but (ancient input) it reruns no other shard.
    # Its scoring group (cand01-cand05, scoring.group_size 5) is rescored: one job, one base-model load.
    expected = {"make_shard": 1, "check_shards": 1, "finetune_shard": 1, "score_group": 1}
    expected |= {"gather_scores": 1, "select_topk": 1, "finetune_final": 1, "cost_table": 1, "all": 1}
    # Baselines that train on cand05: all-data, and the random-k draws that include it.
    with_cand05 = [s for s in range(1, 7) if "cand05" in random_k([f"cand{i:02d}" for i in range(1, 11)], 2, s)]
    expected |= {"finetune_all_data": 1, "evaluate_model": 2, "report": 1}  # final, all data
    if with_cand05:  # their evaluation groups (seeds 1-3, 4-6: evaluation.group_size 3) are evaluated again, whole
        groups = {(s - 1) // 3 for s in with_cand05}
        expected |= {
            "finetune_random": len(with_cand05),
            "evaluate_group": len(groups),
            "copy_evaluation": 3 * len(groups),
        }
    proc = run_snakemake(default_run, "-n")
    assert job_counts(proc.stdout) == expected
    assert "wildcards: shard=cand05" in proc.stdout and "shard=cand01" not in proc.stdout
    assert "wildcards: group=shards-1" in proc.stdout and "group=shards-2" not in proc.stdout

    other = default_run / "results" / "shards" / "cand01" / "adapter_model.safetensors"
    before = os.stat(other).st_mtime_ns
    # Executed up to the final model (the baselines' reruns are the dry run's business; they cost minutes).
    run_snakemake(default_run, "--profile", "profiles/local", "--cores", "2", "results/final")
    assert os.stat(other).st_mtime_ns == before, "an unaffected shard was retrained"
    shard_rows = sum(1 for _ in open(default_run / "results" / "data" / "shards" / "cand05.jsonl"))
    assert shard_rows == len(lines) - 1
    assert dry_run(default_run, "results/final") == {}


# --- real data, through the same loaders the paper config uses -----------------------------------------


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is absent (a user's fresh clone)")
def test_pipeline_on_real_gsm8k_mbpp_mmlu(tmp_path):
    """GSM8K through the hub code path (a local dataset folder), MBPP and MMLU from local files."""
    workdir = copy_workflow(tmp_path / "real")
    mmlu = REAL / "mmlu" / "data"

    def mmlu_spec(subjects, split):
        return [{"path": str(mmlu / split / f"{s}_{split}.csv"), "format": "mmlu"} for s in subjects]

    medicine = ["anatomy", "clinical_knowledge", "college_medicine", "professional_medicine"]
    physics = ["college_physics", "high_school_physics", "conceptual_physics"]
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg["base_model"] = {
        "source": "tiny",
        "prompt_template": "plain",
        "tiny": {
            "vocab_size": 400, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128,
            "max_position_embeddings": 512, "pretrain_steps": 10, "pretrain_batch_size": 8,
        },
    }  # fmt: skip
    cfg["domains"] = {
        "math": {
            "train": {"hub": str(REAL / "gsm8k"), "split": "train", "format": "gsm8k", "limit": 120},
            "test": {"hub": str(REAL / "gsm8k"), "split": "test", "format": "gsm8k", "limit": 50},
        },
        "coding": {
            "train": {"path": str(REAL / "mbpp" / "mbpp.jsonl"), "split": "train", "format": "mbpp", "limit": 120},
            "test": {"path": str(REAL / "mbpp" / "mbpp.jsonl"), "split": "test", "format": "mbpp", "limit": 50},
        },
        "medicine": {"train": mmlu_spec(medicine, "val"), "test": mmlu_spec(medicine, "test")},
        "physics": {"train": mmlu_spec(physics, "val"), "test": mmlu_spec(physics, "test")},
    }
    cfg["sharding"] = {"strategy": "random", "n_shards": 3, "seed": 0}
    assert cfg["data"]["leakage"] == "drop"  # MMLU repeats questions across splits
    cfg["selection"]["k"] = 1
    # Every evaluator (gsm8k, mbpp in the sandbox, multiple choice, …) on a few real test items.
    cfg["evaluation"].update(random_k_seeds=[1], test_limit=8, max_new_tokens=24, batch_size=8)
    cfg["finetune"].update(
        max_steps=4, batch_size=4, grad_accum=1, max_seq_len=256, gradient_checkpointing=False, learning_rate=0.003
    )
    # The study too: every real evaluator's per-item results feed its correlation and predictor analyses.
    cfg["study"].update(examples_per_model=40, test_validation_size=3, test_validation_draws=3, seeds=1)
    (workdir / "config" / "real.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env_cache = tmp_path / "hf_cache"
    os.environ["HF_DATASETS_CACHE"] = str(env_cache)  # inherited by the jobs
    try:
        run_snakemake(
            workdir, "all", "study", "--profile", "profiles/local", "--cores", "2", "--configfile", "config/real.yaml"
        )
    finally:
        del os.environ["HF_DATASETS_CACHE"]

    report = json.loads((workdir / "results" / "data" / "domains" / "report.json").read_text())["domains"]
    assert report["math"]["train"] + report["math"]["validation"] == 120
    assert report["medicine"]["test"] == 845 and report["physics"]["test"] == 488  # test sets stay whole
    assert report["medicine"]["test_duplicates_kept"] == 78 and report["physics"]["test_duplicates_kept"] == 11
    # MMLU questions that are in both val and test: dropped from training/validation and counted.
    for domain, n_leaked in (("medicine", 14), ("physics", 6)):
        rep = report[domain]
        assert rep["leaked_train_records_dropped"] + rep["leaked_validation_records_dropped"] == n_leaked
        n_val_split = {"medicine": 96, "physics": 54}[domain]  # MMLU val rows, our training data
        assert rep["train"] + rep["validation"] == n_val_split - n_leaked - rep["train_duplicates_dropped"]
    table = pd.read_csv(workdir / "results" / "complementarity.tsv", sep="\t")
    from complementarity.tables import score_columns

    assert score_columns(table) == ["math", "coding", "medicine", "physics", "mean"]
    assert {"mean_ci_low", "mean_ci_high", "p_topk"} <= set(table.columns)
    assert len(table) == 3
    sel = json.loads((workdir / "results" / "selection.json").read_text())
    assert sel["selected"] == [table["shard"][0]]
    assert (workdir / "results" / "final" / "adapter_model.safetensors").is_file()
    ev = pd.read_csv(workdir / "results" / "evaluation.tsv", sep="\t")
    evaluators = dict(zip(ev["domain"], ev["evaluator"], strict=False))
    assert evaluators == {
        "math": "gsm8k",
        "coding": "mbpp",
        "medicine": "multiple_choice",
        "physics": "multiple_choice",
    }
    assert set(ev["model"]) == {"base", "final", "all_data", "random_k_seed1"} and (ev["n"] == 8).all()
    mbpp = json.loads((workdir / "results" / "evaluation" / "final.json").read_text())["domains"]["coding"]
    assert {item["status"] for item in mbpp["per_item"]} <= {"passed", "failed", "timeout"}
    assert "strict_score" in ev.columns  # GSM8K reports strict and flexible match
    pooled = sum(report[d]["train"] for d in report)
    shard_rows = sum(sum(1 for _ in open(p)) for p in (workdir / "results" / "data" / "shards").glob("shard*.jsonl"))
    assert shard_rows == pooled, "random shards must partition the pooled training data"
    study = workdir / "results" / "study"
    corr = pd.read_csv(study / "correlation.tsv", sep="\t")
    assert set(corr["scope"]) == {"all", "math", "coding", "medicine", "physics"}
    assert (corr.loc[corr["scope"] == "all", "n"] == 10 * 4).all()  # 4 single + 6 pair models x 4 domains
    pred = pd.read_csv(study / "predictors.tsv", sep="\t").set_index("scope")
    assert pred.loc["coding", "test_validation_items"] == 3 and pred.loc["coding", "remaining_items"] == 5
    assert (pred["n_models"] == 3).all() and "On this run" in (study / "report.md").read_text()
