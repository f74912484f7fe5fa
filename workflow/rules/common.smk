"""Config validation and input functions shared by every rule file.

The config is validated against workflow/schemas/config.schema.yaml (defaults filled in) plus the
checks a schema cannot express, before any job is scheduled. GPU rules run their command with
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1: compute nodes are often offline, and the base model was fetched
into the cache by build_base_model, a local rule on the submit node. Rules receive only the config slice they
depend on through ``params``, so changing one setting reruns exactly the jobs it affects.
"""

import json
from pathlib import Path

from complementarity.config import shard_files, shard_ids, validate_config
from complementarity.errors import ConfigError
from complementarity.study import study_models

try:
    validate_config(config, base_dir=Path.cwd())
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

DOMAINS = list(config["domains"])
SPLITS = ["train", "validation", "test"]
SHARDS = shard_ids(config)
STRATEGY = config["sharding"]["strategy"]


# The study (snakemake study): single- and pair-domain models, and extra fine-tuning seeds per shard
# (the first seed is the main run's, so its shard models are reused).
STUDY = config["study"]
STUDY_MODELS = study_models(DOMAINS, STUDY["pairs"])
STUDY_SEEDS = [config["finetune"]["seed"] + i for i in range(STUDY["seeds"])]

# --- scoring groups ---------------------------------------------------------------------------------
# Each scoring job loads the base model once and scores up to scoring.group_size adapters.
SCORE_GROUPS = {}  # group id -> {adapter name: adapter folder}


