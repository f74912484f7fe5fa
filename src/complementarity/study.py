"""The study: does Complementarity predict task performance? (the paper's two analyses, plus seeds)

1. **Correlation** (the paper's Table 1). The base model is fine-tuned on each single domain and on
   each pair of domains, every model on the same number of examples (a pair takes half from each).
   Each model gives one point per evaluated domain j: x = C(model, V_j), y = its task score on domain
   j's test set minus the base model's. Pearson and Spearman correlations, overall and per domain,
   each with a percentile bootstrap CI over points and the number of points.
2. **Which predictor generalizes.** For the N shard models, two predictors of test accuracy:
   Complementarity on the training-validation sets, and accuracy measured directly on a small
   "test-validation" set drawn from the test items. Each is scored by its Spearman correlation, over
   the N shard models, with accuracy on the *remaining* test items; the draw is repeated. The CI
   resamples shard models (the same resample for both predictors and every draw), so the difference
   of the two has a paired CI too.
3. **Seed variance.** The shard fine-tunes repeated with several seeds: how often each shard makes
   the top k, and the spread of its scores.

Everything here is pure: file reading and writing is left to :func:`run_study` and the CLI.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import warnings
from pathlib import Path
from typing import Any

from .errors import UserError
from .metric import complementarity
from .plan import shard_model, study_model
from .records import Example, read_prepared, write_jsonl
from .selection import top_k
from .stats import bootstrap_correlation, linear_fit, spearman, spearman_rows

log = logging.getLogger(__name__)

# --- 1. training data of the single- and pair-domain models ------------------------------------------


def study_datasets(
    train: dict[str, list[Example]], models: dict[str, list[str]], *, examples: int | None, seed: int
) -> tuple[dict[str, list[Example]], int]:
    """Each model's training set, all of the same size ``n`` (default: the smallest domain's training set).

    Each domain's records are shuffled once with ``seed``; a model trained on m domains takes the first
    n/m (rounded so the total is n) of each, so a pair's half of a domain is inside that domain's single
    model's set: the models differ in what they see, not in which draw they got.
    """
    sizes = {d: len(exs) for d, exs in train.items()}
    n = examples if examples is not None else min(sizes.values())
    shuffled = {}
    for d, exs in train.items():
        order = list(range(len(exs)))
        random.Random(f"{seed}-{d}").shuffle(order)
        shuffled[d] = [exs[i] for i in order]
    out = {}
    for model, doms in models.items():
        counts = [n // len(doms) + (1 if i < n % len(doms) else 0) for i in range(len(doms))]
        for d, c in zip(doms, counts, strict=True):
            if c > sizes[d]:
                raise UserError(
                    f"study.examples_per_model: {n} examples per model needs {c} from domain {d!r}, which has "
                    f"{sizes[d]} training records; set study.examples_per_model to at most {min(sizes.values())} "
                    "(or null for the smallest domain's size)"
                )
        out[model] = [ex for d, c in zip(doms, counts, strict=True) for ex in shuffled[d][:c]]
    return out, n


def write_study_data(
    train_files: dict[str, str | Path], models: dict[str, list[str]], out_dir: str | Path, *, examples, seed
) -> dict[str, Any]:
    train = {d: read_prepared(p) for d, p in train_files.items()}
    missing = {d for doms in models.values() for d in doms} - set(train)
    if missing:
        raise UserError(f"study: no training file for domain(s) {sorted(missing)}")
    data, n = study_datasets(train, models, examples=examples, seed=seed)
    out = Path(out_dir)
    for model, exs in data.items():
        write_jsonl(out / f"{model}.jsonl", exs)
    manifest = {
        "examples_per_model": n,
        "seed": seed,
        "models": {m: {"domains": models[m], "records": len(exs)} for m, exs in data.items()},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("study data: %d models x %d examples", len(data), n)
    return manifest


# --- 2. correlation of Complementarity with the change in task score ---------------------------------


def correlation_points(
    base_loss: dict[str, float],
    model_loss: dict[str, dict[str, float]],
    base_score: dict[str, float],
    model_score: dict[str, dict[str, float]],
    trained_on: dict[str, list[str]],
    *,
    metric: str,
):
    """One row per (model, evaluated domain): Complementarity, task score, and its change over the base."""
    import pandas as pd

    rows = []
    for model, doms in trained_on.items():
        for d in base_score:
            c = complementarity(base_loss[d], model_loss[model][d], metric)
            s = model_score[model][d]
            rows.append(
                {
                    "model": model,
                    "domain": d,
                    "in_domain": d in doms,
                    "complementarity": c,
                    "score": s,
                    "base_score": base_score[d],
                    "delta_score": s - base_score[d],
                }
            )
    return pd.DataFrame(rows)


def correlation_table(points, *, resamples: int, confidence: float, seed: int):
    """Pearson and Spearman of Complementarity vs change in score: overall, then per evaluated domain."""
    import pandas as pd

    rows = []
    scopes = [("all", points)] + [(d, points[points["domain"] == d]) for d in dict.fromkeys(points["domain"])]
    for scope, df in scopes:
        for method in ("pearson", "spearman"):
            b = bootstrap_correlation(
                df["complementarity"].to_numpy(),
                df["delta_score"].to_numpy(),
                method=method,
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
            rows.append({"scope": scope, "method": method, **b, "resamples": resamples})
    return pd.DataFrame(rows, columns=["scope", "method", "r", "low", "high", "n", "undefined", "resamples"])


# --- 3. Complementarity vs a test-validation set as predictors of test accuracy ----------------------


def correct_matrix(evals: dict[str, dict[str, Any]], models: list[str], domain: str):
    """(models x items) 0/1 matrix of one domain's test items; every model must have the same items."""
    import numpy as np

    ids = [item["id"] for item in evals[models[0]][domain]["per_item"]]
    rows = []
    for m in models:
        items = evals[m][domain]["per_item"]
        if [item["id"] for item in items] != ids:
            raise UserError(
                f"study: model {m!r} was evaluated on other {domain} test items than {models[0]!r}; "
                "rerun its evaluate_model job with the same evaluation settings"
            )
        rows.append([float(item["correct"]) for item in items])
    return np.asarray(rows, dtype=float)


