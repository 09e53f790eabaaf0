"""The quick reproduction that `repro reproduce` runs for truth-crowd (entry point `repro.reproductions`).

Embedded default data is the seeded simulator, so the reproduction always runs: it checks that the simulated
IPM-like design gives every statement exactly 10 judgments, and that Dawid-Skene beats majority vote when workers
differ in reliability. When the project data is found (`$REPRO_SHARED_DATA` or `../shared/data` beside the
repository) it also loads the released IPM2021 file and compares every design count (the study design the paper
describes, counted in the authors' released file) with ours, and reports Krippendorff's alpha and Phi of overall
truthfulness, Spearman rho and AUC against the experts, and the MixedLM learning slope (*measured*: compare them
with the paper's agreement and crowd-vs-expert results); the SIGIR 2020 six-level crowd file (`S6.csv`), when
present, adds its design counts, alpha and crowd-vs-expert rows through `load_sigir2020_crowd`. Files are found by
`truth_crowd.released_data.find_data_file` (`$REPRO_SHARED_DATA`, the copy `truth-crowd data fetch` downloaded, or
`../shared/data`). Without them every real-data row says *needs data* and how to get it (`HOW_TO_GET_DATA`, the one
place for that message). About 10 s in all.
"""

from __future__ import annotations

import logging

import numpy as np

from repro_core.report import ClaimResult, ReproductionContext
from repro_core.seeding import derive_seed
from truth_crowd.aggregation import DawidSkene, majority_vote
from truth_crowd.agreement import alpha_by_item
from truth_crowd.analyses import external_agreement, learning_curve
from truth_crowd.describe import design_counts
from truth_crowd.io import load_ipm2021, load_sigir2020_crowd
from truth_crowd.phi import phi_by_item
from truth_crowd.released_data import HOW_TO_GET_DATA, find_data_file
from truth_crowd.simulate import simulate_answers, simulate_crowd

__all__ = ["DESIGN_CLAIMS", "HOW_TO_GET_DATA", "MEASURED_CLAIMS", "SIGIR2020_CLAIMS", "quick"]

logger = logging.getLogger(__name__)

# HOW_TO_GET_DATA (imported above from truth_crowd.released_data, where the loaders use it too) is how a user gets
# the real data, said once: every row that needs it points there.
_PAPER = "Soprano et al. 2021 (arXiv 2108.01222)"
_DESIGN = f"the study design of {_PAPER}, counted in the authors' released file (commit 7fbe9e7)"
#: (claim, key into design_counts (a path for nested entries), expected count): the paper's design (180 statements,
#: 200 workers, 10 judgments per statement, 11 items per HIT), counted in the released file.
DESIGN_CLAIMS: tuple[tuple[str, tuple[str | int, ...], int], ...] = (
    ("rows of IPM2021/multidimensional.csv", ("rows",), 2200),
    ("columns of IPM2021/multidimensional.csv", ("source_columns",), 93),
    ("workers (one HIT each)", ("workers",), 200),
    ("real statements", ("statements",), 180),
    ("PolitiFact statements", ("statements_by_dataset", "politifact"), 120),
    ("ABC statements", ("statements_by_dataset", "abc"), 60),
    ("items per HIT", ("items_per_hit",), 11),
    ("judgments of real statements (raw)", ("judgments_real",), 1800),
    ("gold judgments (HIGH, LOW)", ("judgments_gold",), 400),
    ("judgments on real statements after the canonical quality filter", ("canonical_rows",), 1799),
    ("doc_names with 10 judgments (raw)", ("judgments_per_statement", 10), 174),
    ("doc_names with 11 judgments (raw)", ("judgments_per_statement", 11), 3),
    ("doc_names with 9 judgments (raw)", ("judgments_per_statement", 9), 3),
    ("doc_names with 10 judgments (canonical filter)", ("canonical_judgments_per_statement", 10), 173),
    ("doc_names with 11 judgments (canonical filter)", ("canonical_judgments_per_statement", 11), 3),
    ("doc_names with 9 judgments (canonical filter)", ("canonical_judgments_per_statement", 9), 4),
    ("individual values on real statements", ("values_real",), 16200),
    ("HITs with 2 Labor + 1 Liberal ABC statements", ("hit_composition_abc", "2 Labor + 1 Liberal"), 101),
    ("HITs with 1 Labor + 2 Liberal ABC statements", ("hit_composition_abc", "1 Labor + 2 Liberal"), 99),
    ("HITs with the ABC block first", ("abc_block_first",), 60),
    ("HITs with the ABC block last", ("abc_block_last",), 140),
)


def _lookup(counts: dict, path: tuple[str | int, ...]) -> int | None:
    value: object = counts
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if value is None else int(value)  # type: ignore[call-overload]


