"""The study (`snakemake study`): does Complementarity predict task performance?

Reuses the main run's base model, shard models, scores and evaluations; adds fine-tunes on single
domains and on pairs of domains (equal example counts), their scores and evaluations, the shard
models' evaluations, and (study.seeds > 1) the shard fine-tunes repeated with more seeds.

REQUIRED INPUTS: prepared domain data with test sets, results/base_model/, the shard models.
OUTPUTS: results/study/data/{study_model}.jsonl, results/study/models/{study_model}/,
results/study/seeds/seed{seed}/{shard}/, results/study/{correlation,correlation_points,predictors,
predictor_draws,seed_selection}.tsv, results/study/report.md, results/study/figures/*.{png,svg}.
"""


rule study:
    """Target: the study's tables, report and figures."""
    input:
        "results/study/report.md",
        "results/study/rules.tsv" if RULES else [],  # issue 15


rule study_data:
    """Training sets of the single- and pair-domain models, all of the same size."""
    input:
        train=get_prepared("train"),
    output:
        data=expand("results/study/data/{study_model}.jsonl", study_model=STUDY_MODELS),
        manifest="results/study/data/manifest.json",
    log:
        "logs/study_data/study_data.log",
    conda:
        "../../envs/data.yaml"
    params:
        train=lambda wildcards, input: " ".join(
            f"{d}={f}" for d, f in zip(DOMAINS, input.train)
        ),
        models=as_json(STUDY_MODELS),
        examples=json.dumps(STUDY["examples_per_model"]),
        seed=STUDY["seed"],
    shell:
        "complementarity study-data"
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
        finetune=lambda wildcards: as_json(
            {**config["finetune"], "seed": int(wildcards.seed)}
        ),
        name=lambda wildcards: f"{wildcards.shard}-seed{wildcards.seed}",
        checkpoints=lambda wildcards: f"results/checkpoints/seed{wildcards.seed}/{wildcards.shard}",


rule analyze_study:
    """Correlation (Table 1), predictor comparison, seed variance: tables, report, figures."""
    input:
        base_scores="results/scores/base.json",
        study_scores=group_scores(STUDY_GROUPS),
        seed_scores=[g for seed in STUDY_SEEDS for g in group_scores(SEED_GROUPS[seed])],
        evaluations=lambda wildcards: expand(
            "results/evaluation/{model}.json", model=study_eval_models()
        ),
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
        metric=config["selection"]["metric"],
        weights=as_json(config["selection"]["weights"]),
        k=config["selection"]["k"],
        settings=as_json(STUDY),
        confidence=EVAL["confidence"],
        resamples=EVAL["bootstrap_resamples"],
        tiny="--tiny" if config["base_model"]["source"] == "tiny" else "",
    shell:
        "complementarity study"
        " --base-scores {input.base_scores:q}"
        " --study-scores {input.study_scores:q}"
        " --seed-scores {params.seed_scores}"
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


# --- issue 15: selection rules compared by test accuracy ---------------------------------------------


rule select_rule:
    """The shards one selection rule chooses from the main run's table (same k, same bootstrap)."""
    input:
        table="results/complementarity.tsv",
        bootstrap="results/scores/bootstrap.npz",
    output:
        selection="results/study/rules/{method}/selection.json",
    log:
        "logs/select_rule/{method}.log",
    wildcard_constraints:
        method="topk|coverage|threshold",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        k=config["selection"]["k"],
        metric=config["selection"]["metric"],
        threshold=config["selection"]["threshold"],
        weights=as_json(config["selection"]["weights"]),
        confidence=config["selection"]["bootstrap"]["confidence"],
    shell:
        "complementarity select"
        " --table {input.table:q}"
        " --k {params.k}"
        " --metric {params.metric}"
        " --method {wildcards.method}"
        " --threshold {params.threshold}"
        " --weights {params.weights:q}"
        " --bootstrap {input.bootstrap:q}"
        " --confidence {params.confidence}"
        " --out {output.selection:q}"
        " > {log:q} 2>&1"


rule finetune_rule:
    """Fine-tune M on the union of the shards one rule selected (as finetune_final)."""
    input:
        base="results/base_model",
        selection="results/study/rules/{method}/selection.json",
        shards=expand("results/data/shards/{shard}.jsonl", shard=SHARDS),
    output:
        adapter=directory("results/study/rules/{method}/adapter"),
    log:
        "logs/finetune_rule/{method}.log",
    benchmark:
        "benchmarks/finetune_rule/{method}.tsv"
    wildcard_constraints:
        method="topk|coverage|threshold",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=480,
        cpus_per_task=lambda wildcards, threads: threads,
        batch_divisor=get_batch_divisor,
    params:
        base_model=as_json(config["base_model"]),
        finetune=as_json(config["finetune"]),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity finetune"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --finetune {params.finetune:q}"
        " --train {input.shards:q}"
        " --selection {input.selection:q}"
        " --name rule-{wildcards.method}"
        " --checkpoint-dir results/checkpoints/rule-{wildcards.method}"
        " --batch-divisor {resources.batch_divisor}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"


rule compare_rules:
    """rules.tsv / rules.md: test accuracy of each rule's model, and its paired difference from the first."""
    input:
        evaluations=[get_rule_outputs(r)[0] for r in RULES],
        selections=[get_rule_outputs(r)[1] for r in RULES],
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
        evaluations=get_rule_args(0),
        selections=get_rule_args(1),
        confidence=EVAL["confidence"],
        resamples=EVAL["bootstrap_resamples"],
        tiny="--tiny" if config["base_model"]["source"] == "tiny" else "",
    shell:
        "complementarity compare-rules"
        " --evaluations {params.evaluations}"
        " --selections {params.selections}"
        " --confidence {params.confidence}"
        " --resamples {params.resamples}"
        " {params.tiny}"
        " --table {output.table:q}"
        " --report {output.report:q}"
        " > {log:q} 2>&1"
