"""The study (`snakemake study`): does Complementarity predict task performance?

Reuses the main run's base model, shard models, scores and evaluations; adds fine-tunes on single
domains and on pairs of domains (equal example counts), their scores and evaluations, the shard
models' evaluations, and (study.seeds > 1) the shard fine-tunes repeated with more seeds.

REQUIRED INPUTS: prepared domain data with test sets, results/base_model/, the shard models, the main
run's results/complementarity.tsv and results/selection.json (the first seed's, reused).
OUTPUTS: results/study/data/{study_model}.jsonl, results/study/models/{study_model}/,
results/study/seeds/seed{seed}/{shard}/, results/study/{correlation,correlation_points,predictors,
predictor_draws,seed_selection}.tsv, results/study/report.md, results/study/figures/*.{png,svg};
study.rules: results/study/rules/{method}/{selection.json,adapter/}, results/study/rules.{tsv,md}.
"""


rule study:
    """Target: the study's tables, report and figures."""
    input:
        "results/study/report.md",
        "results/study/rules.tsv" if PLAN.rules else [],


rule study_data:
    """Training sets of the single- and pair-domain models, all of the same size."""
    input:
        train=get_prepared("train"),
    output:
        data=expand(
            "results/study/data/{study_model}.jsonl", study_model=PLAN.study_models
        ),
        manifest="results/study/data/manifest.json",
    log:
        "logs/study_data/study_data.log",
    conda:
        "../../envs/data.yaml"
    params:
        train=lambda wildcards, input: pairs(DOMAINS, input.train),
        models=as_json(PLAN.study_models),
        examples=json.dumps(STUDY["examples_per_model"]),
        seed=STUDY["seed"],
    shell:
        "complementarity study data"
        " --train {params.train}"
        " --models {params.models:q}"
        " --seed {params.seed}"
        " --examples {params.examples}"
        " --out-dir results/study/data"
        " > {log:q} 2>&1"


use rule finetune_shard as finetune_study with:
    input:
        base="results/base_model",
        train="results/study/data/{study_model}.jsonl",
    output:
        adapter=directory("results/study/models/{study_model}"),
    log:
        "logs/finetune_study/{study_model}.log",
    benchmark:
        "benchmarks/finetune_study/{study_model}.tsv"
    params:
        name=lambda wildcards: f"study-{wildcards.study_model}",
        checkpoints=lambda wildcards: f"results/checkpoints/study-{wildcards.study_model}",


use rule finetune_shard as finetune_shard_seed with:
    output:
        adapter=directory("results/study/seeds/seed{seed}/{shard}"),
    log:
        "logs/finetune_shard_seed/seed{seed}/{shard}.log",
    benchmark:
        "benchmarks/finetune_shard_seed/seed{seed}/{shard}.tsv"
    params:
        finetune=lambda wildcards: PLAN.finetune_params(seed=int(wildcards.seed)),
        name=lambda wildcards: f"{wildcards.shard}-seed{wildcards.seed}",
        checkpoints=lambda wildcards: f"results/checkpoints/seed{wildcards.seed}/{wildcards.shard}",