def compare_predictors(
    c_values,
    correct: dict[str, Any],
    *,
    tv_size: int,
    draws: int,
    resamples: int,
    confidence: float,
    seed: int,
):
    """Spearman correlation, across shard models, of each predictor with accuracy on the remaining items.

    ``c_values``: (models x domains) Complementarity; ``correct``: {domain: (models x items) 0/1}, domains
    in the same order. Scopes: ``all`` (predictors and target averaged over domains) and each domain.
    Returns (per-draw table, summary table); the summary's CIs come from resampling models (the same
    resamples for both predictors and every draw, so the difference is paired) of the mean over draws.
    """
    import numpy as np
    import pandas as pd

    domains = list(correct)
    n_models = c_values.shape[0]
    rng = np.random.default_rng(seed)
    # Per draw and domain: accuracy of every model on the test-validation items and on the rest.
    tv_acc = np.empty((draws, n_models, len(domains)))
    rest_acc = np.empty_like(tv_acc)
    sizes = {}
    for j, d in enumerate(domains):
        n_items = correct[d].shape[1]
        t = min(tv_size, n_items - 1)
        if t < 1:
            raise UserError(f"study: domain {d!r} has {n_items} test item(s); the test-validation split needs >= 2")
        sizes[d] = (t, n_items - t)
        for r in range(draws):
            perm = rng.permutation(n_items)
            tv_acc[r, :, j] = correct[d][:, perm[:t]].mean(axis=1)
            rest_acc[r, :, j] = correct[d][:, perm[t:]].mean(axis=1)
    boot = rng.integers(0, n_models, size=(resamples, n_models))
    alpha = (1 - confidence) / 2
    per_draw, summary = [], []
    scopes = [("all", None)] + [(d, j) for j, d in enumerate(domains)]
    for scope, j in scopes:
        if j is None:
            c_pred, tv, target = c_values.mean(axis=1), tv_acc.mean(axis=2), rest_acc.mean(axis=2)
        else:
            c_pred, tv, target = c_values[:, j], tv_acc[:, :, j], rest_acc[:, :, j]
        rho_c = np.array([spearman(c_pred, target[r]) for r in range(draws)])
        rho_tv = np.array([spearman(tv[r], target[r]) for r in range(draws)])
        for r in range(draws):
            per_draw.append({"scope": scope, "draw": r, "complementarity": rho_c[r], "test_validation": rho_tv[r]})
        # Bootstrap over models of the mean over draws (NaN draws, e.g. a constant target, left out).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": all draws undefined
            bc = np.nanmean([spearman_rows(c_pred[boot], target[r][boot]) for r in range(draws)], axis=0)
            bt = np.nanmean([spearman_rows(tv[r][boot], target[r][boot]) for r in range(draws)], axis=0)

        def ci(values):
            ok = values[~np.isnan(values)]
            if not len(ok):
                return float("nan"), float("nan"), len(values)
            return float(np.quantile(ok, alpha)), float(np.quantile(ok, 1 - alpha)), len(values) - len(ok)

        defined = ~np.isnan(rho_c) & ~np.isnan(rho_tv)
        mean_c = float(np.nanmean(rho_c)) if (~np.isnan(rho_c)).any() else float("nan")
        mean_tv = float(np.nanmean(rho_tv)) if (~np.isnan(rho_tv)).any() else float("nan")
        c_lo, c_hi, c_undef = ci(bc)
        t_lo, t_hi, t_undef = ci(bt)
        d_lo, d_hi, _ = ci(bc - bt)
        tv_items, rest_items = (
            (sum(s[0] for s in sizes.values()), sum(s[1] for s in sizes.values())) if j is None else sizes[scope]
        )
        row = {
            "scope": scope,
            "rho_complementarity": mean_c,
            "c_low": c_lo,
            "c_high": c_hi,
            "rho_test_validation": mean_tv,
            "tv_low": t_lo,
            "tv_high": t_hi,
            "difference": mean_c - mean_tv,
            "diff_low": d_lo,
            "diff_high": d_hi,
            "complementarity_better_draws": float((rho_c[defined] > rho_tv[defined]).mean())
            if defined.any()
            else float("nan"),
            "n_models": n_models,
            "test_validation_items": tv_items,
            "remaining_items": rest_items,
            "draws": draws,
            "undefined_draws": int(draws - defined.sum()),
            "undefined_resamples": max(c_undef, t_undef),
        }
        row["verdict"] = verdict(row)
        summary.append(row)
    return pd.DataFrame(per_draw), pd.DataFrame(summary)


