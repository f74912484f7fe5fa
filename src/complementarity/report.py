"""The results table, the Table-3 analogue in Markdown, and the figures.

Models: ``base`` (no fine-tuning), ``final`` (the Complementarity selection), ``all_data`` (every
shard), ``random_k_seed<s>`` (k random shards), ``shard-<id>`` (one shard, optional); the names are
:mod:`.plan`'s protocol.

CLI: ``complementarity report`` (rule report in workflow/rules/report.smk).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .plan import is_kind, parse_model
from .provenance import read_json
from .stats import paired_bootstrap, stratified_paired_bootstrap, wilson

TINY_NOTE = [
    "> **Embedded tiny model.** Synthetic tasks and a model of about a million parameters trained for",
    "> seconds: the numbers show what the method does on these tasks, not what it would do for an LLM",
    "> (see RESULTS.md for a real pretrained model).",
    "",
]
"""The banner of every report made on the embedded tiny model (``base_model.source: tiny``)."""

MEAN = "mean over domains"
"""The ``domain`` of the comparisons of the mean over domains (each domain weighs the same)."""

LABELS = {
    "base": "base model",
    "final": "selected (Complementarity)",
    "all_data": "all data",
    "random_k": "random k",
    # evaluation.final_methods: the final model made by the other method, beside final.method's
    "final_retrain": "selected, retrained",
    "final_merge": "selected, adapters merged",
}


def load_evaluations(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """{model: {domain: result}} from the evaluation JSON files (model = file stem)."""
    return {Path(p).stem: read_json(p, "domains")["domains"] for p in paths}


def evaluation_table(evals: dict[str, dict[str, Any]], train_records: dict[str, int], total: int, confidence: float):
    """One row per (model, domain): score, n, Wilson CI, the fraction of training data used."""
    import pandas as pd

    rows = []
    for model, domains in evals.items():
        for domain, r in domains.items():
            low, high = wilson(r["correct"], r["n"], confidence)
            row = {
                "model": model,
                "domain": domain,
                "evaluator": r["evaluator"],
                "score": r["score"],
                "correct": r["correct"],
                "n": r["n"],
                "ci_low": low,
                "ci_high": high,
                "train_records": train_records.get(model, 0),
                "train_fraction": train_records.get(model, 0) / total if total else 0.0,
            }
            if "strict" in r:
                row["strict_score"] = r["strict"]["score"]
            rows.append(row)
    return pd.DataFrame(rows)


def _correct_vector(result: dict[str, Any]) -> list[float]:
    return [float(item["correct"]) for item in result["per_item"]]


def comparisons(evals: dict[str, dict[str, Any]], *, confidence: float, resamples: int) -> list[dict[str, Any]]:
    """Paired bootstrap of the selected model against random-k (mean over seeds), all-data and base."""
    out = []
    random_models = sorted(m for m in evals if is_kind(m, "random_k"))
    for domain in evals.get("final", {}):
        final = _correct_vector(evals["final"][domain])
        against: dict[str, list[float]] = {}
        if random_models:
            vectors = [_correct_vector(evals[m][domain]) for m in random_models]
            against["random_k"] = [sum(col) / len(col) for col in zip(*vectors, strict=True)]
        for other in (*sorted(m for m in evals if is_kind(m, "final_method")), "all_data", "base"):
            if other in evals:
                against[other] = _correct_vector(evals[other][domain])
        for other, vec in against.items():
            b = paired_bootstrap(final, vec, resamples=resamples, confidence=confidence)
            out.append({"domain": domain, "against": other, **b, "_pairs": (final, vec)})
    # The mean over domains: every domain weighs the same, items are resampled within their domain.
    domains = list(evals.get("final", {}))
    for other in dict.fromkeys(c["against"] for c in out):
        pairs = [c["_pairs"] for c in out if c["against"] == other]
        if len(domains) > 1 and len(pairs) == len(domains):
            b = stratified_paired_bootstrap(pairs, resamples=resamples, confidence=confidence)
            out.append({"domain": MEAN, "against": other, **b})
    # Each random-k draw on its own (mean over domains): the interval above resamples test items for a
    # fixed set of draws; how many draws the selection beats shows the spread over draws.
    if len(random_models) > 1 and domains:
        for m in random_models:
            pairs = [(_correct_vector(evals["final"][d]), _correct_vector(evals[m][d])) for d in domains]
            b = stratified_paired_bootstrap(pairs, resamples=resamples, confidence=confidence)
            out.append({"domain": MEAN if len(domains) > 1 else domains[0], "against": m, **b})
    for c in out:
        c.pop("_pairs", None)
    return out


def _label(model: str) -> str:
    """A model's name in the report: LABELS, or ``random k, seed <s>`` for one random-k draw."""
    if model in LABELS:
        return LABELS[model]
    return f"random k, seed {model.removeprefix('random_k_seed')}" if is_kind(model, "random_k") else model


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def markdown_report(
    table,
    comps: list[dict[str, Any]],
    complementarity,
    selection: dict[str, Any],
    *,
    confidence: float,
    tiny: bool,
    untested: list[str],
    final_method: str = "retrain",
    cost: str | Path | None = None,
) -> str:
    """The Markdown report: selection, the accuracy table with CIs, what the comparisons say, the cost."""
    level = f"{round(100 * confidence)}%"
    lines = ["# Complementarity selection: results", ""]
    if tiny:
        lines += TINY_NOTE
    lines += [
        f"Final model (`final.method: {final_method}`): "
        + (
            "fine-tuned on the union of the selected shards."
            if final_method == "retrain"
            else "the selected shards' LoRA adapters merged, no training (see results/final/metrics.json)."
        ),
        "",
    ]
    lines += selection_lines(complementarity, selection)

    models = list(dict.fromkeys(table["model"]))
    random_models = [m for m in models if is_kind(m, "random_k")]
    finals = sorted(m for m in models if is_kind(m, "final_method"))
    shown = [m for m in ("base", "final", *finals, "all_data") if m in models]
    n_first = 2 + len(finals)  # the columns before random k
    domains = list(dict.fromkeys(table["domain"]))
    lines += ["", f"## Test accuracy (%), {level} Wilson interval in brackets", ""]
    header = ["domain", "n"] + [LABELS[m] for m in shown[:n_first]]
    if random_models:
        header.append(f"random k (mean ± sd of {len(random_models)} seeds)")
    header += [LABELS[m] for m in shown[n_first:]]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    by = table.set_index(["model", "domain"])
    for d in domains:
        n = int(by.loc[(shown[0], d), "n"]) if shown else 0
        cells = [d, str(n)]

        def cell(m: str, d: str = d) -> str:
            r = by.loc[(m, d)]
            return f"{_pct(r['score'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]"

        cells += [cell(m) for m in shown[:n_first]]
        if random_models:
            scores = [float(by.loc[(m, d), "score"]) for m in random_models]
            mean = sum(scores) / len(scores)
            sd = (sum((s - mean) ** 2 for s in scores) / max(1, len(scores) - 1)) ** 0.5
            cells.append(f"{_pct(mean)} ± {_pct(sd)}")
        cells += [cell(m) for m in shown[n_first:]]
        lines.append("| " + " | ".join(cells) + " |")
    if len(domains) > 1 and shown:
        # The mean of the per-domain accuracies (every domain weighs the same); its interval is in the comparisons.
        def mean_score(m: str) -> float:
            return sum(float(by.loc[(m, d), "score"]) for d in domains) / len(domains)

        cells = [f"**{MEAN}**", str(sum(int(by.loc[(shown[0], d), "n"]) for d in domains))]
        cells += [_pct(mean_score(m)) for m in shown[:n_first]]
        if random_models:
            means = [mean_score(m) for m in random_models]
            mu = sum(means) / len(means)
            sd = (sum((x - mu) ** 2 for x in means) / max(1, len(means) - 1)) ** 0.5
            cells.append(f"{_pct(mu)} ± {_pct(sd)}")
        cells += [_pct(mean_score(m)) for m in shown[n_first:]]
        lines.append("| " + " | ".join(cells) + " |")
    fractions = {m: float(table[table["model"] == m]["train_fraction"].iloc[0]) for m in models}
    lines += [
        "",
        "Training data used: "
        + ", ".join(
            f"{LABELS.get(m, m)} {_pct(f)}%"
            for m, f in fractions.items()
            if not is_kind(m, "shard") and not is_kind(m, "random_k")
        ),
    ]
    if random_models:
        lines[-1] += f", random k {_pct(fractions[random_models[0]])}%"
    if untested:
        lines += ["", f"Not evaluated (no test data): {', '.join(untested)}."]

    if comps:
        lines += ["", f"## Is the selected model better? (paired bootstrap over test items, {level} CI)", ""]
        lines += ["| domain | against | difference (points) | CI | P(selected better) |", "|---|---|---|---|---|"]
        for c in comps:
            lines.append(
                f"| {c['domain']} | {_label(c['against'])} | {100 * c['diff']:+.1f} | "
                f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}] | "
                + ("–" if math.isnan(c["p_better"]) else f"{c['p_better']:.2f}")
                + " |"
            )
        lines += ["", f"## In short (better or worse: the {level} interval of the difference excludes 0)", ""]
        for other in ("random_k", *finals, "all_data"):
            rows = [c for c in comps if c["against"] == other and c["domain"] != MEAN]
            if not rows:
                continue
            better = [c["domain"] for c in rows if c["low"] > 0]
            worse = [c["domain"] for c in rows if c["high"] < 0]
            unclear = [c["domain"] for c in rows if c["low"] <= 0 <= c["high"]]
            text = f"- Against **{LABELS[other]}**: better on {len(better)} of {len(rows)} domains"
            text += f" ({', '.join(better)})" if better else ""
            text += f", worse on {len(worse)}" + (f" ({', '.join(worse)})" if worse else "")
            text += f", no clear difference on {len(unclear)}" + (f" ({', '.join(unclear)})" if unclear else "")
            text += "."
            for c in comps:
                if c["against"] == other and c["domain"] == MEAN:
                    verdict = "better" if c["low"] > 0 else "worse" if c["high"] < 0 else "no clear difference"
                    text += (
                        f" On the {MEAN}: {100 * c['diff']:+.1f} points "
                        f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}], {verdict}."
                    )
            lines.append(text)
        draws = [c for c in comps if is_kind(c["against"], "random_k")]
        if draws:
            n = len(draws)
            better = sum(c["low"] > 0 for c in draws)
            worse = sum(c["high"] < 0 for c in draws)
            lines.append(
                f"- Against **each random-k draw** on the {draws[0]['domain']}: better than {better} of {n}, "
                f"worse than {worse}, no clear difference from {n - better - worse} "
                "(differences " + ", ".join(f"{100 * c['diff']:+.1f}" for c in draws) + " points)."
            )
    if cost is not None:
        from .cost import markdown_cost

        lines += ["", "## Cost of each stage", ""]
        lines += markdown_cost(cost)
        lines += [
            "",
            "Wall and CPU seconds are summed over a stage's jobs (Snakemake benchmark files); trainer seconds are",
            "the training loops' own; peak memory is the largest job's. GPU-hours are what the jobs *requested*",
            "(`resources: gpu` x `runtime` of each rule, as a SLURM job asks for them), not what they used.",
        ]
    return "\n".join(lines) + "\n"


