"""The paired bootstrap of the Complementarity table: checked against SciPy, and on cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sp

from complementarity.errors import UserError
from complementarity.selection import select
from complementarity.tables import complementarity_table, save_bootstrap, uncertain_table, write_tsv
from complementarity.uncertainty import bootstrap, summary, top_k_mask

RNG = np.random.default_rng(3)
N_EX = 60
TOKENS = RNG.integers(3, 20, size=N_EX).astype(float)
BASE_SUMS = TOKENS * RNG.uniform(1.5, 2.5, size=N_EX)


def record(sums):
    sums = np.asarray(sums, dtype=float)
    return {
        "nll": float(sums.sum() / TOKENS.sum()),
        "example_nll_sums": sums.tolist(),
        "example_response_tokens": TOKENS.tolist(),
    }


def shard(factor, noise=0.0, seed=0):
    """Per-example sums: the base's times ``factor`` (< 1 helps), with multiplicative noise."""
    rng = np.random.default_rng(seed)
    return BASE_SUMS * factor * (1 + noise * rng.normal(size=N_EX))


BASE = {"a": record(BASE_SUMS), "b": record(BASE_SUMS)}


def test_interval_matches_scipy_paired_percentile_bootstrap():
    tuned = shard(0.9, noise=0.2, seed=1)
    boot = bootstrap({"a": record(BASE_SUMS)}, {0: {"s": {"a": record(tuned)}}}, metric="relative", resamples=4000)
    ours = summary(boot, k=1, confidence=0.9)

    def c(base, shard_, tok):
        return (base.sum() / tok.sum() - shard_.sum() / tok.sum()) / (base.sum() / tok.sum())

    ref = sp.bootstrap(
        (BASE_SUMS, tuned, TOKENS), c, paired=True, vectorized=False, n_resamples=4000, method="percentile",
        confidence_level=0.9, random_state=np.random.default_rng(2),
    ).confidence_interval  # fmt: skip
    assert boot.point[0, 0] == pytest.approx(c(BASE_SUMS, tuned, TOKENS))
    width = ref.high - ref.low
    assert ours["mean_ci_low"][0] == pytest.approx(ref.low, abs=0.08 * width)
    assert ours["mean_ci_high"][0] == pytest.approx(ref.high, abs=0.08 * width)
    assert ours["domain_ci_low"][0, 0] == ours["mean_ci_low"][0]  # one domain: the mean is that domain


def test_point_values_equal_the_complementarity_table():
    shards = {
        "s1": {"a": record(shard(0.9)), "b": record(shard(1.05))},
        "s2": {"a": record(shard(0.8)), "b": record(shard(0.99))},
    }
    for metric in ("relative", "absolute"):
        ref = complementarity_table(BASE, shards, metric=metric, weights={"a": 1.0, "b": 3.0}).set_index("shard")
        boot = bootstrap(BASE, {0: shards}, metric=metric, weights={"a": 1.0, "b": 3.0}, resamples=200)
        for i, s in enumerate(boot.shards):
            assert boot.point[i] == pytest.approx(ref.loc[s, ["a", "b"]].to_numpy(dtype=float))
            assert boot.point_mean[i] == pytest.approx(ref.loc[s, "mean"])


