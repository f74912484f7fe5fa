"""Cost: jobs, wall/CPU time, tokens trained and scored, peak memory and GPU-hours requested, per stage.

REQUIRED INPUTS: the benchmark files of every compute job of the run (benchmarks/<rule>/<job>.tsv;
the jobs are plan.Plan.cost_jobs), the adapters' metrics.json, the scoring outputs,
results/data/shards/checked.tsv, results/selection.json.
OUTPUTS: results/cost.tsv (in the default target; the report's cost table).
"""

COST_JOBS = PLAN.cost_jobs()


rule cost_table:
    """Jobs, wall/CPU time, tokens trained and scored, peak memory and GPU-hours requested, per stage."""
    input:
        benchmarks=[f"benchmarks/{job}.tsv" for job in COST_JOBS],
        outputs=[p for p in COST_JOBS.values() if p],
        shards_table="results/data/shards/checked.tsv",
        selection="results/selection.json",
    output:
        cost=report("results/cost.tsv", caption="../report/cost.rst", category="Cost"),
    log:
        "logs/cost_table/cost_table.log",
    conda:
        "../../envs/data.yaml"
    params:
        metrics=PLAN.cost_args("metrics"),
        scores=PLAN.cost_args("scores"),
        requested=get_requested_resources,
        final_method=PLAN.final_method,
    shell:
        "complementarity cost"
        " --benchmarks {input.benchmarks:q}"
        " --metrics {params.metrics}"
        " --scores {params.scores}"
        " --requested {params.requested:q}"
        " --final-method {params.final_method}"
        " --shards-table {input.shards_table:q}"
        " --selection {input.selection:q}"
        " --out {output.cost:q}"
        " > {log:q} 2>&1"
