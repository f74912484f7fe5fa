"""Report: the results table (score, n, Wilson CI, training fraction), report.md and the figures.

REQUIRED INPUTS: results/evaluation/{model}.json of every evaluated model, their adapters'
metrics.json, results/complementarity.tsv, results/selection.json, results/data/shards/checked.tsv,
results/cost.tsv.
OUTPUTS: results/evaluation.tsv, results/report.md, results/figures/*.png.
"""

ADAPTER_MODELS = PLAN.adapter_models()  # every evaluated model but the base


rule report:
    """evaluation.tsv (score, n, Wilson CI, training fraction per model and domain), report.md, figures."""
    input:
        evaluations=expand("results/evaluation/{model}.json", model=PLAN.eval_models()),
        adapters=[adapter_dir(m) for m in ADAPTER_MODELS],
        complementarity="results/complementarity.tsv",
        selection="results/selection.json",
        shards_table="results/data/shards/checked.tsv",
        cost="results/cost.tsv",
    output:
        table=report(
            "results/evaluation.tsv",
            caption="../report/evaluation.rst",
            category="Evaluation",
        ),
        report="results/report.md",
        heatmap=report(
            "results/figures/complementarity_heatmap.png",
            caption="../report/heatmap.rst",
            category="Figures",
        ),
        accuracy=report(
            "results/figures/accuracy.png",
            caption="../report/accuracy.rst",
            category="Figures",
        ),
    log:
        "logs/report/report.log",
    conda:
        "../../envs/data.yaml"
    params:
        metrics=lambda wildcards, input: pairs(
            ADAPTER_MODELS, [f"{p}/metrics.json" for p in input.adapters]
        ),
        final_method=PLAN.final_method,
        confidence=EVAL["confidence"],
        resamples=EVAL["bootstrap_resamples"],
        tiny="--tiny" if config["base_model"]["source"] == "tiny" else "",
        untested=" ".join(d for d in DOMAINS if d not in TESTED),
    shell:
        "complementarity report"
        " --evaluations {input.evaluations:q}"
        " --adapter-metrics {params.metrics}"
        " --shards-table {input.shards_table:q}"
        " --complementarity {input.complementarity:q}"
        " --selection {input.selection:q}"
        " --cost {input.cost:q}"
        " --final-method {params.final_method}"
        " --confidence {params.confidence}"
        " --resamples {params.resamples}"
        " {params.tiny}"
        " --untested {params.untested}"
        " --table {output.table:q}"
        " --report {output.report:q}"
        " --figures results/figures"
        " > {log:q} 2>&1"