def test_pairing_clear_winner_and_identical_twins():
    # s_good is 10% better on every example: paired, it beats s_ok (5% better) in every resample even
    # though both vary with the draw. Twins are identical in every resample.
    shards = {
        "s_good": {"a": record(shard(0.90)), "b": record(shard(0.90))},
        "s_ok": {"a": record(shard(0.95)), "b": record(shard(0.95))},
        "twin1": {"a": record(shard(1.0, 0.1, seed=5)), "b": record(shard(1.0, 0.1, seed=6))},
        "twin2": {"a": record(shard(1.0, 0.1, seed=5)), "b": record(shard(1.0, 0.1, seed=6))},
    }
    boot = bootstrap(BASE, {0: shards}, metric="relative", resamples=500, seed=1)
    idx = {s: i for i, s in enumerate(boot.shards)}
    assert np.array_equal(boot.resampled[:, idx["twin1"]], boot.resampled[:, idx["twin2"]])
    summ = summary(boot, k=1, confidence=0.95)
    assert summ["p_topk"][idx["s_good"]] == 1.0 and summ["p_same_topk"] == 1.0
    # Top-2 = s_good + s_ok always (twins have C ~ 0 +- noise < 0.05 on 60 examples).
    summ2 = summary(boot, k=2, confidence=0.95)
    assert summ2["p_topk"][idx["s_ok"]] == 1.0
    # The twins share every draw: a top-3 tie is broken to the smaller id, so twin1 is in and twin2 never.
    summ3 = summary(boot, k=3, confidence=0.95)
    assert summ3["p_topk"][idx["twin1"]] == 1.0 and summ3["p_topk"][idx["twin2"]] == 0.0


def test_top_k_mask_breaks_ties_to_the_lower_column():
    assert top_k_mask(np.array([[0.1, 0.1, 0.2]]), 2).tolist() == [[True, False, True]]


def test_close_shards_are_not_separated():
    # Two shards with the same C on V (0.1) that win on different examples: each is top-1 in about
    # half of the resamples.
    e = np.random.default_rng(1).normal(size=N_EX) * 0.3
    e -= (BASE_SUMS * e).sum() / BASE_SUMS.sum()  # sum(base * e) = 0: both points are exactly 0.1
    shards = {"s1": {"a": record(BASE_SUMS * 0.9 * (1 + e))}, "s2": {"a": record(BASE_SUMS * 0.9 * (1 - e))}}
    boot = bootstrap({"a": BASE["a"]}, {0: shards}, metric="relative", resamples=1000)
    summ = summary(boot, k=1, confidence=0.95)
    assert 0.2 < summ["p_topk"][0] < 0.8 and summ["p_topk"].sum() == pytest.approx(1.0)
    assert summ["p_same_topk"] < 0.95


def test_seeds_enter_the_point_and_widen_the_interval():
    # Seed 0 and seed 1 of the same shard disagree (0.85 vs 0.95): the score is their mean, and
    # resampling seeds makes the interval wider than the examples alone.
    one = {0: {"s": {"a": record(shard(0.85))}, "t": {"a": record(shard(0.9))}}}
    two = {0: one[0], 1: {"s": {"a": record(shard(0.95))}, "t": {"a": record(shard(0.9))}}}
    b1 = bootstrap({"a": BASE["a"]}, one, metric="absolute", resamples=1000)
    b2 = bootstrap({"a": BASE["a"]}, two, metric="absolute", resamples=1000)
    base_l = BASE_SUMS.sum() / TOKENS.sum()
    assert b2.point[0, 0] == pytest.approx(base_l - 0.9 * base_l) and b2.seeds == 2
    w1 = np.subtract(*np.quantile(b1.resampled[:, 0, 0], [0.975, 0.025]))
    w2 = np.subtract(*np.quantile(b2.resampled[:, 0, 0], [0.975, 0.025]))
    assert w2 > 3 * w1
    # t's seeds agree: its resampled values only vary with the examples.
    assert np.quantile(b2.resampled[:, 1, 0], 0.975) - np.quantile(b2.resampled[:, 1, 0], 0.025) < w2 / 3


def test_errors_name_the_fix():
    old = {"a": {"nll": 1.0}}
    with pytest.raises(UserError, match=r"no per-example losses.*snakemake --forcerun score_base score_group"):
        bootstrap(old, {0: {"s": {"a": record(shard(0.9))}}}, metric="relative")
    short = {"nll": 1.0, "example_nll_sums": [1.0, 2.0], "example_response_tokens": [1.0, 1.0]}
    with pytest.raises(UserError, match="scored on different examples of 'a'"):
        bootstrap({"a": BASE["a"]}, {0: {"s": {"a": short}}}, metric="relative")


