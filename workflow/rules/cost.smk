"""Cost: jobs, wall/CPU time, tokens trained and scored, peak memory and GPU-hours requested, per stage.

REQUIRED INPUTS: the benchmark files of every compute job of the run (benchmarks/<rule>/<job>.tsv;
the jobs are plan.Plan.cost_jobs), the adapters' metrics.json, the scoring outputs,
results/data/shards/checked.tsv, results/selection.json.
OUTPUTS: results/cost.tsv (in the default target; the report's cost table).
"""

COST_JOBS = PLAN.cost_jobs()


rule cost_table:
    """Jobs, wall/CPU time, tokens trained and scored, peak memory and GPU-hours requested, per stage.

    A script, not a shell command: its arguments name every job's files, which beyond ~1,000 shards
    exceed Linux's 128 KiB limit on one command-line argument."""
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
        metrics=PLAN.cost_files("metrics"),
        scores=PLAN.cost_files("scores"),
        requested=get_requested_resources,
        final_method=PLAN.final_method,
    script:
        "../scripts/cost_table.py"