def _simulated_claims(seed: int) -> list[ClaimResult]:
    results: list[ClaimResult] = []
    crowd = simulate_crowd(seed=derive_seed(seed, "design"))
    counts = design_counts(crowd.data)
    results.append(
        ClaimResult(
            "simulated IPM-like run (embedded default data): statements with exactly 10 judgments",
            metric="statements",
            paper_value=180,
            our_value=counts["canonical_judgments_per_statement"].get(10, 0),
            tolerance=0,
            note="simulator design check (the paper's design: 180 statements x 10 judgments)",
        )
    )
    accuracies = {"ds": [], "mv": []}
    correlations = []
    for i in range(5):
        sim = simulate_answers(
            n_tasks=300, n_workers=40, n_labels=3, answers_per_task=5, seed=derive_seed(seed, "answers", i)
        )
        model = DawidSkene().fit(sim.answers)
        mv = majority_vote(sim.answers, tie_break="random", seed=derive_seed(seed, "ties", i))
        accuracies["ds"].append(float((model.labels_.reindex(sim.truth.index) == sim.truth).mean()))
        accuracies["mv"].append(float((mv.reindex(sim.truth.index) == sim.truth).mean()))
        skills = model.skills_.reindex(sim.worker_accuracy.index)
        correlations.append(float(np.corrcoef(skills, sim.worker_accuracy)[0, 1]))
    gain = float(np.mean(accuracies["ds"]) - np.mean(accuracies["mv"]))
    results.append(
        ClaimResult(
            "simulated workers of mixed reliability: Dawid-Skene accuracy minus majority-vote accuracy",
            metric="accuracy gain",
            our_value=round(gain, 4),
            note=f"5 seeded runs, 300 tasks x 5 answers, 3 labels, 40 workers (50% reliable, 30% noisy, 20% spammers); "
            f"DS {np.mean(accuracies['ds']):.3f} vs MV {np.mean(accuracies['mv']):.3f}; a check of our "
            "implementation, not a claim of the paper",
        )
    )
    results.append(
        ClaimResult(
            "simulated workers: Pearson r between Dawid-Skene skills and true worker accuracy",
            metric="Pearson r",
            our_value=round(float(np.mean(correlations)), 4),
            note="mean over the same 5 runs; a check of our implementation, not a claim of the paper",
        )
    )
    return results


#: (claim, metric) of the rows measured on the IPM2021 file (no paper value to compare with automatically).
MEASURED_CLAIMS: tuple[tuple[str, str], ...] = (
    *(
        (f"Krippendorff's alpha ({level}) of overall truthfulness, {group}, canonical filter", "alpha")
        for level in ("interval", "ordinal")
        for group in ("politifact", "abc", "ALL")
    ),
    *(
        (f"Phi (posterior mean, Metropolis) of overall truthfulness, {group}, canonical filter", "Phi")
        for group in ("politifact", "abc", "ALL")
    ),
    *(
        (f"Spearman rho, mean-aggregated overall truthfulness vs expert level, {d}", "Spearman rho")
        for d in ("politifact", "abc")
    ),
    ("AUC of mean overall truthfulness, politifact 012|345", "AUC"),
    ("AUC of mean overall truthfulness, abc positive|rest", "AUC"),
    ("learning effect: MixedLM slope of time per statement on position (s per position)", "seconds"),
)
_SIGIR = "the SIGIR 2020 study (Roitero et al. 2020: the same 180 statements, six-level scale S6)"
#: (claim, metric, paper value or None) of the SIGIR 2020 S6 rows.
SIGIR2020_CLAIMS: tuple[tuple[str, str, int | None], ...] = (
    ("SIGIR 2020 S6: real statements (PolitiFact + ABC)", "count", 180),
    ("SIGIR 2020 S6: workers (HITs)", "count", None),
    ("SIGIR 2020 S6: real / gold judgments", "count", None),
    ("SIGIR 2020 S6: statements with 10 judgments", "count", None),
    *(
        (f"SIGIR 2020 S6: Krippendorff's alpha (interval) of the truth level, {g}", "alpha", None)
        for g in ("politifact", "abc", "ALL")
    ),
    *(
        (f"SIGIR 2020 S6: Spearman rho, mean truth level vs expert level, {d}", "Spearman rho", None)
        for d in ("politifact", "abc")
    ),
)


def _needs_data(claims: list[tuple[str, str, object]], what: str) -> list[ClaimResult]:
    return [
        ClaimResult.needs_data(
            claim,
            metric=metric,
            paper_value=value,  # type: ignore[arg-type]
            note=f"{what} not found (not shipped with the package: licence)",
            how_to_get=HOW_TO_GET_DATA,
        )
        for claim, metric, value in claims
    ]


