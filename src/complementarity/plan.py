"""What the workflow plans before any job runs: which models exist, their names, their folders.

The rule files build one :class:`Plan` from the validated config and ask it for their jobs'
wildcards and paths; nothing here touches data or models, so it is cheap and unit-tested.

Model names (one protocol, parsed by :func:`parse_model`, used by the report and the study):

    base                 the base model M
    final                the final model: M fine-tuned on the k selected shards (final.method retrain)
                         or their adapters merged (merge); in results/final
    final_<method>       the final model made by another method (evaluation.final_methods), in
                         results/final_<method>
    all_data             M fine-tuned on every shard (baseline)
    random_k_seed<s>     M fine-tuned on k shards drawn at random with seed s (baseline)
    shard-<id>           M_i, fine-tuned on shard <id>
    study-<id>           a study model fine-tuned on one domain or a pair (``a+b``)
    rule-<method>        the study's rule comparison: M fine-tuned on what rule <method> selected
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .config import evaluators, local_paths, shard_files, shard_ids
from .errors import ConfigError
from .selection import random_k
from .settings import EvaluationSettings, FinetuneSettings, ScoringSettings

SPLITS = ("train", "validation", "test")
PAIR_SEP = "+"  # joins the two domains of a pair model's id

# --- model names ------------------------------------------------------------------------------------

BASE, FINAL, ALL_DATA = "base", "final", "all_data"
SHARD_PREFIX, STUDY_PREFIX, RANDOM_PREFIX, RULE_PREFIX = "shard-", "study-", "random_k_seed", "rule-"
FINAL_PREFIX = "final_"
FINAL_METHODS = ("retrain", "merge")  # config final.method

# Each kind of model name as a regular expression (Snakemake wildcard constraints).
KIND_PATTERNS = {
    "base": BASE,
    "final": FINAL,
    "final_method": FINAL_PREFIX + "(?:" + "|".join(FINAL_METHODS) + ")",
    "all_data": ALL_DATA,
    "random_k": RANDOM_PREFIX + r"\d+",
    "shard": SHARD_PREFIX + ".+",
    "study": STUDY_PREFIX + ".+",
    "rule": RULE_PREFIX + ".+",
}
# Kinds evaluated in groups of evaluation.group_size models per job (one process: one import), with
# the prefix of their group ids. A kind's models become ready together: the random-k fine-tunes run
# side by side, as do the shard, study and rule fine-tunes. base (ready at once), final, final_<method>
# and all_data (each ready on its own) are one job each.
EVAL_GROUPED = {"random_k": "random_k", "shard": "shards", "study": "study", "rule": "rules"}


class ModelName(NamedTuple):
    kind: str  # base | final | final_method | all_data | random_k | shard | study | rule
    id: str | None  # the shard id, study model id, seed (as text), final method or rule; None for the others


def shard_model(shard: str) -> str:
    return SHARD_PREFIX + shard


def study_model(model: str) -> str:
    return STUDY_PREFIX + model


def random_model(seed: int) -> str:
    return f"{RANDOM_PREFIX}{seed}"


def final_model(method: str) -> str:
    """The name of the final model made by ``method`` when it is not final.method's (``final_merge``)."""
    return FINAL_PREFIX + method


def rule_model(method: str) -> str:
    return RULE_PREFIX + method


def parse_model(name: str) -> ModelName:
    """The kind and id of a model name (see the module docstring); unknown names are an error."""
    if name in (BASE, FINAL, ALL_DATA):
        return ModelName(name, None)
    if name.startswith(FINAL_PREFIX) and name.removeprefix(FINAL_PREFIX) in FINAL_METHODS:
        return ModelName("final_method", name.removeprefix(FINAL_PREFIX))
    prefixes = ((SHARD_PREFIX, "shard"), (STUDY_PREFIX, "study"), (RANDOM_PREFIX, "random_k"), (RULE_PREFIX, "rule"))
    for prefix, kind in prefixes:
        if name.startswith(prefix) and name != prefix:
            ident = name.removeprefix(prefix)
            if kind == "random_k" and not ident.isdigit():
                break
            return ModelName(kind, ident)
    raise ValueError(
        f"unknown model name {name!r}; expected base, final, final_<{'|'.join(FINAL_METHODS)}>, all_data, "
        "random_k_seed<seed>, shard-<id>, study-<id> or rule-<method>"
    )


def is_kind(name: str, kind: str) -> bool:
    """Whether ``name`` parses as a model of ``kind`` (False for names outside the protocol)."""
    try:
        return parse_model(name).kind == kind
    except ValueError:
        return False