def add_score_groups(prefix, adapters):
    """Split {adapter name: folder} into groups of scoring.group_size; register them, return their ids."""
    size = config["scoring"]["group_size"]
    items = list(adapters.items())
    width = len(str(max(1, -(-len(items) // size))))
    ids = []
    for n, start in enumerate(range(0, len(items), size), start=1):
        gid = f"{prefix}-{n:0{width}d}"
        SCORE_GROUPS[gid] = dict(items[start : start + size])
        ids.append(gid)
    return ids


SHARD_GROUPS = add_score_groups("shards", {s: f"results/shards/{s}" for s in SHARDS})
STUDY_GROUPS = add_score_groups(
    "study", {m: f"results/study/models/{m}" for m in STUDY_MODELS}
)
# issue 15: selection.seeds S > 1 ranks shards by the mean of S seeds; the extra seeds are the study's
# finetune_shard_seed jobs and their scoring groups (one set of jobs, whichever of the two asks more).
SELECTION_SEEDS = [
    config["finetune"]["seed"] + i for i in range(config["selection"]["seeds"])
]
SEED_GROUPS = {STUDY_SEEDS[0]: SHARD_GROUPS} | {
    seed: add_score_groups(
        f"seed{seed}", {s: f"results/study/seeds/seed{seed}/{s}" for s in SHARDS}
    )
    for seed in max(STUDY_SEEDS, SELECTION_SEEDS, key=len)[1:]
}


def selection_seed_scores():
    """Scores of the extra selection seeds (issue 15): [] with selection.seeds 1."""
    return [g for seed in SELECTION_SEEDS[1:] for g in group_scores(SEED_GROUPS[seed])]


def selection_seed_args(wildcards, input):
    """``POSITION=FILE`` pairs (position 1..S-1 of the seed) for ``complementarity gather``."""
    pairs = [
        f"{i}=results/scores/{g}.json"
        for i, seed in enumerate(SELECTION_SEEDS[1:], start=1)
        for g in SEED_GROUPS[seed]
    ]
    return "--seed-scores " + " ".join(pairs) if pairs else ""


def get_group_adapters(wildcards):
    """The adapter folders of one scoring group."""
    return list(SCORE_GROUPS[wildcards.group].values())


def group_adapter_args(wildcards, input):
    """``NAME=ADAPTER_DIR`` pairs for the score command."""
    names = SCORE_GROUPS[wildcards.group]
    return " ".join(f"{n}={p}" for n, p in zip(names, input.adapters))


def group_scores(groups):
    return expand("results/scores/{group}.json", group=groups)


wildcard_constraints:
    shard="|".join(map(re.escape, SHARDS)),
    domain="|".join(map(re.escape, DOMAINS)),
    group="|".join(map(re.escape, SCORE_GROUPS)),
    study_model="|".join(map(re.escape, STUDY_MODELS)),
    seed=r"\d+",


def as_json(value):
    """A config slice as a stable JSON string for ``params`` (compared between runs by Snakemake)."""
    return json.dumps(value, sort_keys=True)


def source_files(spec):
    """Local files named by a source spec (a hub spec names none)."""
    from complementarity.config import local_paths

    return local_paths(spec)


def get_domain_sources(wildcards):
    """Every local file any domain reads (the prepare_data job depends on all of them)."""
    return sorted(
        {
            f
            for d in config["domains"].values()
            for s in SPLITS
            for f in source_files(d.get(s))
        }
    )


def get_prepared(split):
    return expand(
        "results/data/domains/{domain}/{split}.jsonl", domain=DOMAINS, split=split
    )


def get_shard_source(wildcards):
    """The candidate file of one shard (strategy files)."""
    return shard_files(config)[wildcards.shard]


def get_pretrain_files(wildcards):
    """Pre-training text of the tiny base model: domain training data, or the shards."""
    tiny = config["base_model"]["tiny"]
    if config["base_model"]["source"] != "tiny":
        return []
    corpus = tiny["pretrain_on"]
    if corpus == "auto":
        has_train = any(d.get("train") is not None for d in config["domains"].values())
        corpus = "domains" if has_train else "shards"
    if corpus == "domains":
        return get_prepared("train")
    return expand("results/data/shards/{shard}.jsonl", shard=SHARDS)


def validation_args(wildcards, input):
    """``DOMAIN=FILE`` pairs for the score command."""
    return " ".join(f"{d}={f}" for d, f in zip(DOMAINS, input.validation))


def get_batch_divisor(wildcards, attempt):
    """Retries (snakemake --retries) halve the micro-batch each time; the effective batch is kept.

    Fine-tuning resumes from its last checkpoint, so a retry after running out of memory loses little.
    """
    return 2 ** (attempt - 1)


# --- evaluation -------------------------------------------------------------------------------------

from complementarity.config import evaluators as config_evaluators

EVAL = config["evaluation"]
TESTED = [d for d in DOMAINS if config["domains"][d].get("test") is not None]
EVALUATE = EVAL["enabled"] and bool(TESTED)
RANDOM_SEEDS = list(EVAL["random_k_seeds"])


def eval_models():
    """Models evaluated on the test sets: base, final, the baselines, optionally every shard model."""
    models = ["base", "final"]
    models += ["all_data"] if EVAL["all_data"] else []
    models += [f"random_k_seed{s}" for s in RANDOM_SEEDS]
    models += [f"shard-{s}" for s in SHARDS] if EVAL["shard_models"] else []
    return models


def adapter_dir(model):
    """The adapter folder of an evaluated model (None for the base model)."""
    if model == "base":
        return None
    if model == "final":
        return "results/final"
    if model == "all_data":
        return "results/baselines/all_data"
    if model.startswith("study-"):
        return f"results/study/models/{model.removeprefix('study-')}"
    if model.startswith("rule-"):  # issue 15: the study's selection-rule comparison
        return f"results/study/rules/{model.removeprefix('rule-')}/adapter"
    if model.startswith("random_k_seed"):
        return f"results/baselines/random_k/seed{model.removeprefix('random_k_seed')}/adapter"
    return f"results/shards/{model.removeprefix('shard-')}"


def get_eval_adapter(wildcards):
    """Named input of evaluate_model: the model's adapter ({} for the base model)."""
    path = adapter_dir(wildcards.model)
    return {"adapter": path} if path else {}


def eval_settings():
    """The evaluation settings one model's evaluation depends on (not the baseline list or CI level)."""
    keys = (
        "test_limit",
        "batch_size",
        "max_new_tokens",
        "num_fewshot",
        "mc_format",
        "sandbox_timeout",
    )
    return as_json({k: EVAL[k] for k in keys})


# issue 15: with selection.method threshold the number of selected shards is known only after the
# selection, so the random-k baselines read it from selection.json (and train on --selection).
RANDOM_K_FROM_SELECTION = config["selection"]["method"] == "threshold"


def get_random_selection_input(wildcards):
    return {"selection": "results/selection.json"} if RANDOM_K_FROM_SELECTION else {}


def get_random_shards(wildcards):
    """The k shard files of a random-k baseline: known from (seed, shard ids) when the DAG is built."""
    from complementarity.metric import random_k

    if (
        RANDOM_K_FROM_SELECTION
    ):  # issue 15: k follows from the selection; finetune picks by --selection
        return expand("results/data/shards/{shard}.jsonl", shard=SHARDS)
    chosen = random_k(SHARDS, config["selection"]["k"], int(wildcards.seed))
    return expand("results/data/shards/{shard}.jsonl", shard=chosen)


def get_adapter_dirs():
    """(model names, adapter folders) of every evaluated model but the base."""
    models = [m for m in eval_models() if m != "base"]
    return models, [adapter_dir(m) for m in models]


# --- the study ---------------------------------------------------------------------------------------


def study_eval_models():
    """Models the study evaluates: the base, every single/pair-domain model, every shard model."""
    if not TESTED:
        raise WorkflowError(
            "study: no domain has a `test` set; the study compares Complementarity with test accuracy, "
            "so add domains.<name>.test to at least one domain"
        )
    return (
        ["base"] + [f"study-{m}" for m in STUDY_MODELS] + [f"shard-{s}" for s in SHARDS]
    )


def seed_score_args(wildcards, input):
    """``SEED=FILE`` pairs: the shard scores of every fine-tuning seed."""
    return " ".join(
        f"{seed}=results/scores/{g}.json"
        for seed in STUDY_SEEDS
        for g in SEED_GROUPS[seed]
    )


# --- issue 15: selection rules compared by test accuracy (study.rules) -------------------------------
RULES = list(STUDY["rules"])


def get_rule_outputs(method):
    """(evaluation, selection) of one rule's model; the configured rule's is the main run's final model."""
    if method == config["selection"]["method"]:
        return "results/evaluation/final.json", "results/selection.json"
    return (
        f"results/evaluation/rule-{method}.json",
        f"results/study/rules/{method}/selection.json",
    )


def get_rule_args(which):
    """``RULE=FILE`` pairs for ``complementarity compare-rules`` (0: evaluations, 1: selections)."""
    return " ".join(f"{r}={get_rule_outputs(r)[which]}" for r in RULES)