def figure_writer(out_dir: str | Path):
    """(pyplot, ``save(fig, name)`` writing ``name``.png and .svg into ``out_dir``, the list of paths written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name: str) -> None:
        for ext in ("png", "svg"):
            path = out / f"{name}.{ext}"
            fig.savefig(path, dpi=150, bbox_inches="tight")
            written.append(path)
        plt.close(fig)

    return plt, save, written


UNSURE = (0.2, 0.8)  # P(top-k) in this range: the shard's place in or out of the top k is a coin flip


def selection_lines(complementarity, selection: dict[str, Any]) -> list[str]:
    """The report's selection section: which rule chose what, the table with intervals and P(top-k),
    and whether the top k is separated from the rest (issue 15)."""
    from .tables import score_columns

    method = selection.get("method", "topk")
    unc = selection.get("uncertainty")
    rule = {"topk": "top-k", "coverage": "coverage (greedy, every domain served)", "threshold": "threshold"}[method]
    how = f"rule **{rule}**" + (f" (lower bound > {selection['threshold']:g})" if method == "threshold" else "")
    lines = [
        f"Selected shards by {how}, {selection['k']} shard(s), metric `{selection['metric']}`: "
        + ", ".join(f"**{s}**" for s in selection["selected"]),
        "",
    ]
    cols = score_columns(complementarity)
    has_ci = unc is not None and "mean_ci_low" in complementarity
    if has_ci:
        level = f"{round(100 * unc['confidence'])}%"
        k = len(unc["topk"])
        seeds = f" and {unc['seeds']} fine-tuning seeds" if unc["seeds"] > 1 else ""
        verdict = (
            f"**The top {k} is separated from the rest**: the same {k} shards are the top {k} in "
            f"{unc['p_same_topk']:.0%} of {unc['resamples']} bootstrap resamples of the validation examples{seeds}."
            if unc["separated"]
            else f"**The top {k} is NOT separated from the rest**: the same {k} shards are the top {k} in only "
            f"{unc['p_same_topk']:.0%} of {unc['resamples']} bootstrap resamples of the validation examples{seeds} "
            f"(separated means at least {level}). Within the noise of the validation sets, the ranking does not "
            "decide between "
            + (", ".join(unc["unsure"]) if unc["unsure"] else "the shards near the cut")
            + "; more validation examples, or `selection.seeds` > 1, would."
        )
        lines += [verdict, ""]
        if method != "topk":
            lines += [
                f"This rule picks the same set in {unc['p_same_selection']:.1%} of the resamples.",
                "",
            ]
    lines += ["## Complementarity (validation)", ""]
    if has_ci:
        lines += [
            f"Mean over domains with its {level} bootstrap interval; P(top-k): share of resamples in which the "
            f"shard is among the {k} best; ⚠ marks 0.2 ≤ P(top-k) ≤ 0.8.",
            "",
        ]
    header = ["shard", *cols] + (["interval", "P(top-k)"] if has_ci else [])
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for _, row in complementarity.iterrows():
        mark = " ✔" if row["shard"] in selection["selected"] else ""
        cells = [f"{row[c]:+.4f}" for c in cols]
        if has_ci:
            unsure = " ⚠" if UNSURE[0] <= row["p_topk"] <= UNSURE[1] else ""
            cells += [f"[{row['mean_ci_low']:+.4f}, {row['mean_ci_high']:+.4f}]", f"{row['p_topk']:.2f}{unsure}"]
        lines.append(f"| {row['shard']}{mark} | " + " | ".join(cells) + " |")
    return lines


def figures(table, complementarity, selection: dict[str, Any], out_dir: str | Path, *, confidence: float) -> list[Path]:
    """Heatmap of the Complementarity matrix, accuracy bars with CIs, and (with shard models) the scatter."""
    import numpy as np

    plt, save, written = figure_writer(out_dir)

    # 1. Complementarity heatmap: shards x domains (+ mean), selected shards marked.
    from .tables import score_columns

    domains = score_columns(complementarity)  # the domains and the mean (not the interval columns)
    values = complementarity[domains].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * len(domains) + 2.5, 0.45 * len(complementarity) + 1.5))
    vmax = np.nanmax(np.abs(values)) or 1.0
    im = ax.imshow(values, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(domains)), domains, rotation=30, ha="right")
    labels = [f"★ {s}" if s in selection["selected"] else s for s in complementarity["shard"]]
    if "p_topk" in complementarity:  # issue 15: in or out of the top k by a coin flip
        labels = [
            f"{lab} (? P={p:.2f})" if UNSURE[0] <= p <= UNSURE[1] else lab
            for lab, p in zip(labels, complementarity["p_topk"], strict=True)
        ]
    ax.set_yticks(range(len(labels)), labels)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:+.3f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label=f"Complementarity ({selection['metric']})")
    unsure = " ? = 0.2 ≤ P(top-k) ≤ 0.8" if "p_topk" in complementarity else ""
    ax.set_title(f"Complementarity of each shard model (★ = selected, k={selection['k']}){unsure}", fontsize=9)
    save(fig, "complementarity_heatmap")

    # 2. Accuracy per domain with CI error bars, every model (shard models left out for legibility).
    models = [m for m in dict.fromkeys(table["model"]) if not is_kind(m, "shard")]
    doms = list(dict.fromkeys(table["domain"]))
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(doms) * max(1, len(models)) / 3), 4))
    by = table.set_index(["model", "domain"])
    for i, m in enumerate(models):
        s = np.array([by.loc[(m, d), "score"] for d in doms]) * 100
        lo = np.array([by.loc[(m, d), "ci_low"] for d in doms]) * 100
        hi = np.array([by.loc[(m, d), "ci_high"] for d in doms]) * 100
        x = np.arange(len(doms)) + (i - (len(models) - 1) / 2) * width
        ax.bar(
            x,
            s,
            width,
            label=LABELS.get(m) or (f"random k, seed {parse_model(m).id}" if is_kind(m, "random_k") else m),
            yerr=[s - lo, hi - s],
            capsize=2,
        )
    ax.set_xticks(range(len(doms)), doms)
    ax.set_ylabel(f"test accuracy (%), {round(100 * confidence)}% Wilson CI")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Test accuracy per domain")
    save(fig, "accuracy")

    # 3. Scatter: each shard model's mean Complementarity against its mean test accuracy.
    shard_models = [m for m in dict.fromkeys(table["model"]) if is_kind(m, "shard")]
    if shard_models:
        mean_c = dict(zip(complementarity["shard"], complementarity["mean"], strict=True))
        xs = [mean_c[parse_model(m).id] for m in shard_models]
        ys = [100 * table[table["model"] == m]["score"].mean() for m in shard_models]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(xs, ys)
        for m, x, y in zip(shard_models, xs, ys, strict=True):
            ax.annotate(parse_model(m).id, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("mean Complementarity (validation)")
        ax.set_ylabel("mean test accuracy over domains (%)")
        ax.set_title("Shard models: Complementarity vs accuracy")
        save(fig, "complementarity_vs_accuracy")
    return written


# --- CLI: complementarity report --------------------------------------------------------------------


def register_arguments(parser) -> None:
    from .arguments import pair

    parser.add_argument("--evaluations", nargs="+", required=True, help="evaluation JSON files (model = file stem)")
    parser.add_argument("--adapter-metrics", type=pair, nargs="*", help="MODEL=metrics.json (training records used)")
    parser.add_argument("--shards-table", required=True, help="checked.tsv (records per shard)")
    parser.add_argument("--complementarity", required=True, help="complementarity.tsv")
    parser.add_argument("--selection", required=True, help="selection.json")
    parser.add_argument("--confidence", type=float, required=True, help="config evaluation.confidence")
    parser.add_argument("--resamples", type=int, required=True, help="config evaluation.bootstrap_resamples")
    parser.add_argument("--cost", help="cost.tsv: add the cost table to the report")
    parser.add_argument(
        "--final-method", choices=["retrain", "merge"], required=True, help="config final.method (named in the report)"
    )
    parser.add_argument("--tiny", action="store_true", help="say in the report that the model is the embedded tiny one")
    parser.add_argument("--untested", nargs="*", help="domains without test data")
    parser.add_argument("--table", required=True, help="output evaluation.tsv")
    parser.add_argument("--report", required=True, help="output report.md")
    parser.add_argument("--figures", required=True, help="output folder for the figures")


def run(a) -> None:
    import pandas as pd

    from .atomic import atomic_write_text
    from .tables import write_tsv

    evals = load_evaluations(a.evaluations)
    train_records = {name: read_json(path, "examples")["examples"] for name, path in a.adapter_metrics or []}
    total = int(pd.read_csv(a.shards_table, sep="\t")["records"].sum())
    table = evaluation_table(evals, train_records, total, a.confidence)
    write_tsv(table, a.table)
    complementarity = pd.read_csv(a.complementarity, sep="\t", dtype={"shard": str})
    selection = read_json(a.selection, "selected")
    comps = comparisons(evals, confidence=a.confidence, resamples=a.resamples)
    figures(table, complementarity, selection, a.figures, confidence=a.confidence)
    text = markdown_report(
        table, comps, complementarity, selection, confidence=a.confidence, tiny=a.tiny, untested=a.untested or [],
        final_method=a.final_method, cost=a.cost,
    )  # fmt: skip
    atomic_write_text(a.report, text)