def verdict(row: dict[str, Any]) -> str:
    """One plain sentence: which predictor wins, judged by the CI of the difference of the two."""
    if math.isnan(row["difference"]) or math.isnan(row["diff_low"]):
        return "undefined: accuracy (or a predictor) does not vary across the shard models"
    if row["diff_low"] > 0:
        return "Complementarity predicts better"
    if row["diff_high"] < 0:
        return "the test-validation set predicts better"
    return "no clear winner (the CI of the difference includes 0)"


# --- 4. seed variance of the shard scores and of the top-k choice ------------------------------------


def seed_selection_table(tables: dict[int, Any], *, k: int):
    """Per shard: mean and sd over seeds of its mean Complementarity, per-domain sd, and its selection rate.

    ``tables``: {seed: Complementarity table (``tables.complementarity_table``)}. Returns (table, summary).
    """
    import numpy as np
    import pandas as pd

    seeds = sorted(tables)
    domains = [c for c in tables[seeds[0]].columns if c not in ("shard", "mean")]
    per_seed = {s: tables[s].set_index("shard") for s in seeds}
    shards = list(per_seed[seeds[0]].index)
    chosen = {s: top_k(dict(per_seed[s]["mean"]), k) for s in seeds}
    ranks = {
        s: {sh: i + 1 for i, sh in enumerate(per_seed[s]["mean"].sort_values(ascending=False).index)} for s in seeds
    }
    rows = []
    for sh in shards:
        means = np.array([per_seed[s].loc[sh, "mean"] for s in seeds])
        row = {
            "shard": sh,
            "mean": float(means.mean()),
            "sd": float(means.std(ddof=1)) if len(seeds) > 1 else float("nan"),
            "min": float(means.min()),
            "max": float(means.max()),
            "mean_rank": float(np.mean([ranks[s][sh] for s in seeds])),
            "selected": sum(sh in chosen[s] for s in seeds),
            "selected_fraction": sum(sh in chosen[s] for s in seeds) / len(seeds),
        }
        for d in domains:
            vals = np.array([per_seed[s].loc[sh, d] for s in seeds])
            row[f"sd_{d}"] = float(vals.std(ddof=1)) if len(seeds) > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["mean", "shard"], ascending=[False, True], kind="mergesort")
    sets = [frozenset(chosen[s]) for s in seeds]
    pairs = list(itertools.combinations(sets, 2))
    summary = {
        "seeds": seeds,
        "k": k,
        "selections": {str(s): chosen[s] for s in seeds},
        "same_as_first_seed": sum(x == sets[0] for x in sets) / len(sets),
        "mean_pairwise_jaccard": float(np.mean([len(a & b) / len(a | b) for a, b in pairs])) if pairs else float("nan"),
    }
    return table.reset_index(drop=True), summary


