"""The paper's analyses (spec §2.5 B, D, F and §6 items 3-6) as functions returning tidy pandas tables.

- `external_agreement`: crowd against the experts per dataset and expert level — per-level summaries, two-sided
  Mann-Whitney U between adjacent levels with Bonferroni correction (statsmodels `multipletests`) within each
  dataset, Kruskal-Wallis, Spearman/Kendall (τ-b)/Pearson with the expert value, and AUC of merged levels.
- `dimension_correlations` / `correlation_matrix`: pairwise correlations of the items at judgment or statement
  (mean-aggregated) level; `dimension_pca`: eigenvalues, explained variance and loadings (statsmodels `PCA`);
  `dimension_factors`: factor analysis with varimax rotation (statsmodels `Factor`).
- `evidence_sources`: the domain frequency table of the evidence URLs (worker behaviour, spec §2.5 E).
- `learning_curve`: time and quality (|OT − normalised expert label|) per position, stratified by the ABC block
  position, Spearman trends, and `MixedLM` `time ~ position + block + (1 | worker)`.
- `worker_background`: demographics and the CRT score against each worker's error with respect to the experts
  (Kruskal-Wallis per factor with Bonferroni, Spearman for ordered codes; spec §2.5 E).

Inputs are a `CrowdData` (loaded or simulated; use `data.real()` for the paper's canonical rows). Nothing here
hard-codes a conclusion: the tables report the numbers and their tests.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from repro_core.errors import InputError
from truth_crowd.io import CrowdData
from truth_crowd.schema import DIMENSIONS, ITEMS

__all__ = [
    "BACKGROUND_FACTORS",
    "FACTOR_ROTATIONS",
    "MERGES",
    "ExternalAgreement",
    "LearningCurve",
    "WorkerBackground",
    "abc_block",
    "aggregate_items",
    "correlation_matrix",
    "crowd_expert_agreement",
    "dimension_correlations",
    "dimension_factors",
    "dimension_pca",
    "evidence_sources",
    "external_agreement",
    "learning_curve",
    "require_complete_rows",
    "worker_background",
]

logger = logging.getLogger(__name__)

#: PolitiFact level merges of the group's SIGIR'20 analysis: 6 -> 3 (`01|23|45`) and 6 -> 2 (`012|345`).
MERGES: dict[str, tuple[int, ...]] = {"01|23|45": (0, 0, 1, 1, 2, 2), "012|345": (0, 0, 0, 1, 1, 1)}
Aggregator = Literal["mean", "median"]


def aggregate_items(
    judgments: pd.DataFrame, items: Sequence[str] = ITEMS, aggregator: Aggregator = "mean"
) -> pd.DataFrame:
    """Per-statement aggregate of each item, `[n_statements, n_items]` indexed by `statement_id`."""
    if aggregator not in ("mean", "median"):
        raise ValueError(f"aggregator must be 'mean' or 'median', got {aggregator!r}")
    missing = [c for c in items if c not in judgments.columns]
    if missing:
        raise ValueError(f"judgments lack item columns {missing}")
    values = judgments[list(items)].astype("float64")
    grouped = values.groupby(judgments["statement_id"].to_numpy())
    return grouped.mean() if aggregator == "mean" else grouped.median()


def require_complete_rows(
    judgments: pd.DataFrame,
    items: Sequence[str],
    *,
    level: Literal["judgment", "statement"] = "statement",
    path: str | None = None,
) -> None:
    """Refuse, with an `InputError` naming the data, too few complete rows for PCA or factor analysis of `items`
    (they need more rows than items); the CLI calls this before any work instead of failing halfway."""
    frame = aggregate_items(judgments, items) if level == "statement" else judgments[list(items)]
    n_rows = len(frame.dropna())
    if n_rows <= len(items):
        rows = "statements" if level == "statement" else "judgments"
        raise InputError(
            f"PCA and factor analysis of {len(items)} items need more than {len(items)} {rows} with every item "
            f"answered; the data has {n_rows}",
            path=path,
        )


def _statement_table(data: CrowdData, item: str, aggregator: Aggregator, merge: str | None) -> pd.DataFrame:
    scores = aggregate_items(data.judgments, [item], aggregator)[item].rename("score")
    table = data.statements[["dataset", "gt_value"]].join(scores, how="inner").dropna(subset=["gt_value", "score"])
    table = table[table["dataset"].isin(["politifact", "abc"])].copy()
    table["level"] = table["gt_value"].astype(int)
    if merge is not None:
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {sorted(MERGES)} or None, got {merge!r}")
        pf = table["dataset"] == "politifact"
        table.loc[pf, "level"] = np.asarray(MERGES[merge])[table.loc[pf, "level"].to_numpy()]
    return table


@dataclass(frozen=True)
class ExternalAgreement:
    """Tables of `external_agreement` (all tidy, one row per dataset × level / pair / method / split)."""

    levels: pd.DataFrame  # dataset, level, n, mean, median, q1, q3
    adjacent: pd.DataFrame  # dataset, level_a, level_b, u, p, p_bonferroni, reject
    kruskal: pd.DataFrame  # dataset, h, p, n_levels
    correlations: pd.DataFrame  # dataset, method, r, p, n
    auc: pd.DataFrame  # dataset, split, auc, n_pos, n_neg

    def tables(self) -> dict[str, pd.DataFrame]:
        """The five tables by name."""
        return {k: getattr(self, k) for k in ("levels", "adjacent", "kruskal", "correlations", "auc")}


def external_agreement(
    data: CrowdData,
    *,
    item: str = "overall_truthfulness",
    aggregator: Aggregator = "mean",
    merge: str | None = None,
    alpha: float = 0.05,
) -> ExternalAgreement:
    """Crowd (aggregated `item` per statement) against the expert level, per dataset (PolitiFact, ABC).

    `merge` applies a PolitiFact level merge from `MERGES`; AUC splits are PolitiFact `012|345` (true side
    positive) and ABC positive (level 2) versus the rest, AUC = U / (n_pos · n_neg).
    """
    from statsmodels.stats.multitest import multipletests

    table = _statement_table(data, item, aggregator, merge)
    levels, adjacent, kruskal, correlations, auc = [], [], [], [], []
    for dataset, part in table.groupby("dataset", sort=True):
        by_level = {lvl: g["score"].to_numpy() for lvl, g in part.groupby("level", sort=True)}
        for lvl, x in by_level.items():
            q1, med, q3 = np.percentile(x, [25, 50, 75])
            levels.append(
                {"dataset": dataset, "level": lvl, "n": x.size, "mean": x.mean(), "median": med, "q1": q1, "q3": q3}
            )
        keys = sorted(by_level)
        pairs = [(a, b) for a, b in itertools.pairwise(keys)]
        rows = []
        for a, b in pairs:
            u, p = stats.mannwhitneyu(by_level[a], by_level[b], alternative="two-sided")
            rows.append({"dataset": dataset, "level_a": a, "level_b": b, "u": float(u), "p": float(p)})
        if rows:
            reject, corrected, _, _ = multipletests([r["p"] for r in rows], alpha=alpha, method="bonferroni")
            for r, c, rej in zip(rows, corrected, reject, strict=True):
                r.update(p_bonferroni=float(c), reject=bool(rej))
        adjacent.extend(rows)
        if len(keys) >= 2:
            h, p = stats.kruskal(*by_level.values())
            kruskal.append({"dataset": dataset, "h": float(h), "p": float(p), "n_levels": len(keys)})
        for method, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau), ("pearson", stats.pearsonr)):
            res = fn(part["score"], part["gt_value"])
            correlations.append(
                {"dataset": dataset, "method": method, "r": float(res[0]), "p": float(res[1]), "n": len(part)}
            )
        if dataset == "politifact":
            positive, split = part["gt_value"].to_numpy() >= 3, "012|345"
        else:
            positive, split = part["gt_value"].to_numpy() == part["gt_value"].max(), "positive|rest"
        scores = part["score"].to_numpy()
        if positive.any() and (~positive).any():
            u, _ = stats.mannwhitneyu(scores[positive], scores[~positive], alternative="two-sided")
            auc.append(
                {
                    "dataset": dataset,
                    "split": split,
                    "auc": float(u) / (positive.sum() * (~positive).sum()),
                    "n_pos": int(positive.sum()),
                    "n_neg": int((~positive).sum()),
                }
            )
    return ExternalAgreement(
        pd.DataFrame(levels),
        pd.DataFrame(adjacent),
        pd.DataFrame(kruskal),
        pd.DataFrame(correlations),
        pd.DataFrame(auc),
    )


def dimension_correlations(
    judgments: pd.DataFrame,
    items: Sequence[str] = ITEMS,
    *,
    level: Literal["judgment", "statement"] = "judgment",
    method: Literal["pearson", "spearman", "kendall"] = "pearson",
) -> pd.DataFrame:
    """Pairwise correlations of `items` (pairwise-complete rows), tidy: `item_a, item_b, r, p, n` (a < b)."""
    if level not in ("judgment", "statement"):
        raise ValueError(f"level must be 'judgment' or 'statement', got {level!r}")
    functions = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}
    if method not in functions:
        raise ValueError(f"method must be one of {sorted(functions)}, got {method!r}")
    frame = aggregate_items(judgments, items) if level == "statement" else judgments[list(items)].astype("float64")
    rows = []
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            pair = frame[[a, b]].dropna()
            res = functions[method](pair[a], pair[b])
            rows.append({"item_a": a, "item_b": b, "r": float(res[0]), "p": float(res[1]), "n": len(pair)})
    return pd.DataFrame(rows).assign(level=level, method=method)


def correlation_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Square symmetric matrix (unit diagonal) from a `dimension_correlations` table."""
    items = list(dict.fromkeys([*table["item_a"], *table["item_b"]]))
    matrix = pd.DataFrame(np.eye(len(items)), index=items, columns=items)
    for a, b, r in table[["item_a", "item_b", "r"]].itertuples(index=False):
        matrix.loc[a, b] = matrix.loc[b, a] = r
    return matrix


