"""The paper's analyses of trained models (spec 2.4, 4.4-4.9): each returns numbers (a frozen dataclass) and has a
matplotlib figure (optional dependency).

- `attribution`: counterfactual logit attribution (spec 4.5) and exact direct logit attribution per head and source.
- `attention`: the attention "DAG" of which operand digits each answer step reads (4.6), edge knockout.
- `fourier`: Fourier-basis R^2 of digit representations (4.7).
- `geometry`: PCA, the pentagonal prism (4.8) and Minkowski sums in attention-head outputs (4.9).
- running-sum probes live in `mult_probe.probes` (4.4).

`run_analysis(name, model, pairs, k, l)` runs one by its CLI name and returns `(result, summary, figure_fn)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mult_probe.analysis._common import LoadedRun, load_run, token_roles
from mult_probe.analysis.attention import AttentionGraph, attention_graph, edge_knockout, plot_attention_graph
from mult_probe.analysis.attribution import (
    AttributionResult,
    DirectAttributionResult,
    direct_logit_attribution,
    logit_attribution,
    plot_attribution,
    plot_direct_attribution,
)
from mult_probe.analysis.fourier import FourierResult, fourier_analysis, fourier_cumulative_r2, fourier_r2, plot_fourier
from mult_probe.analysis.geometry import (
    MinkowskiResult,
    PrismResult,
    minkowski_scores,
    minkowski_structure,
    pca,
    plot_minkowski,
    plot_prism,
    prism_analysis,
    prism_scores,
)
from mult_probe.model import Transformer
from repro_core.errors import ConfigError

__all__ = [
    "ANALYSES",
    "AttentionGraph",
    "AttributionResult",
    "DirectAttributionResult",
    "FourierResult",
    "LoadedRun",
    "MinkowskiResult",
    "PrismResult",
    "attention_graph",
    "direct_logit_attribution",
    "edge_knockout",
    "fourier_analysis",
    "fourier_cumulative_r2",
    "fourier_r2",
    "load_run",
    "logit_attribution",
    "minkowski_scores",
    "minkowski_structure",
    "pca",
    "plot_attention_graph",
    "plot_attribution",
    "plot_direct_attribution",
    "plot_fourier",
    "plot_minkowski",
    "plot_prism",
    "prism_analysis",
    "prism_scores",
    "run_analysis",
    "token_roles",
]

#: Analysis names accepted by `run_analysis` and `mult-probe analyze`.
ANALYSES = ("attrib", "dla", "probe", "dag", "fourier", "prism", "minkowski")


def _rounded(values: Any, digits: int = 4) -> Any:
    return np.round(np.asarray(values, dtype=np.float64), digits)


def run_analysis(
    name: str, model: Transformer, pairs: np.ndarray, k: int, l: int, *, seed: int = 99
) -> tuple[Any, dict[str, Any], Callable[[], Any]]:
    """Run analysis `name` on `pairs`; returns (full result, JSON-able headline numbers, a figure factory)."""
    if name == "attrib":
        attrib = logit_attribution(model, pairs, k, l, seed=seed)
        summary = {
            "inputs": attrib.inputs,
            "outputs": attrib.outputs,
            "delta": _rounded(attrib.delta),
            "band_mean": attrib.band_mean,
            "below_band_mean": attrib.below_band_mean,
            "n": attrib.n,
        }
        return attrib, summary, lambda: plot_attribution(attrib)
    if name == "dla":
        dla = direct_logit_attribution(model, pairs, k, l)
        summary = {
            "components": dla.components,
            "outputs": dla.outputs,
            "contributions": _rounded(dla.contributions),
            "logit_diff": _rounded(dla.logit_diff),
            "max_abs_error": dla.max_abs_error,
            "n": dla.n,
        }
        return dla, summary, lambda: plot_direct_attribution(dla)
    if name == "probe":
        from mult_probe.probes import fit_running_sum_probes, plot_probe_mae

        points = ("hook_resid_mid", "hook_resid_post")
        hooks = tuple(f"blocks.{layer}.{point}" for layer in range(model.cfg.n_layers) for point in points)
        probe = fit_running_sum_probes(model, pairs, k, l, hooks=hooks)
        return probe, probe.to_dict(), lambda: plot_probe_mae(probe)
    if name == "dag":
        graph = attention_graph(model, pairs, k, l)
        summary = {
            "pair_purity": _rounded(graph.pair_purity),
            "answer_mass": _rounded(graph.answer_mass),
            "coverage": _rounded(graph.coverage),
            "extra_pairs": graph.extra_pairs,
            "n_edges": len(graph.edges),
            "threshold": graph.threshold,
            "n": graph.n,
        }
        return graph, summary, lambda: plot_attention_graph(graph)
    if name == "fourier":
        fourier = fourier_analysis(model, pairs, k, l, step=min(2, k + l - 1))
        summary = {
            "objects": fourier.objects,
            "r2": _rounded(fourier.r2),
            "cumulative": _rounded(fourier.cumulative),
            "step": fourier.step,
        }
        return fourier, summary, lambda: plot_fourier(fourier)
    if name == "prism":
        prism = prism_analysis(model, pairs, k, l, step=min(2, k + l - 1))
        summary = {
            "parity_corr": prism.parity_corr,
            "pentagon_alignment": prism.pentagon_alignment,
            "explained_variance_ratio": _rounded(prism.pca.explained_variance_ratio),
        }
        return prism, summary, lambda: plot_prism(prism)
    if name == "minkowski":
        digit = min(1, k - 1, l - 1)
        mink = minkowski_scores(
            model, pairs, k, l, step=min(2, k + l - 1), global_digit=f"b{digit}", local_digit=f"a{digit}"
        )
        summary = {
            "layer": mink.layer,
            "step": mink.step,
            "global_digit": mink.global_digit,
            "local_digit": mink.local_digit,
            "best_head": mink.best_head,
            "heads": mink.heads,
            "attention": _rounded(mink.attention),
            "reconstruction_r2": _rounded(mink.reconstruction_r2),
            "n": mink.n,
        }
        return mink, summary, lambda: plot_minkowski(mink)
    raise ConfigError(f"analysis: unknown {name!r}; choose from {', '.join(ANALYSES)}")