# --- report -----------------------------------------------------------------------------------------


def _r(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "undefined"
    ci = "[–]" if math.isnan(low) else f"[{low:+.2f}, {high:+.2f}]"
    return f"{value:+.2f} {ci}"


def study_markdown(
    correlations,
    predictors,
    seed_table,
    seed_summary: dict[str, Any],
    settings: dict[str, Any],
    *,
    tiny: bool,
) -> str:
    level = f"{round(100 * settings['confidence'])}%"
    lines = ["# Does Complementarity predict performance? (study)", ""]
    if tiny:
        from .report import TINY_NOTE

        lines += [
            *TINY_NOTE[:-1],
            "> With ten models, the correlations below have wide intervals. Run",
            "> `snakemake study --configfile config/paper.yaml` on a cluster for the paper's setup.",
            "",
        ]
    lines += [
        f"Complementarity metric `{settings['metric']}`; {level} percentile bootstrap intervals "
        f"({settings['resamples']} resamples). A correlation is *undefined* when one variable is constant.",
        "",
        "## 1. Complementarity vs change in test score (the paper's Table 1)",
        "",
        f"{settings['n_study_models']} models, each fine-tuned on {settings['examples_per_model']} examples of one "
        "domain or of a pair of domains (half each). One point per model and evaluated domain: "
        "x = C(model, V_j), y = test score on domain j minus the base model's. The CI resamples points.",
        "",
        "| scope | points | Pearson r [CI] | Spearman ρ [CI] |",
        "|---|---|---|---|",
    ]
    for scope in dict.fromkeys(correlations["scope"]):
        rows = correlations[correlations["scope"] == scope].set_index("method")
        p, s = rows.loc["pearson"], rows.loc["spearman"]
        lines.append(
            f"| {scope} | {int(p['n'])} | {_r(p['r'], p['low'], p['high'])} | {_r(s['r'], s['low'], s['high'])} |"
        )
    defined = correlations[~correlations["r"].isna()]
    undefined = int(defined["undefined"].max()) if len(defined) else 0
    if undefined:
        lines += [
            "",
            f"Where r is defined, up to {undefined} of {settings['resamples']} resamples had a constant variable "
            "and were left out of its CI.",
        ]
    lines += ["", "![correlation](figures/correlation.png)", ""]

    overall = predictors.set_index("scope").loc["all"]
    lines += [
        "## 2. Which predictor of test accuracy generalizes",
        "",
        f"For the {int(overall['n_models'])} shard models: Complementarity on the training-validation sets versus "
        f"accuracy on a test-validation set of {settings['test_validation_size']} test items per domain, each scored "
        f"by its Spearman correlation with accuracy on the remaining test items; {int(overall['draws'])} random "
        "test-validation draws. ρ is the mean over draws; the CI resamples shard models (paired across the two "
        "predictors). 'C better' is the fraction of draws where Complementarity's ρ is higher.",
        "",
        "| scope | ρ Complementarity [CI] | ρ test-validation [CI] | difference [CI] | C better | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for _, row in predictors.iterrows():
        better = (
            "–" if math.isnan(row["complementarity_better_draws"]) else f"{row['complementarity_better_draws']:.2f}"
        )
        lines.append(
            f"| {row['scope']} | {_r(row['rho_complementarity'], row['c_low'], row['c_high'])} | "
            f"{_r(row['rho_test_validation'], row['tv_low'], row['tv_high'])} | "
            f"{_r(row['difference'], row['diff_low'], row['diff_high'])} | {better} | {row['verdict']} |"
        )
    lines += [
        "",
        f"**On this run, averaged over the evaluated domains: {overall['verdict']}** "
        f"(difference {_r(overall['difference'], overall['diff_low'], overall['diff_high'])}, "
        f"{int(overall['n_models'])} models; {int(overall['undefined_draws'])} of {int(overall['draws'])} draws undefined).",
        "",
        "![predictors](figures/predictors.png)",
        "",
        "## 3. Seed variance of the shard scores and the top-k choice",
        "",
    ]
    seeds = seed_summary["seeds"]
    if len(seeds) == 1:
        lines += [
            f"One seed (`study.seeds: 1`, finetune seed {seeds[0]}): no variance to report. Set `study.seeds` "
            "above 1 to repeat every shard fine-tune with more seeds.",
            "",
        ]
    lines += [
        f"Seeds {', '.join(map(str, seeds))}; k = {seed_summary['k']}. Top-k per seed: "
        + "; ".join(f"seed {s}: {', '.join(v)}" for s, v in seed_summary["selections"].items())
        + ".",
        "",
    ]
    if len(seeds) > 1:
        lines += [
            f"Same top-k as seed {seeds[0]} in {100 * seed_summary['same_as_first_seed']:.0f}% of seeds; mean pairwise "
            f"Jaccard overlap of the top-k sets {seed_summary['mean_pairwise_jaccard']:.2f}.",
            "",
        ]
    lines += ["| shard | mean C | sd over seeds | min | max | mean rank | selected |", "|---|---|---|---|---|---|---|"]
    for _, row in seed_table.iterrows():
        sd = "–" if math.isnan(row["sd"]) else f"{row['sd']:.4f}"
        lines.append(
            f"| {row['shard']} | {row['mean']:+.4f} | {sd} | {row['min']:+.4f} | {row['max']:+.4f} | "
            f"{row['mean_rank']:.1f} | {int(row['selected'])}/{len(seeds)} |"
        )
    return "\n".join(lines) + "\n"


def study_figures(points, correlations, draws, seed_table, out_dir: str | Path, *, n_seeds: int) -> list[Path]:
    """correlation (scatter, a colour per evaluated domain, fit line), predictors, seed_selection."""
    import numpy as np

    from .report import figure_writer

    plt, save, written = figure_writer(out_dir)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, d in enumerate(dict.fromkeys(points["domain"])):
        df = points[points["domain"] == d]
        colour = colours[i % len(colours)]
        for in_domain, marker_face in ((True, colour), (False, "none")):
            sub = df[df["in_domain"] == in_domain]
            ax.scatter(
                sub["complementarity"],
                100 * sub["delta_score"],
                edgecolors=colour,
                facecolors=marker_face,
                label=f"{d} ({'trained on it' if in_domain else 'not trained on it'})",
            )
    slope, intercept = linear_fit(points["complementarity"], points["delta_score"])
    if not math.isnan(slope):
        xs = np.linspace(points["complementarity"].min(), points["complementarity"].max(), 50)
        ax.plot(xs, 100 * (slope * xs + intercept), color="black", lw=1, label="least-squares fit")
    r = correlations[(correlations["scope"] == "all") & (correlations["method"] == "pearson")].iloc[0]
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("Complementarity on the validation set of the evaluated domain")
    ax.set_ylabel("change in test score over the base model (points)")
    ax.set_title(f"Single- and pair-domain models: Pearson r = {_r(r['r'], r['low'], r['high'])}, n = {int(r['n'])}")
    ax.legend(fontsize=6, ncol=2)
    save(fig, "correlation")

    scopes = list(dict.fromkeys(draws["scope"]))
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(scopes)), 4))
    for k, (col, label, off) in enumerate(
        (
            ("complementarity", "Complementarity (train-validation)", -0.15),
            ("test_validation", "test-validation accuracy", 0.15),
        )
    ):
        for i, scope in enumerate(scopes):
            vals = draws[draws["scope"] == scope][col].to_numpy(dtype=float)
            jitter = np.random.default_rng(i).uniform(-0.05, 0.05, len(vals))
            ax.scatter(i + off + jitter, vals, s=8, alpha=0.5, color=colours[k], label=label if i == 0 else None)
            if (~np.isnan(vals)).any():
                ax.hlines(np.nanmean(vals), i + off - 0.1, i + off + 0.1, color=colours[k], lw=2)
    ax.set_xticks(range(len(scopes)), scopes)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Spearman ρ with accuracy on the remaining test items")
    ax.set_title("Predicting shard models' test accuracy (one dot per draw, bar = mean)")
    ax.legend(fontsize=7)
    save(fig, "predictors")

    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(seed_table)), 3.5))
    ax.bar(seed_table["shard"], seed_table["selected_fraction"])
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"fraction of {n_seeds} seed(s) selecting the shard")
    ax.tick_params(axis="x", rotation=45)
    ax.set_title("Top-k selection across fine-tuning seeds")
    save(fig, "seed_selection")
    return written


