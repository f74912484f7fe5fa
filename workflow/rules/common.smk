"""Config validation, the plan, and the input functions shared by every rule file.

The config is validated against workflow/schemas/config.schema.yaml (defaults filled in) plus the
checks a schema cannot express, before any job is scheduled. What the workflow plans (scoring
groups, model names, adapter folders, the random-k draws, the study's models) is
``complementarity.plan.Plan``, unit-tested in tests/test_plan.py; this file only adapts it to
Snakemake. GPU rules run their command with HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1: compute nodes
are often offline, and the base model was fetched into the cache by build_base_model, a local rule
on the submit node. Rules receive only the settings their results depend on through ``params``
(``complementarity.settings``), so changing one setting reruns exactly the jobs it affects.
"""

import json
import shlex
from pathlib import Path

from complementarity.config import ConfigError, check_workdir, validate_config
from complementarity.plan import (
    Plan,
    adapter_dir,
    finetune_minutes,
    requested_resources,
)

# announce: print which config this run uses, and the keys a --configfile left to schema defaults
# unlike the embedded default's (a --configfile replaces config/config.yaml, it is not merged).
try:
    validate_config(
        config,
        base_dir=Path.cwd(),
        announce=list(workflow.overwrite_configfiles or []),
    )
    if not workflow.dryrun:
        # results/, logs/, benchmarks/: a read-only or full disk is named, with the fix
        check_workdir(Path.cwd())
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

PLAN = Plan(config)
DOMAINS = PLAN.domains
SPLITS = ["train", "validation", "test"]
SHARDS = PLAN.shards
STRATEGY = config["sharding"]["strategy"]
TESTED = PLAN.tested
EVALUATE = PLAN.evaluate
EVAL = config["evaluation"]
STUDY = config["study"]


wildcard_constraints:
    shard="|".join(map(re.escape, SHARDS)),
    domain="|".join(map(re.escape, DOMAINS)),
    group="|".join(map(re.escape, PLAN.groups)),
    study_model="|".join(map(re.escape, PLAN.study_models)),
    seed=r"\d+",
    method="|".join(map(re.escape, PLAN.rules)),
    eval_group="|".join(map(re.escape, PLAN.eval_groups)) or "(?!)",


def as_json(value):
    """A config slice as a stable JSON string for ``params`` (compared between runs by Snakemake)."""
    return json.dumps(value, sort_keys=True)


def pairs(names, files):
    """``NAME=FILE`` arguments, one per name."""
    return " ".join(f"{n}={f}" for n, f in zip(names, files))


# --- data -------------------------------------------------------------------------------------------


def get_domain_sources(wildcards):
    """Every local file any domain reads (the prepare_data job depends on all of them)."""
    return PLAN.domain_sources()


def get_prepared(split, domains=None):
    return expand(
        "results/data/domains/{domain}/{split}.jsonl",
        domain=DOMAINS if domains is None else domains,
        split=split,
    )


def get_shard_files(shards=None):
    return expand(
        "results/data/shards/{shard}.jsonl", shard=SHARDS if shards is None else shards
    )


def get_shard_source(wildcards):
    """The candidate file of one shard (strategy files)."""
    return PLAN.shard_source(wildcards.shard)


def get_pretrain_files(wildcards):
    """Pre-training text of the tiny base model: domain training data, or the shards."""
    corpus = PLAN.pretrain_corpus()
    if corpus is None:
        return []
    return get_prepared("train") if corpus == "domains" else get_shard_files()


# --- fine-tuning ------------------------------------------------------------------------------------

FINETUNE_RUNTIME = (
    PLAN.finetune_runtime()
)  # checkpointing: how jobs run, not what they learn


def get_finetune_minutes(wildcards):
    """One shard or one study set: 4 h; a union of shards (final, all data, random k): 8 h."""
    return finetune_minutes(wildcards.keys())


def selection_arg(wildcards, input):
    """``--selection FILE`` for a fine-tune on selected shards, nothing otherwise."""
    if "selection" not in input.keys():
        return ""
    return f"--selection {shlex.quote(input.selection)}"