def test_table_columns_and_selection_json(tmp_path):
    shards = {
        "s1": {"a": record(shard(0.80)), "b": record(shard(0.80))},
        "s2": {"a": record(shard(0.85, 0.3, 1)), "b": record(shard(0.85, 0.3, 2))},
        "s3": {"a": record(shard(0.85, 0.3, 3)), "b": record(shard(0.85, 0.3, 4))},
        "s4": {"a": record(shard(1.10)), "b": record(shard(1.10))},
    }
    df, boot = uncertain_table(
        BASE, {0: shards}, metric="relative", weights={}, k=2, resamples=500, confidence=0.9, seed=0
    )
    assert list(df.columns) == [
        "shard", "a", "b", "mean", "mean_ci_low", "mean_ci_high", "p_topk", "a_ci_low", "a_ci_high", "b_ci_low", "b_ci_high",
    ]  # fmt: skip
    assert df["shard"].tolist()[0] == "s1" and df["shard"].tolist()[-1] == "s4"
    assert (df["mean_ci_low"] <= df["mean"]).all() and (df["mean"] <= df["mean_ci_high"]).all()
    assert df["p_topk"].sum() == pytest.approx(2.0) and df.set_index("shard").loc["s1", "p_topk"] == 1.0
    table, npz = tmp_path / "c.tsv", tmp_path / "b.npz"
    write_tsv(df, table)
    save_bootstrap(boot, npz)
    sel = select(table, k=2, metric="relative", out=tmp_path / "sel.json", bootstrap_path=npz, confidence=0.9)
    assert sel == json.loads((tmp_path / "sel.json").read_text())
    unc = sel["uncertainty"]
    assert sel["selected"][0] == "s1" and unc["topk"] == sel["selected"]
    # s2 and s3 are equally good (0.85 +- noise): second place is a coin flip, so the top-2 is not separated.
    assert not unc["separated"] and unc["p_same_topk"] < 0.9 and set(unc["unsure"]) == {"s2", "s3"}
    assert unc["p_selected"] == pytest.approx(unc["p_topk"]) and unc["p_same_selection"] == unc["p_same_topk"]
    # s1 is the base scaled by 0.8 on every example: C = 0.2 in every resample, a zero-width interval.
    assert unc["intervals"]["s1"]["mean"] == pytest.approx([0.2, 0.2]) == [sel["scores"]["s1"]["mean"]] * 2
    assert unc["intervals"]["s2"]["mean"][0] < sel["scores"]["s2"]["mean"] < unc["intervals"]["s2"]["mean"][1]
    # Coverage with the same bootstrap: its own P(selected); threshold: P(mean > threshold) per resample.
    cov = select(table, k=2, metric="relative", out=tmp_path / "c.json", method="coverage", bootstrap_path=npz)
    assert sum(cov["uncertainty"]["p_selected"].values()) == pytest.approx(2.0)  # k shards in every resample
    assert cov["uncertainty"]["p_selected"]["s1"] > 0.9 and cov["uncertainty"]["p_selected"]["s4"] == 0.0
    thr = select(
        table, k=2, metric="relative", out=tmp_path / "t.json", method="threshold", threshold=0.0, bootstrap_path=npz
    )
    assert "s4" not in thr["selected"] and thr["uncertainty"]["p_selected"]["s4"] == 0.0
    assert thr["uncertainty"]["p_selected"]["s1"] == 1.0 and thr["k"] == len(thr["selected"]) == 3


