"""Unit tests of what the workflow plans (complementarity.plan) and of the typed settings."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import MISSING, fields

import pytest
from conftest import REPO

from complementarity.config import defaults, load_config, load_schema
from complementarity.errors import UserError
from complementarity.plan import (
    Plan,
    adapter_dir,
    final_model,
    finetune_minutes,
    is_kind,
    parse_model,
    random_model,
    requested_resources,
    rule_model,
    score_groups,
    shard_model,
    study_model,
)
from complementarity.selection import random_k
from complementarity.settings import SETTINGS, EvaluationSettings, FinetuneSettings


@pytest.fixture(scope="module")
def cfg():
    return load_config(REPO / "config" / "config.yaml", REPO)


def plan_of(cfg, edit=None) -> Plan:
    cfg = copy.deepcopy(cfg)
    if edit:
        edit(cfg)
    return Plan(cfg)


# --- model names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "ident"),
    [
        ("base", "base", None),
        ("final", "final", None),
        ("all_data", "all_data", None),
        ("random_k_seed12", "random_k", "12"),
        ("shard-cand01", "shard", "cand01"),
        ("shard-shard-1", "shard", "shard-1"),
        ("study-arithmetic+sort", "study", "arithmetic+sort"),
        ("final_merge", "final_method", "merge"),
        ("final_retrain", "final_method", "retrain"),
        ("rule-coverage", "rule", "coverage"),
    ],
)
def test_model_names_parse_back_to_kind_and_id(name, kind, ident):
    assert parse_model(name) == (kind, ident)


@pytest.mark.parametrize(
    "name", ["", "shard-", "random_k_seedx", "random_k_seed", "finale", "study-", "final_", "final_ties", "rule-"]
)
def test_unknown_model_names_are_an_error_naming_the_protocol(name):
    with pytest.raises(ValueError, match="random_k_seed<seed>, shard-<id>, study-<id> or rule-<method>"):
        parse_model(name)
    assert not is_kind(name, "shard")


def test_name_builders_and_parser_agree():
    assert parse_model(shard_model("a.b")) == ("shard", "a.b")
    assert parse_model(study_model("x+y")) == ("study", "x+y")
    assert parse_model(random_model(3)) == ("random_k", "3")
    assert parse_model(final_model("merge")) == ("final_method", "merge")
    assert parse_model(rule_model("threshold")) == ("rule", "threshold")


def test_adapter_folders_follow_the_results_layout():
    assert adapter_dir("base") is None
    assert adapter_dir("final") == "results/final"
    assert adapter_dir("final_merge") == "results/final_merge"
    assert adapter_dir("all_data") == "results/baselines/all_data"
    assert adapter_dir("random_k_seed2") == "results/baselines/random_k/seed2/adapter"
    assert adapter_dir("shard-cand07") == "results/shards/cand07"
    assert adapter_dir("study-a+b") == "results/study/models/a+b"
    assert adapter_dir("rule-coverage") == "results/study/rules/coverage/adapter"


# --- scoring groups ---------------------------------------------------------------------------------


def test_score_groups_cut_in_order_with_sortable_ids():
    adapters = {f"s{i}": f"d{i}" for i in range(12)}
    groups = score_groups("shards", adapters, 5)
    assert list(groups) == ["shards-1", "shards-2", "shards-3"]
    assert [len(g) for g in groups.values()] == [5, 5, 2]
    assert {k: v for g in groups.values() for k, v in g.items()} == adapters
    assert list(score_groups("p", {f"s{i}": "" for i in range(10)}, 1))[:2] == ["p-01", "p-02"]


def test_plan_of_the_default_config(cfg):
    plan = Plan(copy.deepcopy(cfg))
    assert plan.shards == [f"cand{i:02d}" for i in range(1, 11)]
    assert plan.shard_groups == ["shards-1", "shards-2"]
    assert plan.groups["shards-2"] == {s: f"results/shards/{s}" for s in plan.shards[5:]}
    assert len(plan.study_models) == 4 + 6 and plan.study_groups == ["study-1", "study-2"]
    assert plan.seed_groups == {0: ["shards-1", "shards-2"]}  # the first seed's models are the main run's
    assert plan.eval_models() == ["base", "final", "all_data", *(f"random_k_seed{s}" for s in range(1, 7))]
    assert plan.adapter_models() == plan.eval_models()[1:]
    assert plan.evaluate and plan.tested == ["after", "count", "maximum", "minimum"]
    assert plan.pretrain_corpus() == "domains"
    assert len(plan.study_eval_models()) == 1 + 10 + 10


def test_random_draws_are_made_once_and_match_random_k(cfg):
    plan = Plan(copy.deepcopy(cfg))
    assert plan.random_draws == {s: random_k(plan.shards, 2, s) for s in range(1, 7)}
    assert all(len(set(d)) == 2 and set(d) <= set(plan.shards) for d in plan.random_draws.values())


def test_more_study_seeds_add_their_own_groups(cfg):
    def edit(c):
        c["study"]["seeds"] = 3
        c["finetune"]["seed"] = 5

    plan = plan_of(cfg, edit)
    assert plan.study_seeds == [5, 6, 7]
    assert plan.seed_groups[5] == plan.shard_groups and plan.seed_groups[7] == ["seed7-1", "seed7-2"]
    assert plan.groups["seed6-1"]["cand01"] == "results/study/seeds/seed6/cand01"


def test_selection_seeds_share_the_study_seed_groups(cfg):
    """selection.seeds and study.seeds plan one set of extra-seed jobs: the longer of the two lists."""
    plan = plan_of(cfg, lambda c: c["selection"].update(seeds=2))
    assert plan.selection_seeds == [0, 1] and plan.study_seeds == [0]
    assert list(plan.seed_groups) == [0, 1] and plan.seed_groups[1] == ["seed1-1", "seed1-2"]
    assert plan.selection_seed_groups() == [(1, "seed1-1"), (1, "seed1-2")]
    both = plan_of(cfg, lambda c: (c["selection"].update(seeds=2), c["study"].update(seeds=3)))
    assert list(both.seed_groups) == [0, 1, 2]  # the study's 3 seeds include the selection's 2
    assert both.selection_seed_groups() == [(1, "seed1-1"), (1, "seed1-2")]
    assert [g for g in both.groups if g.startswith("seed")] == ["seed1-1", "seed1-2", "seed2-1", "seed2-2"]
    assert Plan(copy.deepcopy(cfg)).selection_seed_groups() == []


def test_threshold_rule_leaves_the_random_k_draw_to_the_job(cfg):
    plan = plan_of(cfg, lambda c: c["selection"].update(method="threshold"))
    assert plan.random_k_from_selection and plan.random_draws == {}
    assert not plan_of(cfg, lambda c: c["selection"].update(method="coverage")).random_k_from_selection


def test_compared_rules_reuse_the_main_runs_final_model(cfg):
    plan = Plan(copy.deepcopy(cfg))
    assert plan.rules == ["topk", "coverage"]
    assert plan.rule_outputs("topk") == ("results/evaluation/final.json", "results/selection.json")
    assert plan.rule_outputs("coverage") == (
        "results/evaluation/rule-coverage.json",
        "results/study/rules/coverage/selection.json",
    )
    cov = plan_of(cfg, lambda c: c["selection"].update(method="coverage"))
    assert cov.rule_outputs("coverage")[0] == "results/evaluation/final.json"
    assert cov.rule_outputs("topk")[0] == "results/evaluation/rule-topk.json"


def test_shard_models_are_evaluated_when_asked(cfg):
    plan = plan_of(cfg, lambda c: c["evaluation"].update(shard_models=True, all_data=False, random_k_seeds=[]))
    assert plan.eval_models() == ["base", "final"] + [f"shard-cand{i:02d}" for i in range(1, 11)]


# --- the final model and the cost table -----------------------------------------------------------


def test_the_default_final_model_is_retrained_into_results_final(cfg):
    plan = Plan(copy.deepcopy(cfg))
    assert plan.final_method == "retrain" and plan.final_methods() == ["retrain"]
    assert plan.final_dir("retrain") == "results/final" and plan.final_name("retrain") == "final"
    # The rule for the other method exists (its output must not clash with results/final).
    assert plan.final_dir("merge") == "results/final_merge" and plan.final_name("merge") == "final_merge"
    with pytest.raises(ValueError, match="retrain, merge"):
        plan.final_dir("ties")


def test_merge_as_the_final_method_moves_the_retrained_model_aside(cfg):
    def edit(c):
        c["final"]["method"] = "merge"
        c["evaluation"]["final_methods"] = ["retrain", "merge"]

    plan = plan_of(cfg, edit)
    assert plan.final_methods() == ["merge", "retrain"]
    assert plan.final_dir("merge") == "results/final" and plan.final_dir("retrain") == "results/final_retrain"
    assert plan.final_name("retrain") == "final_retrain"
    assert plan.eval_models()[:3] == ["base", "final", "final_retrain"]
    assert [adapter_dir(m) for m in plan.adapter_models()[:2]] == ["results/final", "results/final_retrain"]


def test_other_final_methods_are_built_only_with_evaluation_on(cfg):
    def edit(c):
        c["evaluation"]["final_methods"] = ["merge"]
        c["evaluation"]["enabled"] = False

    assert plan_of(cfg, edit).final_methods() == ["retrain"]
    on = plan_of(cfg, lambda c: c["evaluation"].update(final_methods=["merge", "retrain"]))
    assert on.final_methods() == ["retrain", "merge"]
    assert "final_merge" in on.eval_models() and "final_retrain" not in on.eval_models()


def test_cost_jobs_of_the_default_name_every_compute_job_and_its_output(cfg):
    plan = Plan(copy.deepcopy(cfg))
    jobs = plan.cost_jobs()
    assert jobs["build_base_model/build_base_model"] is None
    assert [j for j in jobs if j.startswith("finetune_shard/")] == [f"finetune_shard/{s}" for s in plan.shards]
    assert jobs["score_group/shards-2"] == "results/scores/shards-2.json"
    assert jobs["finetune_final/finetune_final"] == "results/final" and "merge_final/merge_final" not in jobs
    assert jobs["finetune_all_data/finetune_all_data"] == "results/baselines/all_data"
    assert jobs["finetune_random/seed3"] == "results/baselines/random_k/seed3/adapter"
    # base, final and all_data alone; the 6 random-k baselines in two groups (evaluation.group_size 3)
    evaluations = [j for j in jobs if j.startswith("evaluate_")]
    alone = [f"evaluate_model/{m}" for m in ("base", "final", "all_data")]
    assert evaluations == [*alone, "evaluate_group/random_k-1", "evaluate_group/random_k-2"]
    assert plan.cost_rules()[:3] == ["build_base_model", "finetune_shard", "score_base"]
    assert plan.cost_files("metrics")["finetune_final/finetune_final"] == "results/final/metrics.json"
    assert plan.cost_files("scores")["score_base/score_base"] == "results/scores/base.json"


def test_cost_jobs_with_both_final_methods_and_without_evaluation(cfg):
    both = plan_of(cfg, lambda c: c["evaluation"].update(final_methods=["merge"]))
    assert both.cost_jobs()["merge_final/merge_final"] == "results/final_merge"
    assert "evaluate_model/final_merge" in both.cost_jobs()
    off = plan_of(cfg, lambda c: c["evaluation"].update(enabled=False))
    assert not [
        j for j in off.cost_jobs() if j.split("/")[0] in ("evaluate_model", "evaluate_group", "finetune_all_data")
    ]


# --- evaluation groups ------------------------------------------------------------------------------


def test_evaluation_groups_hold_models_that_are_ready_together(cfg):
    plan = Plan(copy.deepcopy(cfg))
    # random-k baselines, shard models, study models, the rule models (coverage; topk is `final`), 3 per group
    seeds = (4, 5, 6)
    assert plan.eval_groups["random_k-2"] == {
        f"random_k_seed{s}": f"results/baselines/random_k/seed{s}/adapter" for s in seeds
    }
    assert list(plan.eval_groups) == [
        "random_k-1", "random_k-2", "shards-1", "shards-2", "shards-3", "shards-4", "study-1", "study-2", "study-3",
        "study-4", "rules-1",
    ]  # fmt: skip
    assert plan.eval_groups["shards-4"] == {"shard-cand10": "results/shards/cand10"}
    assert plan.eval_groups["rules-1"] == {"rule-coverage": "results/study/rules/coverage/adapter"}
    first_study = f"study-{next(iter(plan.study_models))}"
    assert [plan.eval_group(m) for m in ("base", "final", "all_data", "random_k_seed2", first_study)] == [
        None, None, None, "random_k-1", "study-1",
    ]  # fmt: skip
    # Every evaluated model is matched by exactly one of the two rules' patterns.
    models = plan.eval_models() + plan.study_eval_models() + ["rule-coverage", "final_merge"]
    alone, grouped = (re.compile(plan.eval_pattern(grouped=g)) for g in (False, True))
    for m in models:
        assert bool(alone.fullmatch(m)) != bool(grouped.fullmatch(m)), m
        assert bool(grouped.fullmatch(m)) == (plan.eval_group(m) is not None), m
    # group_size 1: no groups, every model has a job of its own.
    one = plan_of(cfg, lambda c: c["evaluation"].update(group_size=1))
    assert one.eval_groups == {} and all(re.fullmatch(one.eval_pattern(grouped=False), m) for m in models)
    assert one.eval_jobs(one.eval_models()) == [f"evaluate_model/{m}" for m in one.eval_models()]


def test_requested_resources_keep_integers_and_fill_in_fine_tune_minutes():
    declared = {
        "finetune_shard": {"gpu": 1, "mem_mb": 32000, "runtime": print, "cpus_per_task": print},
        "finetune_final": {"gpu": 1, "mem_mb": 32000, "runtime": print},
        "score_base": {"gpu": 1, "mem_mb": 16000, "runtime": 60},
    }
    minutes = {
        "finetune_shard": finetune_minutes({"shard"}),
        "finetune_final": finetune_minutes(set()),
        "score_base": 1,
    }
    assert requested_resources(declared, minutes) == {
        "finetune_shard": {"gpu": 1, "runtime": 240, "mem_mb": 32000},
        "finetune_final": {"gpu": 1, "runtime": 480, "mem_mb": 32000},
        "score_base": {"gpu": 1, "runtime": 60, "mem_mb": 16000},  # a declared runtime wins
    }


def test_study_without_test_sets_names_the_fix(cfg):
    def drop(c):
        for spec in c["domains"].values():
            spec["test"] = None

    plan = plan_of(cfg, drop)
    assert not plan.evaluate
    with pytest.raises(UserError, match=re.escape("add domains.<name>.test")):
        plan.study_eval_models()


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", SETTINGS)
def test_settings_classes_have_exactly_the_schema_keys(cls):
    schema_keys = set(load_schema()["properties"][cls.SECTION]["properties"])
    assert {f.name for f in fields(cls)} == schema_keys
    assert set(cls.RUNTIME) < schema_keys
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(cls)), "defaults: schema only"


def test_finetune_result_keys_leave_out_only_checkpointing_and_logging(cfg):
    ft = FinetuneSettings.from_config(cfg)
    assert set(ft.result()) == set(defaults("finetune")) - {"checkpoint_every", "keep_checkpoints", "report_to"}
    same = FinetuneSettings.from_config(cfg, checkpoint_every=1, keep_checkpoints=True, report_to="tensorboard")
    assert same.result_json() == ft.result_json()
    assert FinetuneSettings.from_config(cfg, learning_rate=1.0).result_json() != ft.result_json()
    assert json.loads(FinetuneSettings.from_config(cfg, seed=9).result_json())["seed"] == 9


def test_evaluation_result_keys_are_what_one_evaluation_reads(cfg):
    keys = EvaluationSettings.result_keys()
    assert keys == [
        "test_limit",
        "batch_size",
        "max_new_tokens",
        "num_fewshot",
        "mc_format",
        "sandbox_timeout",
        "layout",
    ]


def test_the_evaluation_layout_reruns_evaluations_and_the_confidence_level_does_not(cfg):
    params = plan_of(cfg).evaluation_params()
    assert json.loads(params)["layout"] == "project"
    harness = plan_of(cfg, lambda c: c["evaluation"].update(layout="harness")).evaluation_params()
    assert json.loads(harness)["layout"] == "harness" and harness != params
    assert plan_of(cfg, lambda c: c["evaluation"].update(confidence=0.9)).evaluation_params() == params


def test_incomplete_settings_name_the_missing_and_unknown_keys():
    values = {**defaults("finetune"), "lora_rank": 8}
    del values["lora_r"]
    with pytest.raises(UserError, match=r"missing key\(s\) \['lora_r'\], unknown key\(s\) \['lora_rank'\]"):
        FinetuneSettings.from_dict(values)