def study_models(domains: list[str], pairs: bool = True) -> dict[str, list[str]]:
    """{model id: domains it is trained on}: each single domain, then each pair (ids like ``a+b``)."""
    models = {d: [d] for d in domains}
    if pairs:
        models |= {f"{a}{PAIR_SEP}{b}": [a, b] for a, b in itertools.combinations(domains, 2)}
    return models


def score_groups(prefix: str, adapters: dict[str, str], size: int) -> dict[str, dict[str, str]]:
    """Split {adapter name: folder} into scoring groups of at most ``size``: {group id: {name: folder}}.

    Ids are ``<prefix>-<n>``, zero-padded to the width of the last n, so they sort in order.
    """
    items = list(adapters.items())
    width = len(str(max(1, -(-len(items) // size))))
    return {
        f"{prefix}-{n:0{width}d}": dict(items[start : start + size])
        for n, start in enumerate(range(0, len(items), size), start=1)
    }


# --- the plan ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything the rule files need to know about the jobs of one validated config."""

    config: dict[str, Any]
    domains: list[str] = field(init=False)
    shards: list[str] = field(init=False)
    tested: list[str] = field(init=False)  # domains with a test set, in config order
    study_models: dict[str, list[str]] = field(init=False)
    study_seeds: list[int] = field(init=False)  # the first is the main run's seed
    selection_seeds: list[int] = field(init=False)  # selection.seeds: seeds ranked by their mean
    groups: dict[str, dict[str, str]] = field(init=False)  # every scoring group: {group: {name: folder}}
    shard_groups: list[str] = field(init=False)
    study_groups: list[str] = field(init=False)
    seed_groups: dict[int, list[str]] = field(init=False)
    random_draws: dict[int, list[str]] = field(init=False)  # random-k baseline: seed -> shards, drawn once
    final_method: str = field(init=False)  # config final.method: the model in results/final
    rules: list[str] = field(init=False)  # study.rules: selection rules compared by test accuracy
    # evaluation groups: {group: {model: adapter folder}} (none with evaluation.group_size 1)
    eval_groups: dict[str, dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self.domains = list(cfg["domains"])
        self.shards = shard_ids(cfg)
        self.tested = [d for d in self.domains if cfg["domains"][d].get("test") is not None]
        self.study_models = study_models(self.domains, cfg["study"]["pairs"])
        first = cfg["finetune"]["seed"]
        self.study_seeds = [first + i for i in range(cfg["study"]["seeds"])]
        self.selection_seeds = [first + i for i in range(cfg["selection"]["seeds"])]
        size = cfg["scoring"]["group_size"]
        self.groups = {}

        def add(prefix: str, adapters: dict[str, str]) -> list[str]:
            new = score_groups(prefix, adapters, size)
            self.groups |= new
            return list(new)

        self.shard_groups = add("shards", {s: adapter_dir(shard_model(s)) for s in self.shards})
        self.study_groups = add("study", {m: adapter_dir(study_model(m)) for m in self.study_models})
        # One set of extra-seed fine-tunes and scoring groups (the study's finetune_shard_seed jobs)
        # serves both the study's seed analysis and selection.seeds: whichever asks for more seeds.
        self.seed_groups = {first: self.shard_groups} | {
            seed: add(f"seed{seed}", {s: seed_adapter_dir(seed, s) for s in self.shards})
            for seed in max(self.study_seeds, self.selection_seeds, key=len)[1:]
        }
        self.final_method = cfg["final"]["method"]
        k = cfg["selection"]["k"]
        seeds = cfg["evaluation"]["random_k_seeds"]
        # With selection.method threshold, k is known only after the selection: the random-k jobs
        # draw then (select_random --k-from), and train on every shard file filtered by their selection.
        self.random_draws = {} if self.random_k_from_selection else {s: random_k(self.shards, k, s) for s in seeds}
        self.rules = list(cfg["study"]["rules"])
        self.eval_groups = {}
        if cfg["evaluation"]["group_size"] > 1:
            for kind, prefix in EVAL_GROUPED.items():
                models = {m: adapter_dir(m) for m in self._groupable_models(kind)}
                self.eval_groups |= score_groups(prefix, models, cfg["evaluation"]["group_size"])
        self._eval_group_of = {m: g for g, models in self.eval_groups.items() for m in models}

    @property
    def random_k_from_selection(self) -> bool:
        """Whether the random-k baselines take k from selection.json (rule threshold: k follows from the data)."""
        return self.config["selection"]["method"] == "threshold"

    def selection_seed_groups(self) -> list[tuple[int, str]]:
        """(position 1..S-1, scoring group) of the extra selection.seeds, for ``selection gather``."""
        return [(i, g) for i, seed in enumerate(self.selection_seeds[1:], start=1) for g in self.seed_groups[seed]]

    def rule_outputs(self, method: str) -> tuple[str, str]:
        """(evaluation, selection) of one compared rule; the configured rule's are the main run's final model's."""
        if method == self.config["selection"]["method"]:
            return "results/evaluation/final.json", "results/selection.json"
        return f"results/evaluation/{rule_model(method)}.json", rule_selection(method)

    # --- settings passed to jobs (only the keys their results depend on)
    def finetune_params(self, **overrides: Any) -> str:
        return FinetuneSettings.from_config(self.config, **overrides).result_json()

    def finetune_runtime(self) -> FinetuneSettings:
        return FinetuneSettings.from_config(self.config)

    def scoring_params(self) -> ScoringSettings:
        return ScoringSettings.from_config(self.config)

    def evaluation_params(self) -> str:
        return EvaluationSettings.from_config(self.config).result_json()

    # --- data
    def domain_sources(self) -> list[str]:
        """Every local file any domain reads."""
        specs = (d.get(s) for d in self.config["domains"].values() for s in SPLITS)
        return sorted({f for spec in specs for f in local_paths(spec)})

    def shard_source(self, shard: str) -> str:
        """The candidate file of one shard (strategy files)."""
        return shard_files(self.config)[shard]

    def pretrain_corpus(self) -> str | None:
        """What the tiny base model pre-trains on: "domains", "shards", or None (not a tiny model)."""
        if self.config["base_model"]["source"] != "tiny":
            return None
        corpus = self.config["base_model"]["tiny"]["pretrain_on"]
        if corpus == "auto":
            has_train = any(d.get("train") is not None for d in self.config["domains"].values())
            corpus = "domains" if has_train else "shards"
        return corpus

    def evaluators(self) -> dict[str, str]:
        """Evaluator of each tested domain."""
        return {d: e for d, e in evaluators(self.config).items() if d in self.tested}

    @property
    def evaluate(self) -> bool:
        return self.config["evaluation"]["enabled"] and bool(self.tested)

    # --- the final model
    def final_methods(self) -> list[str]:
        """The methods whose final model is built: final.method, then (with evaluation on) the others
        evaluation.final_methods asks for."""
        asked = self.config["evaluation"]["final_methods"] if self.evaluate else []
        return [self.final_method] + [m for m in asked if m != self.final_method]

    def final_dir(self, method: str) -> str:
        """The adapter folder of the final model made by ``method``: results/final for final.method's,
        results/final_<method> for another."""
        if method not in FINAL_METHODS:
            raise ValueError(f"unknown final method {method!r}; expected one of {', '.join(FINAL_METHODS)}")
        return adapter_dir(FINAL) if method == self.final_method else adapter_dir(final_model(method))

    def final_name(self, method: str) -> str:
        """The model name of the final model made by ``method``: final, or final_<method> for another."""
        return FINAL if method == self.final_method else final_model(method)

    # --- cost accounting
    def cost_jobs(self) -> dict[str, str | None]:
        """{rule/job: adapter folder, scores file or None} of every compute job of the run (cost_table);
        each job's benchmark file is benchmarks/<rule>/<job>.tsv."""
        from .cost import cost_jobs

        ev = self.config["evaluation"]
        baselines: dict[str, str | None] = {}
        if self.evaluate and ev["all_data"]:
            baselines["finetune_all_data/finetune_all_data"] = adapter_dir(ALL_DATA)
        if self.evaluate:
            baselines |= {f"finetune_random/seed{s}": adapter_dir(random_model(s)) for s in ev["random_k_seeds"]}
        return cost_jobs(
            shards=self.shards,
            shard_groups=self.shard_groups,
            final_dirs={m: self.final_dir(m) for m in self.final_methods()},
            baselines=baselines,
            eval_jobs=self.eval_jobs(self.eval_models()) if self.evaluate else [],
        )

    def cost_rules(self) -> list[str]:
        """The rules of the cost table's jobs (whose requested resources it reports)."""
        return list(dict.fromkeys(job.split("/")[0] for job in self.cost_jobs()))

    def cost_files(self, kind: str) -> dict[str, str]:
        """{RULE/JOB: FILE} the cost table reads: ``metrics`` (the adapters' metrics.json) or ``scores``."""
        from .cost import cost_files

        return cost_files(self.cost_jobs(), kind)

    # --- evaluation
    def eval_models(self) -> list[str]:
        """Models evaluated on the test sets: base, final (and final_<method> for the other final methods
        asked for), the baselines, optionally every shard model."""
        ev = self.config["evaluation"]
        models = [BASE, FINAL] + [final_model(m) for m in self.final_methods()[1:]]
        models += [ALL_DATA] if ev["all_data"] else []
        models += [random_model(s) for s in ev["random_k_seeds"]]
        models += [shard_model(s) for s in self.shards] if ev["shard_models"] else []
        return models

    def adapter_models(self) -> list[str]:
        """Every evaluated model but the base (the ones with an adapter)."""
        return [m for m in self.eval_models() if m != BASE]

    def study_eval_models(self) -> list[str]:
        """Models the study evaluates: the base, every single/pair-domain model, every shard model."""
        if not self.tested:
            raise ConfigError(
                "study: no domain has a `test` set; the study compares Complementarity with test accuracy, "
                "so add domains.<name>.test to at least one domain"
            )
        return [BASE] + [study_model(m) for m in self.study_models] + [shard_model(s) for s in self.shards]

    def _groupable_models(self, kind: str) -> list[str]:
        """Every model of ``kind`` that any target may evaluate, in a fixed order (so a model's group does
        not depend on the target that asks for it)."""
        if kind == "random_k":
            return [random_model(s) for s in self.config["evaluation"]["random_k_seeds"]]
        if kind == "shard":
            return [shard_model(s) for s in self.shards]
        if kind == "study":
            return [study_model(m) for m in self.study_models]
        return [rule_model(m) for m in self.rules if m != self.config["selection"]["method"]]

    def eval_group(self, model: str) -> str | None:
        """The evaluation group that evaluates ``model``; None when it has a job of its own."""
        return self._eval_group_of.get(model)

    def eval_pattern(self, grouped: bool) -> str:
        """Regular expression of the model names evaluated in groups (``grouped``) or alone: the
        wildcard constraint that gives each results/evaluation/{model}.json one rule."""
        kinds = [k for k in KIND_PATTERNS if (k in EVAL_GROUPED and bool(self.eval_groups)) == grouped]
        return "|".join(KIND_PATTERNS[k] for k in kinds) or "(?!)"  # (?!) matches nothing

    def eval_jobs(self, models: list[str]) -> list[str]:
        """``rule/job`` of the jobs that evaluate ``models``: evaluate_model/<model> for a model
        evaluated alone, evaluate_group/<group> (once) for a group's."""
        jobs = [f"evaluate_group/{g}" if (g := self.eval_group(m)) else f"evaluate_model/{m}" for m in models]
        return list(dict.fromkeys(jobs))


def adapter_dir(model: str) -> str | None:
    """The adapter folder of a model (None for the base model)."""
    name = parse_model(model)
    return {
        "base": None,
        "final": "results/final",
        "final_method": f"results/final_{name.id}",
        "all_data": "results/baselines/all_data",
        "random_k": f"results/baselines/random_k/seed{name.id}/adapter",
        "shard": f"results/shards/{name.id}",
        "study": f"results/study/models/{name.id}",
        "rule": f"results/study/rules/{name.id}/adapter",
    }[name.kind]


def requested_resources(declared: dict[str, dict[str, Any]], minutes: dict[str, int]) -> dict[str, dict[str, int]]:
    """{rule: {gpu, runtime, mem_mb}} of the cost table: each rule's declared integer resources, and
    ``minutes`` for a rule whose runtime is a function of its wildcards (the fine-tunes)."""
    from .cost import requested

    out = requested(declared)
    for rule, runtime in minutes.items():
        if rule in out and "runtime" not in out[rule]:
            out[rule]["runtime"] = runtime
    return out


def finetune_minutes(wildcard_names) -> int:
    """Runtime asked for a fine-tune: one shard or one study set 4 h; a union of shards (final, all
    data, random k) 8 h."""
    return 240 if {"shard", "study_model"} & set(wildcard_names) else 480


def seed_adapter_dir(seed: int, shard: str) -> str:
    """The adapter of shard ``shard`` fine-tuned with an extra seed (study.seeds, selection.seeds)."""
    return f"results/study/seeds/seed{seed}/{shard}"


def rule_selection(method: str) -> str:
    """selection.json of one rule in the study's comparison (study.rules)."""
    return f"results/study/rules/{method}/selection.json"
