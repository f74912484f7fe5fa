"""The study (`snakemake study`): does Complementarity predict task performance?

Reuses the main run's base model, shard models, scores and evaluations; adds fine-tunes on single
domains and on pairs of domains (equal example counts), their scores and evaluations, the shard
models' evaluations, and (study.seeds > 1) the shard fine-tunes repeated with more seeds.

REQUIRED INPUTS: prepared domain data with test sets, results/base_model/, the shard models, the main
run's results/complementarity.tsv and results/selection.json (the first seed's, reused).
OUTPUTS: results/study/data/{study_model}.jsonl, results/study/models/{study_model}/,
results/study/seeds/seed{seed}/{shard}/, results/study/{correlation,correlation_points,predictors,
predictor_draws,seed_selection}.tsv, results/study/report.md, results/study/figures/*.{png,svg}.
"""


rule study:
    """Target: the study's tables, report and figures."""
    input:
        "results/study/report.md",


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
