"""Rule cost_table (workflow/rules/cost.smk): the cost table, with its file lists passed in-process.

A script rather than a shell command: the lists name every job's files, which beyond ~1,000 shards
exceed Linux's 128 KiB limit on one command-line argument ("Argument list too long").
"""

import json

from complementarity.cost import cost_table_job

sm = snakemake  # noqa: F821 (Snakemake defines it when it runs this script)
cost_table_job(
    sm.output.cost,
    benchmarks=list(sm.input.benchmarks),
    metrics=dict(sm.params.metrics),
    scores=dict(sm.params.scores),
    requested=json.loads(sm.params.requested),
    final_method=sm.params.final_method,
    shards_table=sm.input.shards_table,
    selection=sm.input.selection,
    log=sm.log[0],
)