def dimension_pca(
    judgments: pd.DataFrame,
    items: Sequence[str] = DIMENSIONS,
    *,
    level: Literal["judgment", "statement"] = "statement",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PCA of the standardised items: `(components, loadings)`.

    `components`: `component, eigenvalue` (of the correlation matrix: they sum to the number of items, so the
    Kaiser rule reads directly), `explained, cumulative`; `loadings`: items x components (statsmodels
    `PCA(standardize=True)` loadings). Rows with a missing item are dropped.
    """
    from statsmodels.multivariate.pca import PCA

    frame = aggregate_items(judgments, items) if level == "statement" else judgments[list(items)].astype("float64")
    frame = frame.dropna()
    if len(frame) <= len(items):
        raise ValueError(f"PCA needs more complete rows than items; got {len(frame)} rows for {len(items)} items")
    pca = PCA(frame.to_numpy(), standardize=True, method="eig")
    eig = np.asarray(pca.eigenvals, dtype=float) / len(frame)  # eigenvalues of the correlation matrix (sum = p)
    names = [f"PC{i + 1}" for i in range(eig.size)]
    components = pd.DataFrame(
        {"component": names, "eigenvalue": eig, "explained": eig / eig.sum(), "cumulative": np.cumsum(eig) / eig.sum()}
    )
    loadings = pd.DataFrame(np.asarray(pca.loadings), index=list(items), columns=names)
    return components, loadings


#: The rotations `dimension_factors` accepts (statsmodels `FactorResults.rotate` methods that need no arguments).
FACTOR_ROTATIONS: tuple[str, ...] = (
    "varimax",
    "quartimax",
    "biquartimax",
    "equamax",
    "parsimax",
    "parsimony",
    "oblimin",
    "biquartimin",
    "promax",
)


def dimension_factors(
    judgments: pd.DataFrame,
    items: Sequence[str] = DIMENSIONS,
    *,
    n_factors: int = 2,
    level: Literal["judgment", "statement"] = "statement",
    method: Literal["ml", "pa"] = "ml",
    rotation: str | None = "varimax",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Factor analysis of the items' correlation matrix (statsmodels `Factor`), rotated (default varimax).

    Returns `(factors, loadings)`: `factors` has `factor, ss_loadings, explained` (share of the total variance,
    i.e. of the number of items); `loadings` is items x factors plus `communality` and `uniqueness`. Each factor's
    sign is set so that its largest absolute loading is positive and factors are ordered by `ss_loadings`, so
    results do not depend on the solver's arbitrary sign and order. Rows with a missing item are dropped.
    `method`: maximum likelihood (`ml`) or principal axis (`pa`).
    """
    from statsmodels.multivariate.factor import Factor

    if method not in ("ml", "pa"):
        raise ValueError(f"method must be 'ml' or 'pa', got {method!r}")
    if rotation is not None and rotation not in FACTOR_ROTATIONS:
        raise ValueError(f"rotation must be one of {FACTOR_ROTATIONS} or None, got {rotation!r}")
    if not 1 <= n_factors < len(items):
        raise ValueError(f"n_factors must be in [1, {len(items) - 1}] for {len(items)} items, got {n_factors}")
    frame = aggregate_items(judgments, items) if level == "statement" else judgments[list(items)].astype("float64")
    frame = frame.dropna()
    if len(frame) <= len(items):
        raise ValueError(f"factor analysis needs more complete rows than items; got {len(frame)} for {len(items)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter; uniqueness is reported
        result = Factor(frame.to_numpy(), n_factors, method=method).fit()
        if rotation is not None and n_factors > 1:
            result.rotate(rotation)
    loads = np.asarray(result.loadings, dtype=float).reshape(len(items), n_factors)
    signs = np.sign(loads[np.abs(loads).argmax(axis=0), np.arange(n_factors)])
    loads = loads * np.where(signs == 0, 1.0, signs)
    ss = (loads**2).sum(axis=0)
    order = np.argsort(-ss, kind="stable")
    loads, ss = loads[:, order], ss[order]
    names = [f"F{i + 1}" for i in range(n_factors)]
    loadings = pd.DataFrame(loads, index=list(items), columns=names)
    loadings["communality"] = (loads**2).sum(axis=1)
    loadings["uniqueness"] = np.asarray(result.uniqueness, dtype=float)
    factors = pd.DataFrame({"factor": names, "ss_loadings": ss, "explained": ss / len(items)})
    factors["cumulative"] = factors["explained"].cumsum()
    factors["rotation"] = rotation or "none"
    return factors, loadings


#: Host part of a URL (scheme and user info optional), for `evidence_sources`.
_HOST = r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/?#]*@)?([^/:?#\s]+)"


def evidence_sources(
    judgments: pd.DataFrame,
    *,
    column: str = "evidence_url",
    blocked: Sequence[str] = ("politifact", "abc.net.au"),
) -> pd.DataFrame:
    """Domain frequency table of the evidence URLs: `domain, n, share, n_workers, n_statements, blocked`.

    The domain is the URL's host, lower-cased, without a leading `www.`; `share` is over the judgments with a URL;
    `blocked` flags domains containing one of `blocked` (the experts' sites, filtered by the task's search engine).
    Sorted by `n` (descending), then domain.
    """
    if column not in judgments.columns:
        raise ValueError(f"judgments have no {column!r} column")
    urls = judgments[column].astype("string")
    host = urls.str.extract(_HOST, expand=False).str.lower().str.replace(r"^www\.", "", regex=True)
    frame = pd.DataFrame(
        {"domain": host, "worker_id": judgments["worker_id"], "statement_id": judgments["statement_id"]}
    ).dropna(subset=["domain"])
    columns = ["domain", "n", "share", "n_workers", "n_statements", "blocked"]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    table = (
        frame.groupby("domain", sort=False)
        .agg(n=("worker_id", "size"), n_workers=("worker_id", "nunique"), n_statements=("statement_id", "nunique"))
        .reset_index()
    )
    table["share"] = table["n"] / table["n"].sum()
    table["blocked"] = [any(b.lower() in d for b in blocked) for d in table["domain"]]
    return table.sort_values(["n", "domain"], ascending=[False, True], ignore_index=True)[columns]


def abc_block(judgments: pd.DataFrame) -> pd.Series:
    """Per worker, `first` when the worker's ABC statements sit at positions 0-2, else `last` (spec 2.2)."""
    abc = judgments[judgments["dataset"] == "abc"]
    first = abc.groupby("worker_id", sort=False)["position"].min() == 0
    return first.map({True: "first", False: "last"}).rename("block")


@dataclass(frozen=True)
class LearningCurve:
    """Tables of `learning_curve`."""

    per_position: pd.DataFrame  # block, position, n, mean_time, median_time, mae
    trends: pd.DataFrame  # block, outcome, rho, p, n
    mixed: pd.DataFrame  # term, coef, se, p (MixedLM fixed effects) plus the worker variance as "worker_var"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The three tables by name."""
        return {"per_position": self.per_position, "trends": self.trends, "mixed": self.mixed}


def learning_curve(data: CrowdData, *, time_column: str = "time_elapsed_s", log_time: bool = False) -> LearningCurve:
    """Time and quality against position in the HIT, stratified by ABC block; MixedLM with a worker effect.

    Quality is |OT − gt_norm| (MAE on the −2..+2 scale) on real statements; time uses every row with a time
    (gold rows included, as the spec's "all 2,200 rows"). The mixed model is `time ~ position + C(block)` with a
    random intercept per worker (statsmodels `MixedLM`, REML), `log(time)` when `log_time`.
    """
    import statsmodels.formula.api as smf

    j = data.judgments
    if time_column not in j.columns or j[time_column].isna().all():
        raise ValueError(f"judgments have no {time_column!r} values (the 16-column IPM file has no times)")
    frame = j[["worker_id", "statement_id", "position", "dataset", time_column, "overall_truthfulness"]].copy()
    frame = frame.join(abc_block(j), on="worker_id")
    frame["block"] = frame["block"].fillna("none")
    frame["time"] = frame[time_column].astype("float64")
    gt = data.statements["gt_norm"] if "gt_norm" in data.statements.columns else pd.Series(dtype=float)
    frame["abs_error"] = (
        frame["overall_truthfulness"].astype("float64") - frame["statement_id"].map(gt).astype("float64")
    ).abs()
    rows, trends = [], []
    for block, part in [*frame.groupby("block", sort=True), ("all", frame)]:
        g = part.groupby("position", sort=True)
        summary = pd.DataFrame(
            {
                "n": g.size(),
                "mean_time": g["time"].mean(),
                "median_time": g["time"].median(),
                "mae": g["abs_error"].mean(),
            }
        ).reset_index()
        rows.append(summary.assign(block=block))
        for outcome in ("time", "abs_error"):
            sub = part[["position", outcome]].dropna()
            if sub[outcome].nunique() > 1 and sub["position"].nunique() > 1:
                rho, p = stats.spearmanr(sub["position"], sub[outcome])
                trends.append({"block": block, "outcome": outcome, "rho": float(rho), "p": float(p), "n": len(sub)})
    per_position = pd.concat(rows, ignore_index=True)[["block", "position", "n", "mean_time", "median_time", "mae"]]
    model_frame = frame.dropna(subset=["time"]).copy()
    if log_time:
        model_frame["time"] = np.log(np.maximum(model_frame["time"], 1e-3))
    formula = "time ~ position + C(block)" if model_frame["block"].nunique() > 1 else "time ~ position"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the fit is reported with its standard errors
        fit = smf.mixedlm(formula, model_frame, groups=model_frame["worker_id"]).fit(reml=True)
    mixed = pd.DataFrame(
        {
            "term": fit.fe_params.index,
            "coef": fit.fe_params.to_numpy(),
            "se": fit.bse_fe.to_numpy(),
            "p": fit.pvalues[fit.fe_params.index].to_numpy(),
        }
    )
    mixed = pd.concat(
        [
            mixed,
            pd.DataFrame([{"term": "worker_var", "coef": float(fit.cov_re.iloc[0, 0]), "se": np.nan, "p": np.nan}]),
        ],
        ignore_index=True,
    )
    return LearningCurve(per_position, pd.DataFrame(trends), mixed)


#: Worker background factors of the IPM questionnaire (`workers` columns) and whether their codes are ordered.
#: Spearman's ρ is only meaningful for ordered codes; every factor gets Kruskal-Wallis across its groups.
BACKGROUND_FACTORS: dict[str, bool] = {
    "age_value": True,
    "school_value": True,
    "taxes_value": True,
    "political_views_value": True,
    "consideration_value": False,
    "southern_border_value": False,
    "environment_value": False,
    "crt_score": True,
}


@dataclass(frozen=True)
class WorkerBackground:
    """Tables of `worker_background`."""

    quality: pd.DataFrame  # worker_id, n, mae, bias, plus the background factors
    groups: pd.DataFrame  # factor, value, label, n_workers, mean, median, q1, q3
    tests: pd.DataFrame  # factor, ordered, n_workers, n_groups, h, p_kruskal, p_bonferroni, rho, p_spearman

    def tables(self) -> dict[str, pd.DataFrame]:
        """The three tables by name."""
        return {"quality": self.quality, "groups": self.groups, "tests": self.tests}


def worker_background(
    data: CrowdData,
    *,
    factors: Sequence[str] | None = None,
    item: str = "overall_truthfulness",
    metric: Literal["mae", "bias"] = "mae",
    min_group: int = 1,
    exclude_mismatch: bool = True,
) -> WorkerBackground:
    """Demographics and CRT score against judgment quality (spec 2.5 E, 7.6 `worker_background_effects`).

    Quality is per worker on real statements: `mae` = mean |item − gt_norm| (the learning curve's error, −2..+2
    scale), `bias` = mean (item − gt_norm) (leniency). Rows flagged `shown_level_mismatch` are left out by default:
    their worker saw another statement than the one whose expert level we compare with. Per factor (`workers`
    columns; default: the IPM questionnaire codes and `crt_score` present in the data) the tables give the
    quality per group, Kruskal-Wallis across groups with at least `min_group` workers, Bonferroni over the factors
    tested, and Spearman ρ between the code and the quality for ordered factors.
    """
    if metric not in ("mae", "bias"):
        raise ValueError(f"metric must be 'mae' or 'bias', got {metric!r}")
    if min_group < 1:
        raise ValueError(f"min_group must be >= 1, got {min_group}")
    j = data.judgments
    if item not in j.columns:
        raise ValueError(f"item {item!r} is not a judgment column")
    if "gt_norm" not in data.statements.columns:
        raise ValueError("statements have no gt_norm (expert labels): worker quality cannot be measured")
    chosen = [f for f in BACKGROUND_FACTORS if f in data.workers.columns] if factors is None else list(factors)
    unknown = [f for f in chosen if f not in data.workers.columns]
    if unknown:
        raise ValueError(f"factors {unknown} are not workers columns; have {list(data.workers.columns)}")
    if not chosen:
        raise ValueError("no background factor in the workers table (the 16-column IPM file has no questionnaire)")
    rows = j[j["dataset"].isin(["politifact", "abc"])]
    if exclude_mismatch and "shown_level_mismatch" in rows.columns:
        mismatch = rows["shown_level_mismatch"].fillna(False).to_numpy(dtype=bool)
        if mismatch.any():
            logger.info("worker_background: %d shown_level_mismatch row(s) left out", int(mismatch.sum()))
        rows = rows[~mismatch]
    error = rows[item].astype("float64") - rows["statement_id"].map(data.statements["gt_norm"]).astype("float64")
    frame = pd.DataFrame({"worker_id": rows["worker_id"].to_numpy(), "bias": error.to_numpy()}).dropna()
    frame["mae"] = frame["bias"].abs()
    g = frame.groupby("worker_id", sort=False)
    quality = pd.DataFrame({"n": g.size(), "mae": g["mae"].mean(), "bias": g["bias"].mean()})
    quality = quality.join(data.workers[chosen], how="left")
    group_rows, tests = [], []
    for factor in chosen:
        sub = quality[[factor, metric]].dropna()
        label_column = factor.removesuffix("_value") + "_answer"
        labels = data.workers[label_column] if label_column in data.workers.columns else None
        samples = []
        for value, part in sub.groupby(factor, sort=True):
            scores = part[metric].to_numpy()
            label = str(labels.loc[part.index].mode().iloc[0]) if labels is not None else str(value)
            group_rows.append(
                {
                    "factor": factor,
                    "value": float(value),
                    "label": label,
                    "n_workers": len(scores),
                    "mean": float(scores.mean()),
                    "median": float(np.median(scores)),
                    "q1": float(np.quantile(scores, 0.25)),
                    "q3": float(np.quantile(scores, 0.75)),
                }
            )
            if len(scores) >= min_group:
                samples.append(scores)
        row: dict[str, object] = {
            "factor": factor,
            "ordered": BACKGROUND_FACTORS.get(factor, True),
            "n_workers": len(sub),
            "n_groups": len(samples),
            "h": np.nan,
            "p_kruskal": np.nan,
            "rho": np.nan,
            "p_spearman": np.nan,
        }
        if len(samples) >= 2 and len(np.unique(np.concatenate(samples))) > 1:
            h, p = stats.kruskal(*samples)
            row["h"], row["p_kruskal"] = float(h), float(p)
        if row["ordered"] and sub[factor].nunique() > 1 and sub[metric].nunique() > 1:
            rho, p = stats.spearmanr(sub[factor], sub[metric])
            row["rho"], row["p_spearman"] = float(rho), float(p)
        tests.append(row)
    test_table = pd.DataFrame(tests)
    tested = test_table["p_kruskal"].notna()
    test_table["p_bonferroni"] = np.nan
    if tested.any():
        from statsmodels.stats.multitest import multipletests

        test_table.loc[tested, "p_bonferroni"] = multipletests(
            test_table.loc[tested, "p_kruskal"], method="bonferroni"
        )[1]
    columns = ["factor", "ordered", "n_workers", "n_groups", "h", "p_kruskal", "p_bonferroni", "rho", "p_spearman"]
    return WorkerBackground(
        quality=quality.reset_index(names="worker_id"),
        groups=pd.DataFrame(group_rows),
        tests=test_table[columns],
    )


def crowd_expert_agreement(
    data: CrowdData,
    *,
    item: str = "overall_truthfulness",
    aggregator: Aggregator = "mean",
    datasets: Sequence[str] = ("politifact", "abc"),
) -> pd.DataFrame:
    """Agreement between the aggregated crowd and the experts, treated as two coders of each statement.

    The per-statement `aggregator` of `item` is mapped linearly from the crowd's scale range (`data.scale`, e.g.
    -2..2 or 0..5) onto the expert's k levels 0..k-1 and rounded to the nearest level (`crowd_level`). Per dataset:
    Krippendorff's alpha (interval, ordinal) between `crowd_level` and the expert level, alpha (interval) with the
    unrounded crowd value, Cohen's kappa weighted linearly and quadratically over the k levels, and the share of
    exact matches. The rounding is ours: the paper reports crowd-vs-expert correlations (see `external_agreement`).
    """
    from truth_crowd.agreement import cohen_kappa, krippendorff_alpha

    scale = data.scale
    if scale.magnitude_estimation or scale.nominal:
        raise ValueError(f"crowd_expert_agreement needs a bounded numeric scale, not {scale.describe()}")
    low, high = float(scale.low), float(scale.high)
    crowd = aggregate_items(data.judgments, [item], aggregator)[item]
    rows = []
    for dataset in datasets:
        statements = data.statements[(data.statements["dataset"] == dataset) & data.statements["gt_value"].notna()]
        joined = statements[["gt_value", "gt_scale"]].join(crowd.rename("crowd"), how="inner").dropna()
        if joined.empty:
            continue
        k = int(joined["gt_scale"].iloc[0])
        expert = joined["gt_value"].to_numpy(dtype=float)
        continuous = (joined["crowd"].to_numpy(dtype=float) - low) / (high - low) * (k - 1)
        level = np.clip(np.rint(continuous), 0, k - 1)
        domain = list(range(k))
        rows.append(
            {
                "dataset": dataset,
                "n": len(joined),
                "expert_levels": k,
                "alpha_interval": krippendorff_alpha(np.vstack([level, expert]), level="interval", value_domain=domain),
                "alpha_ordinal": krippendorff_alpha(np.vstack([level, expert]), level="ordinal", value_domain=domain),
                "alpha_interval_unrounded": krippendorff_alpha(np.vstack([continuous, expert]), level="interval"),
                "kappa_linear": cohen_kappa(level.astype(int), expert.astype(int), weights="linear", categories=domain),
                "kappa_quadratic": cohen_kappa(
                    level.astype(int), expert.astype(int), weights="quadratic", categories=domain
                ),
                "exact": float((level == expert).mean()),
            }
        )
    return pd.DataFrame(rows)