rule analyze_study:
    """Correlation (Table 1), predictor comparison, seed variance: tables, report, figures."""
    input:
        base_scores="results/scores/base.json",
        study_scores=group_scores(PLAN.study_groups),
        table="results/complementarity.tsv",
        selection="results/selection.json",
        # selection.seeds > 1: the table is a seed mean; the main seed's own scores
        main_scores=(
            group_scores(PLAN.shard_groups) if len(PLAN.selection_seeds) > 1 else []
        ),
        seed_scores=[
            g
            for seed in PLAN.study_seeds[1:]
            for g in group_scores(PLAN.seed_groups[seed])
        ],
        evaluations=get_study_evaluations,
        manifest="results/study/data/manifest.json",
    output:
        report=report(
            "results/study/report.md",
            caption="../report/study.rst",
            category="Study",
        ),
        correlation=report(
            "results/study/correlation.tsv",
            caption="../report/study_correlation.rst",
            category="Study",
        ),
        points="results/study/correlation_points.tsv",
        predictors=report(
            "results/study/predictors.tsv",
            caption="../report/study_predictors.rst",
            category="Study",
        ),
        draws="results/study/predictor_draws.tsv",
        seeds=report(
            "results/study/seed_selection.tsv",
            caption="../report/study_seeds.rst",
            category="Study",
        ),
        seed_summary="results/study/seed_selection.json",
        correlation_figure=report(
            "results/study/figures/correlation.png",
            caption="../report/study_correlation.rst",
            category="Study",
        ),
        predictors_figure=report(
            "results/study/figures/predictors.png",
            caption="../report/study_predictors.rst",
            category="Study",
        ),
        seeds_figure=report(
            "results/study/figures/seed_selection.png",
            caption="../report/study_seeds.rst",
            category="Study",
        ),
    log:
        "logs/analyze_study/analyze_study.log",
    benchmark:
        "benchmarks/analyze_study/analyze_study.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        seed_scores=seed_score_args,
        main_scores=lambda wildcards, input: (
            f"--main-scores {' '.join(input.main_scores)}" if input.main_scores else ""
        ),
        metric=config["selection"]["metric"],
        weights=as_json(config["selection"]["weights"]),
        k=config["selection"]["k"],
        main_seed=config["finetune"]["seed"],
        settings=as_json(STUDY),
        confidence=EVAL["confidence"],
        resamples=EVAL["bootstrap_resamples"],
        tiny="--tiny" if config["base_model"]["source"] == "tiny" else "",
    shell:
        "complementarity study analyze"
        " --base-scores {input.base_scores:q}"
        " --study-scores {input.study_scores:q}"
        " --table {input.table:q}"
        " --selection {input.selection:q}"
        " --main-seed {params.main_seed}"
        " {params.seed_scores}"
        " {params.main_scores}"
        " --evaluations {input.evaluations:q}"
        " --study-manifest {input.manifest:q}"
        " --metric {params.metric}"
        " --weights {params.weights:q}"
        " --k {params.k}"
        " --settings {params.settings:q}"
        " --confidence {params.confidence}"
        " --resamples {params.resamples}"
        " {params.tiny}"
        " --out-dir results/study"
        " > {log:q} 2>&1"


# --- selection rules compared by test accuracy (study.rules) -----------------------------------------


# The shards one selection rule chooses from the main run's table (same k, same bootstrap): the
# command of select_topk with the rule from the wildcard.
use rule select_topk as select_rule with:
    output:
        selection="results/study/rules/{method}/selection.json",
    log:
        "logs/select_rule/{method}.log",
    params:
        k=config["selection"]["k"],
        metric=config["selection"]["metric"],
        method=lambda wildcards: wildcards.method,
        threshold=config["selection"]["threshold"],
        weights=as_json(config["selection"]["weights"]),
        confidence=config["selection"]["bootstrap"]["confidence"],


# Fine-tune M on the union of the shards one rule selected (as finetune_final).
use rule finetune_final as finetune_rule with:
    input:
        base="results/base_model",
        selection="results/study/rules/{method}/selection.json",
        train=get_shard_files(),
    output:
        adapter=directory("results/study/rules/{method}/adapter"),
    log:
        "logs/finetune_rule/{method}.log",
    benchmark:
        "benchmarks/finetune_rule/{method}.tsv"
    params:
        name=lambda wildcards: f"rule-{wildcards.method}",
        checkpoints=lambda wildcards: f"results/checkpoints/rule-{wildcards.method}",


rule compare_rules:
    """rules.tsv / rules.md: test accuracy of each rule's model, and its paired difference from the first."""
    input:
        evaluations=[PLAN.rule_outputs(r)[0] for r in PLAN.rules],
        selections=[PLAN.rule_outputs(r)[1] for r in PLAN.rules],
    output:
        table=report(
            "results/study/rules.tsv",
            caption="../report/study_rules.rst",
            category="Study",
        ),
        report="results/study/rules.md",
    log:
        "logs/compare_rules/compare_rules.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        evaluations=rule_args(0),
        selections=rule_args(1),
        confidence=EVAL["confidence"],
        resamples=EVAL["bootstrap_resamples"],
        tiny="--tiny" if config["base_model"]["source"] == "tiny" else "",
    shell:
        "complementarity study rules"
        " --evaluations {params.evaluations}"
        " --selections {params.selections}"
        " --confidence {params.confidence}"
        " --resamples {params.resamples}"
        " {params.tiny}"
        " --table {output.table:q}"
        " --report {output.report:q}"
        " > {log:q} 2>&1"
