"""Does the selection rule matter? Test accuracy of the model each rule selects (``study.rules``).

For every rule in ``study.rules`` the study selects shards with that rule (same table, same k), fine-tunes
on their union and evaluates the model on every domain's test set. ``rules.tsv`` has one row per
(rule, domain) plus a row ``all`` per rule (the items of every domain pooled): accuracy with a Wilson
interval, and the difference from the first rule (``topk``: the paper's) by a paired bootstrap over
the same test items, with its interval. ``rules.md`` says it in words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .stats import paired_bootstrap, wilson


def _items(result: dict[str, Any]) -> list[float]:
    return [float(item["correct"]) for item in result["per_item"]]


def compare_rules(
    evaluations: dict[str, dict[str, Any]],
    selections: dict[str, dict[str, Any]],
    *,
    confidence: float,
    resamples: int,
):
    """DataFrame, one row per (rule, scope): ``evaluations`` {rule: {domain: result}} (evaluate_model's
    ``domains``), ``selections`` {rule: selection.json}; the first rule is the reference."""
    import pandas as pd

    rules = list(evaluations)
    ref = rules[0]
    domains = list(evaluations[ref])
    rows = []
    for rule in rules:
        sel = selections[rule]
        scopes = {d: _items(evaluations[rule][d]) for d in domains}
        scopes["all"] = [x for d in domains for x in scopes[d]]
        ref_items = {d: _items(evaluations[ref][d]) for d in domains}
        ref_items["all"] = [x for d in domains for x in ref_items[d]]
        for scope, items in scopes.items():
            correct, n = int(sum(items)), len(items)
            low, high = wilson(correct, n, confidence)
            diff = paired_bootstrap(items, ref_items[scope], resamples=resamples, confidence=confidence)
            rows.append({
                "rule": rule,
                "selected": " ".join(sel["selected"]),
                "k": len(sel["selected"]),
                "scope": scope,
                "score": correct / n if n else float("nan"),
                "n": n,
                "ci_low": low,
                "ci_high": high,
                f"diff_vs_{ref}": diff["diff"],
                "diff_low": diff["low"],
                "diff_high": diff["high"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def rules_markdown(df, *, confidence: float, tiny: bool) -> str:
    level = f"{round(100 * confidence)}%"
    ref = df["rule"].iloc[0]
    diff = f"diff_vs_{ref}"
    lines = ["# Selection rules compared: test accuracy of the model each rule selects", ""]
    if tiny:
        from .report import TINY_NOTE

        lines += TINY_NOTE
    lines += [
        f"Accuracy in %, {level} Wilson interval; difference from `{ref}` in points, paired bootstrap over the "
        f"same test items, {level} interval. `all` pools every domain's items.",
        "",
        "| rule | selected (k) | scope | accuracy | difference from " + ref + " |",
        "|---|---|---|---|---|",
    ]
    for _, r in df.iterrows():
        d = (
            "—"
            if r["rule"] == ref
            else f"{100 * r[diff]:+.1f} [{100 * r['diff_low']:+.1f}, {100 * r['diff_high']:+.1f}]"
        )
        lines.append(
            f"| {r['rule']} | {r['selected']} ({r['k']}) | {r['scope']} | {100 * r['score']:.1f} "
            f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] | {d} |"
        )
    lines += [""]
    overall = df[(df["scope"] == "all") & (df["rule"] != ref)]
    for _, r in overall.iterrows():
        if r["diff_low"] > 0:
            verdict = f"better than `{ref}`"
        elif r["diff_high"] < 0:
            verdict = f"worse than `{ref}`"
        else:
            verdict = f"not distinguishable from `{ref}` (the interval of the difference contains 0)"
        lines.append(f"- `{r['rule']}` ({r['selected']}): {verdict}.")
    return "\n".join(lines) + "\n"


def run_rule_study(
    evaluations: list[tuple[str, str]],
    selections: list[tuple[str, str]],
    *,
    confidence: float,
    resamples: int,
    tiny: bool,
    out_table: str | Path,
    out_report: str | Path,
):
    """``evaluations``/``selections``: (rule, file) pairs, the reference rule first."""
    from .tables import write_tsv

    evals = {rule: json.loads(Path(f).read_text())["domains"] for rule, f in evaluations}
    sels = {rule: json.loads(Path(f).read_text()) for rule, f in selections}
    df = compare_rules(evals, sels, confidence=confidence, resamples=resamples)
    write_tsv(df, out_table)
    Path(out_report).write_text(rules_markdown(df, confidence=confidence, tiny=tiny))
    return df