def get_random_shards(wildcards):
    """The k shard files of a random-k baseline (the plan drew them once, when the DAG was built).

    With selection.method threshold (k from the selection): every shard file; the job's --selection
    picks the drawn ones.
    """
    if PLAN.random_k_from_selection:
        return get_shard_files()
    return get_shard_files(PLAN.random_draws[int(wildcards.seed)])


def get_random_selection_input(wildcards):
    """select_random's input: selection.json when k follows from it (rule threshold), else nothing."""
    return (
        {"selection": "results/selection.json"} if PLAN.random_k_from_selection else {}
    )


# --- scoring ----------------------------------------------------------------------------------------


def get_group_adapters(wildcards):
    """The adapter folders of one scoring group."""
    return list(PLAN.groups[wildcards.group].values())


def group_adapter_args(wildcards, input):
    """``--adapter NAME=ADAPTER_DIR ...`` for the scoring command."""
    return f"--adapter {pairs(PLAN.groups[wildcards.group], input.adapters)}"


def group_scores(groups):
    return expand("results/scores/{group}.json", group=groups)


def selection_seed_scores():
    """Scores of the extra selection.seeds' shard models ([] with selection.seeds 1)."""
    return group_scores([g for _, g in PLAN.selection_seed_groups()])


def selection_seed_args(wildcards, input):
    """``--seed-scores POSITION=FILE ...`` for ``selection gather`` (nothing with selection.seeds 1)."""
    groups = PLAN.selection_seed_groups()
    files = [(i, f"results/scores/{g}.json") for i, g in groups]
    return f"--seed-scores {pairs(*zip(*files))}" if files else ""


def validation_args(wildcards, input):
    """``DOMAIN=FILE`` pairs for the scoring command."""
    return pairs(DOMAINS, input.validation)


# --- evaluation -------------------------------------------------------------------------------------


def get_eval_adapter(wildcards):
    """Named input of evaluate_model: the model's adapter ({} for the base model)."""
    path = adapter_dir(wildcards.model)
    return {"adapter": path} if path else {}


def evaluation_output(grouped):
    """results/evaluation/{model}.json for the models evaluated alone (evaluate_model) or in groups
    (copy_evaluation): the model wildcard constrained so that each file has one rule."""
    return f"results/evaluation/{{model,{PLAN.eval_pattern(grouped)}}}.json"


def get_eval_group_adapters(wildcards):
    """The adapter folders of one evaluation group."""
    return list(PLAN.eval_groups[wildcards.eval_group].values())


def eval_group_args(wildcards, input):
    """``NAME=ADAPTER_DIR ...`` of an evaluation group, for ``--models``."""
    return pairs(PLAN.eval_groups[wildcards.eval_group], input.adapters)


def get_eval_group_dir(wildcards):
    """The folder of the evaluation group that evaluates a grouped model."""
    return f"results/evaluation/groups/{PLAN.eval_group(wildcards.model)}"


def get_study_evaluations(wildcards):
    try:
        models = PLAN.study_eval_models()
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None
    return expand("results/evaluation/{model}.json", model=models)


def seed_score_args(wildcards, input):
    """``--seed-scores SEED=FILE ...``: the shard scores of every fine-tuning seed after the first."""
    files = [
        (seed, f"results/scores/{g}.json")
        for seed in PLAN.study_seeds[1:]
        for g in PLAN.seed_groups[seed]
    ]
    return f"--seed-scores {pairs(*zip(*files))}" if files else ""


# --- cost -------------------------------------------------------------------------------------------


def get_requested_resources(wildcards):
    """{rule: {gpu, runtime, mem_mb}} the cost table's jobs ask for (profile set-resources applied)."""
    declared, minutes = {}, {}
    for name in PLAN.cost_rules():
        declared_rule = getattr(rules, name).rule
        # Snakemake 9 wraps each value in a Resource; .raw is the declared value (a function stays one).
        declared[name] = {
            k: getattr(v, "raw", v) for k, v in dict(declared_rule.resources).items()
        }
        minutes[name] = finetune_minutes(declared_rule.wildcard_names)
    return as_json(requested_resources(declared, minutes))


def rule_args(which):
    """``RULE=FILE`` pairs for ``study rules`` (0: evaluations, 1: selections)."""
    return " ".join(f"{r}={PLAN.rule_outputs(r)[which]}" for r in PLAN.rules)