def _report_inputs(p_same):
    import pandas as pd

    comp = pd.DataFrame({"shard": ["s1", "s2", "s3"], "a": [0.1, 0.09, -0.2], "b": [0.2, 0.19, -0.1]})
    comp["mean"] = comp[["a", "b"]].mean(axis=1)
    comp["mean_ci_low"], comp["mean_ci_high"] = comp["mean"] - 0.02, comp["mean"] + 0.02
    comp["p_topk"] = [1.0, 0.55, 0.45] if p_same < 0.95 else [1.0, 1.0, 0.0]
    for d in ("a", "b"):
        comp[f"{d}_ci_low"], comp[f"{d}_ci_high"] = comp[d] - 0.03, comp[d] + 0.03
    unc = {
        "resamples": 1000, "confidence": 0.95, "seeds": 1, "topk": ["s1", "s2"], "p_same_topk": p_same,
        "separated": p_same >= 0.95, "unsure": ["s2", "s3"] if p_same < 0.95 else [], "p_same_selection": p_same,
    }  # fmt: skip
    sel = {"k": 2, "metric": "relative", "method": "topk", "selected": ["s1", "s2"], "uncertainty": unc}
    return comp, sel


def test_report_says_whether_the_top_k_is_separated(tmp_path):
    from complementarity.report import UNSURE, selection_lines

    comp, sel = _report_inputs(0.55)
    text = "\n".join(selection_lines(comp, sel))
    assert "**The top 2 is NOT separated from the rest**" in text and "only 55% of 1000" in text
    assert "does not decide between s2, s3" in text
    assert "| s2 ✔ | +0.0900 | +0.1900 | +0.1400 | [+0.1200, +0.1600] | 0.55 ⚠ |" in text
    assert "| s1 ✔ | +0.1000 | +0.2000 | +0.1500 | [+0.1300, +0.1700] | 1.00 |" in text
    comp, sel = _report_inputs(0.99)
    text = "\n".join(selection_lines(comp, sel))
    assert "**The top 2 is separated from the rest**: the same 2 shards are the top 2 in 99%" in text
    assert "⚠ |" not in text and UNSURE == (0.2, 0.8)
    sel["method"], sel["selected"], sel["k"] = "coverage", ["s1", "s3"], 2
    text = "\n".join(selection_lines(comp, sel))
    assert "by rule **coverage (greedy, every domain served)**, 2 shard(s)" in text and "**s1**, **s3**" in text
    assert "This rule picks the same set in 99.0% of the resamples." in text
    # The heatmap takes only the domains and the mean (not the interval columns).
    from complementarity.report import figures

    comp, sel = _report_inputs(0.55)  # s2 and s3 get the "?" mark
    written = figures(pd_eval(), comp, sel, tmp_path, confidence=0.95)
    assert (tmp_path / "complementarity_heatmap.png").stat().st_size > 5000 and written


def pd_eval():
    import pandas as pd

    rows = [
        {"model": m, "domain": d, "score": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10}
        for m in ("base", "final")
        for d in ("a", "b")
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("weights", [{}, {"a": 3.0, "b": 1.0, "c": 0.0}])
def test_topk_selection_probability_is_the_per_resample_rule(weights):
    """The vectorised topk path gives exactly what applying selection.choose to every resample gives,
    ties included (s2 and s3 are the same shard: the smaller id wins in both)."""
    import numpy as np

    from complementarity.selection import choose
    from complementarity.uncertainty import Bootstrap, domain_weights, selection_probability, topk_selection_probability

    rng = np.random.default_rng(0)
    domains, shards = ["a", "b", "c"], [f"s{i}" for i in range(1, 9)]
    resampled = rng.normal(0.1, 0.05, size=(300, len(shards), len(domains)))
    resampled[:, 2] = resampled[:, 1]  # s3 ties with s2 in every resample
    boot = Bootstrap(shards, domains, domain_weights(domains, weights), resampled.mean(0), resampled, 1)
    chosen = ["s1", "s2", "s4"]
    fast = topk_selection_probability(boot, 3, chosen, weights)
    slow = selection_probability(boot, lambda t: choose("topk", t, k=3, weights=weights), chosen)
    assert fast[0] == pytest.approx(slow[0], abs=0) and fast[1] == slow[1]
    assert fast[0]["s3"] < fast[0]["s2"] and sum(fast[0].values()) == pytest.approx(3.0)  # the tie goes to s2