def _sigir_claims() -> list[ClaimResult]:
    """Design counts, alpha and crowd-vs-expert correlations of the SIGIR 2020 S6 file, via the new loader."""
    path = find_data_file("SIGIR2020/crowd/S6.csv")
    if path is None:
        return _needs_data(list(SIGIR2020_CLAIMS), "SIGIR2020/crowd/S6.csv")
    data = load_sigir2020_crowd(path)
    counts = design_counts(data)
    real = data.real()
    note = f"counted in the released S6.csv of {_SIGIR}, loaded by load_sigir2020_crowd"
    per_statement = counts["canonical_judgments_per_statement"]
    results = [
        ClaimResult(
            SIGIR2020_CLAIMS[0][0],
            metric="count",
            paper_value=180,
            our_value=counts["statements"],
            tolerance=0,
            note=note,
        ),
        ClaimResult(SIGIR2020_CLAIMS[1][0], metric="count", our_value=counts["workers"], note=note),
        ClaimResult(
            SIGIR2020_CLAIMS[2][0],
            metric="count",
            our_value=f"{counts['judgments_real']} / {counts['judgments_gold']}",
            note=note,
        ),
        ClaimResult(
            SIGIR2020_CLAIMS[3][0],
            metric="count",
            our_value=per_statement.get(10, 0),
            note=f"{note}; the others: " + ", ".join(f"{n} with {k}" for k, n in per_statement.items() if k != 10),
        ),
    ]
    table = alpha_by_item(real.judgments, ["overall_truthfulness"], value_domain=data.scale.domain)
    for row in table.itertuples():
        results.append(
            ClaimResult(
                f"SIGIR 2020 S6: Krippendorff's alpha (interval) of the truth level, {row.group}",
                metric="alpha",
                our_value=round(float(row.alpha), 4),
                note=f"measured on {_SIGIR}, gold rows dropped; compare with its agreement results",
            )
        )
    ext = external_agreement(real)
    for row in ext.correlations[ext.correlations["method"] == "spearman"].itertuples():
        results.append(
            ClaimResult(
                f"SIGIR 2020 S6: Spearman rho, mean truth level vs expert level, {row.dataset}",
                metric="Spearman rho",
                our_value=round(float(row.r), 4),
                note=f"{row.n} statements, p = {row.p:.2g}; measured on {_SIGIR}",
            )
        )
    return results


def _real_claims() -> list[ClaimResult]:
    path = find_data_file("IPM2021/multidimensional.csv")
    if path is None:
        return (
            _needs_data(
                [(claim, "count", value) for claim, _, value in DESIGN_CLAIMS]
                + [(claim, metric, None) for claim, metric in MEASURED_CLAIMS],
                "IPM2021/multidimensional.csv",
            )
            + _sigir_claims()
        )
    data = load_ipm2021(path)
    counts = design_counts(data)
    results = [
        ClaimResult(claim, metric="count", paper_value=value, our_value=_lookup(counts, key), tolerance=0, note=_DESIGN)
        for claim, key, value in DESIGN_CLAIMS
    ]
    real = data.real()
    table = alpha_by_item(real.judgments, ["overall_truthfulness"], levels=("interval", "ordinal"))
    for row in table.itertuples():
        results.append(
            ClaimResult(
                f"Krippendorff's alpha ({row.level}) of overall truthfulness, {row.group}, canonical filter",
                metric="alpha",
                our_value=round(float(row.alpha), 4),
                note=f"compare with the internal-agreement (Krippendorff's alpha) results of {_PAPER}; ours "
                "equals the krippendorff package to 1e-9",
            )
        )
    phi = phi_by_item(real.judgments, ["overall_truthfulness"])
    for row in phi.itertuples():
        results.append(
            ClaimResult(
                f"Phi (posterior mean, Metropolis) of overall truthfulness, {row.group}, canonical filter",
                metric="Phi",
                our_value=round(float(row.phi), 4),
                note=f"Phi at the posterior mean of tau ({row.tau:.3f}) as the reference reports it, 95% HPD "
                f"{row.low:.3f}-{row.high:.3f}, R-hat {row.rhat:.3f}; MLE {row.phi_mle:.3f}; our sampler, not "
                f"pymc3's; compare with the internal-agreement (Phi) results of {_PAPER}",
            )
        )
    ext = external_agreement(real)
    for row in ext.correlations[ext.correlations["method"] == "spearman"].itertuples():
        results.append(
            ClaimResult(
                f"Spearman rho, mean-aggregated overall truthfulness vs expert level, {row.dataset}",
                metric="Spearman rho",
                our_value=round(float(row.r), 4),
                note=f"{row.n} statements, p = {row.p:.2g}; compare with the crowd-vs-expert (external "
                f"agreement) results of {_PAPER}",
            )
        )
    for row in ext.auc.itertuples():
        results.append(
            ClaimResult(
                f"AUC of mean overall truthfulness, {row.dataset} {row.split}",
                metric="AUC",
                our_value=round(float(row.auc), 4),
                note=f"compare with the crowd-vs-expert (external agreement) results of {_PAPER}",
            )
        )
    slope = learning_curve(data).mixed.set_index("term").loc["position"]
    results.append(
        ClaimResult(
            "learning effect: MixedLM slope of time per statement on position (s per position)",
            metric="seconds",
            our_value=round(float(slope["coef"]), 3),
            note=f"time ~ position + ABC block + (1 | worker), all 2,200 rows; se {slope['se']:.3f}; the direction "
            "(time falls with position) is the group's claim, the value is ours",
        )
    )
    return results + _sigir_claims()


def quick(context: ReproductionContext) -> list[ClaimResult]:
    """Simulator checks always; the design counts and agreement on the real IPM2021 file when it is present."""
    return _simulated_claims(context.seed) + _real_claims()