# --- the whole study from the workflow's files -------------------------------------------------------


def run_study(
    *,
    base_scores: str | Path,
    study_scores: list[str | Path],
    table: str | Path,
    selection: str | Path,
    main_seed: int,
    seed_scores: dict[int, list[str | Path]],
    main_scores: list[str | Path] | None = None,
    evaluations: list[str | Path],
    study_manifest: str | Path,
    metric: str,
    weights: dict[str, float] | None,
    k: int,
    settings: dict[str, Any],
    confidence: float,
    resamples: int,
    tiny: bool,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Read the workflow's scores and evaluations, run the three analyses, write tables, report, figures.

    ``table`` and ``selection`` are the main run's complementarity.tsv and selection.json (its
    shard models are fine-tuned with seed ``main_seed``); ``seed_scores`` holds the shard scores of the other seeds.
    When the table is a mean over selection.seeds (selection.json's ``uncertainty.seeds`` > 1), the
    main seed's own table is built from ``main_scores`` (the shard models' scores of that seed).
    """
    from .atomic import atomic_write_text
    from .report import load_evaluations
    from .selection import read_table
    from .tables import complementarity_table, read_scores, write_tsv

    out = Path(out_dir)
    base = read_scores(base_scores)["base"]
    studied: dict[str, dict] = {}
    for f in study_scores:
        studied.update(read_scores(f))
    manifest = json.loads(Path(study_manifest).read_text())
    trained_on = {m: v["domains"] for m, v in manifest["models"].items()}
    evals = load_evaluations(evaluations)
    if "base" not in evals:
        raise UserError("study: the base model's evaluation (results/evaluation/base.json) is missing")
    tested = list(evals["base"])
    base_score = {d: evals["base"][d]["score"] for d in tested}

    # 1. Correlation.
    missing = [m for m in trained_on if study_model(m) not in evals or m not in studied]
    if missing:
        raise UserError(f"study: no scores or evaluation for study model(s) {missing}")
    points = correlation_points(
        {d: base[d]["nll"] for d in tested},
        {m: {d: studied[m][d]["nll"] for d in tested} for m in trained_on},
        base_score,
        {m: {d: evals[study_model(m)][d]["score"] for d in tested} for m in trained_on},
        trained_on,
        metric=metric,
    )
    correlations = correlation_table(points, resamples=resamples, confidence=confidence, seed=settings["seed"])

    # 3 first: the per-seed Complementarity tables (seed 0's is the main run's, used by analysis 2).
    if main_seed in seed_scores:
        raise UserError(f"study: seed {main_seed} is the main run's; its table is {table}, not a --seed-scores file")
    sel = json.loads(Path(selection).read_text())
    main_table = read_table(table)
    if sel.get("method", "topk") == "topk":
        if top_k(dict(zip(main_table["shard"], main_table["mean"], strict=True)), k) != sel["selected"]:
            raise UserError(f"study: {selection} does not hold the top {k} of {table}; rerun select_topk")
    if sel.get("uncertainty", {}).get("seeds", 1) > 1:  # the table is the mean over selection.seeds
        if not main_scores:
            raise UserError(f"study: {table} is a mean over selection.seeds; give the main seed's --main-scores")
        shards_main: dict[str, dict] = {}
        for f in main_scores:
            shards_main.update(read_scores(f))
        main_table = complementarity_table(base, shards_main, metric=metric, weights=weights)
    tables = {main_seed: main_table}
    for seed, files in seed_scores.items():
        shards: dict[str, dict] = {}
        for f in files:
            shards.update(read_scores(f))
        tables[seed] = complementarity_table(base, shards, metric=metric, weights=weights)
    seed_table, seed_summary = seed_selection_table(tables, k=k)

    # 2. Predictors, on the first seed's shard models (the ones the main run selects from).
    first = tables[min(tables)].set_index("shard")
    shards = sorted(first.index)
    names = [shard_model(s) for s in shards]
    absent = [n for n in names if n not in evals]
    if absent:
        raise UserError(f"study: evaluation missing for shard model(s) {absent}")
    c_values = first.loc[shards, tested].to_numpy(dtype=float)
    correct = {d: correct_matrix(evals, names, d) for d in tested}
    draws, predictors = compare_predictors(
        c_values,
        correct,
        tv_size=settings["test_validation_size"],
        draws=settings["test_validation_draws"],
        resamples=resamples,
        confidence=confidence,
        seed=settings["seed"],
    )

    write_tsv(points, out / "correlation_points.tsv")
    write_tsv(correlations, out / "correlation.tsv")
    write_tsv(draws, out / "predictor_draws.tsv")
    write_tsv(predictors, out / "predictors.tsv")
    write_tsv(seed_table, out / "seed_selection.tsv")
    (out / "seed_selection.json").write_text(json.dumps(seed_summary, indent=2) + "\n")
    study_figures(points, correlations, draws, seed_table, out / "figures", n_seeds=len(tables))
    info = {
        **settings,
        "metric": metric,
        "confidence": confidence,
        "resamples": resamples,
        "n_study_models": len(trained_on),
        "examples_per_model": manifest["examples_per_model"],
    }
    text = study_markdown(correlations, predictors, seed_table, seed_summary, info, tiny=tiny)
    atomic_write_text(out / "report.md", text)
    verdict_all = predictors.set_index("scope").loc["all", "verdict"]
    log.info("study written to %s; predictors: %s", out, verdict_all)
    return {"verdict": verdict_all, "seed_summary": seed_summary}


# --- CLI: complementarity study data|analyze --------------------------------------------------------


def run_data(a) -> None:
    write_study_data(dict(a.train), a.models, a.out_dir, examples=a.examples, seed=a.seed)


def run_analyze(a) -> None:
    seed_scores: dict[int, list[str]] = {}
    for seed, path in a.seed_scores or []:
        seed_scores.setdefault(int(seed), []).append(path)
    run_study(
        base_scores=a.base_scores, study_scores=a.study_scores, table=a.table, selection=a.selection,
        main_seed=a.main_seed, seed_scores=seed_scores, main_scores=a.main_scores, evaluations=a.evaluations, study_manifest=a.study_manifest,
        metric=a.metric, weights=a.weights, k=a.k, settings=a.settings, confidence=a.confidence,
        resamples=a.resamples, tiny=a.tiny, out_dir=a.out_dir,
    )  # fmt: skip


def run_rules(a) -> None:
    from .rule_study import run_rule_study

    run_rule_study(
        a.evaluations, a.selections, confidence=a.confidence, resamples=a.resamples, tiny=a.tiny,
        out_table=a.table, out_report=a.report,
    )  # fmt: skip


ACTIONS = {
    "data": (run_data, "Training sets of the study's single- and pair-domain models (equal sizes)."),
    "analyze": (run_analyze, "The study's analyses: correlation, predictor comparison, seed variance."),
    "rules": (run_rules, "Selection rules compared: test accuracy of the model each rule selected (study.rules)."),
}


def register_arguments(parser) -> None:
    from .arguments import add_actions, json_arg, optional_int, pair

    sp = add_actions(parser, ACTIONS)
    d = sp["data"]
    d.add_argument("--train", type=pair, nargs="+", required=True, help="DOMAIN=FILE prepared training sets")
    d.add_argument("--models", type=json_arg, required=True, help="JSON: model id -> the domains it trains on")
    d.add_argument(
        "--examples", type=optional_int, required=True,
        help="config study.examples_per_model; null = the smallest domain's size",
    )  # fmt: skip
    d.add_argument("--seed", type=int, required=True, help="config study.seed (sampling)")
    d.add_argument("--out-dir", required=True, help="writes OUT_DIR/<model>.jsonl and manifest.json")

    an = sp["analyze"]
    an.add_argument("--base-scores", required=True, help="scores JSON of the base model")
    an.add_argument("--study-scores", nargs="+", required=True, help="scores JSON of the study models")
    an.add_argument("--table", required=True, help="the main run's complementarity.tsv")
    an.add_argument("--selection", required=True, help="the main run's selection.json")
    an.add_argument("--main-seed", type=int, required=True, help="config finetune.seed (the main run's shard models)")
    an.add_argument(
        "--main-scores", nargs="*", help="shard scores of the main seed (used when the table is a selection.seeds mean)"
    )
    an.add_argument("--seed-scores", type=pair, nargs="*", help="SEED=FILE shard scores of each further seed")
    an.add_argument("--evaluations", nargs="+", required=True, help="evaluation JSON files (model = file stem)")
    an.add_argument("--study-manifest", required=True, help="manifest.json from study data")
    an.add_argument("--metric", required=True, help="config selection.metric")
    an.add_argument("--weights", type=json_arg, required=True, help="JSON: config selection.weights")
    an.add_argument("--k", type=int, required=True, help="config selection.k (for the seed analysis)")
    an.add_argument("--settings", type=json_arg, required=True, help="JSON: config `study` section")
    an.add_argument("--confidence", type=float, required=True, help="config evaluation.confidence")
    an.add_argument("--resamples", type=int, required=True, help="config evaluation.bootstrap_resamples")
    an.add_argument("--tiny", action="store_true", help="say in the report that this is a tiny-model smoke run")
    an.add_argument("--out-dir", required=True, help="writes tables, report.md and figures/ here")

    ru = sp["rules"]
    ru.add_argument("--evaluations", type=pair, nargs="+", required=True, help="RULE=evaluation JSON (reference first)")
    ru.add_argument("--selections", type=pair, nargs="+", required=True, help="RULE=selection.json")
    ru.add_argument("--confidence", type=float, required=True, help="config evaluation.confidence")
    ru.add_argument("--resamples", type=int, required=True, help="config evaluation.bootstrap_resamples")
    ru.add_argument("--tiny", action="store_true", help="say that this is a tiny-model smoke run")
    ru.add_argument("--table", required=True, help="output rules.tsv")
    ru.add_argument("--report", required=True, help="output rules.md")


def run(args) -> None:
    args.run(args)
