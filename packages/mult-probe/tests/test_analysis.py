"""Analyses on tiny seeded and hand-built models: shapes, exact invariants, planted structure and figures."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mult_probe.analysis import (
    attention_graph,
    direct_logit_attribution,
    edge_knockout,
    fourier_analysis,
    fourier_cumulative_r2,
    fourier_r2,
    logit_attribution,
    minkowski_scores,
    minkowski_structure,
    pca,
    prism_analysis,
    prism_scores,
    run_analysis,
)
from mult_probe.analysis.attribution import _counterfactual_digits
from mult_probe.analysis.fourier import fourier_basis
from mult_probe.data import encode_nocot, generate_operands
from mult_probe.model import ModelConfig, Transformer
from repro_core.errors import ConfigError, InputError
from repro_core.optional import has_module

K = 2
PAIRS = generate_operands(K, n=120, seed=3)


@pytest.fixture(scope="module")
def model() -> Iterator[Transformer]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster for a tiny model on a loaded machine; restored below
    yield Transformer(ModelConfig.tiny(d_model=32, n_ctx=32), generator=torch.Generator().manual_seed(0)).eval()
    torch.set_num_threads(threads)


# --- Fourier ---------------------------------------------------------------------------------------------------


@given(st.integers(0, 2**32 - 1))
def test_exact_fourier_rows_have_r2_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(7, 6)) @ fourier_basis().T  # [7, 10] in the span of {0, 1, 2, 5}
    median, per_row = fourier_r2(rows)
    assert median == pytest.approx(1.0, abs=1e-9) and np.allclose(per_row, 1.0)


def test_fourier_r2_of_random_rows_is_low_and_cumulative_ends_at_one() -> None:
    rows = np.random.default_rng(0).normal(size=(400, 10))
    median, _ = fourier_r2(rows)
    assert 0.3 < median < 0.8  # 5 of 9 non-constant dimensions: ~0.56 expected
    curve = fourier_cumulative_r2(rows)
    assert curve[0] == pytest.approx(0.0, abs=1e-12) and curve[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve) >= -1e-12)
    parity_only = np.cos(np.pi * np.arange(10))[None] * np.arange(1, 4)[:, None]
    assert fourier_r2(parity_only, (0, 5))[0] == pytest.approx(1.0)
    assert np.isnan(fourier_r2(np.ones((2, 10)))[0])
    with pytest.raises(ConfigError, match="frequencies"):
        fourier_basis((0, 6))
    with pytest.raises(ValueError, match="rows"):
        fourier_r2(np.ones((3, 9)))


def test_fourier_analysis_of_a_model(model: Transformer) -> None:
    result = fourier_analysis(model, PAIRS, K)
    assert result.objects == ("embed", "mlp_out", "unembed", "resid_final")
    assert result.n_rows == (32, 128, 32, len(PAIRS)) and result.cumulative.shape == (4, 6)
    assert np.allclose(result.cumulative[:, -1], 1.0) and np.all((result.r2 > 0) & (result.r2 < 1))


# --- geometry --------------------------------------------------------------------------------------------------


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_pca_recovers_a_planted_subspace() -> None:
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(300, 2)) * [3.0, 1.0]
    basis = _rotation(6, 2)[:2]
    result = pca(latent @ basis + 5.0, 2)
    assert np.allclose(result.explained_variance_ratio.sum(), 1.0)
    assert np.allclose(result.components @ result.components.T, np.eye(2), atol=1e-10)
    assert np.allclose(np.abs(result.components[0] @ basis[0]), 1.0, atol=1e-2)
    with pytest.raises(ConfigError, match="n_components"):
        pca(latent, 3)


def test_minkowski_structure_of_a_constructed_minkowski_sum() -> None:
    """alpha A_i + (1 - alpha) B_j with B a rotated, scaled copy of A: additive, same shape at both scales."""
    rng = np.random.default_rng(4)
    a_cfg = rng.normal(size=(10, 8))
    b_cfg = 3.0 * a_cfg @ _rotation(8, 5)
    a = rng.integers(0, 10, size=2000)
    b = rng.integers(0, 10, size=2000)
    alpha = 0.3
    points = alpha * a_cfg[a] + (1 - alpha) * b_cfg[b] + 1e-3 * rng.normal(size=(2000, 8))
    scores = minkowski_structure(points, b, a)
    assert scores.additive_r2 > 0.9999 and scores.procrustes > 0.999
    assert scores.global_r2 > 0.95 and scores.local_r2_within > 0.99  # b dominates; a explains what is left
    unrelated = minkowski_structure(points, b, rng.permutation(a))
    assert unrelated.local_r2_within < 0.05
    noise = minkowski_structure(rng.normal(size=(2000, 8)), b, a)
    assert noise.additive_r2 < 0.05


def test_prism_scores_of_a_constructed_prism() -> None:
    digits = np.arange(1000) % 10
    angle = 4 * np.pi * digits / 10
    prism = np.stack([3.0 * (-1.0) ** digits, np.cos(angle), np.sin(angle)], axis=1)
    states = np.concatenate([prism, np.zeros((1000, 5))], axis=1) @ _rotation(8, 6)
    states += 1e-3 * np.random.default_rng(7).normal(size=states.shape)
    result = prism_scores(states, digits)
    assert result.parity_corr > 0.999 and result.pentagon_alignment > 0.999
    shuffled = prism_scores(states, np.random.default_rng(8).permutation(digits))
    assert shuffled.parity_corr < 0.2 and shuffled.pentagon_alignment < 0.5


def test_model_geometry_shapes(model: Transformer) -> None:
    mink = minkowski_scores(model, PAIRS, K, step=2)
    assert len(mink.heads) == 4 and mink.attention.shape == (4, 2) and mink.projected.shape == (len(PAIRS), 3)
    assert np.all(mink.reconstruction_r2 <= 1.0) and 0 <= mink.best_head < 4
    assert prism_analysis(model, PAIRS, K).pca.projected.shape == (len(PAIRS), 3)
    with pytest.raises(ConfigError, match="digit"):
        minkowski_scores(model, PAIRS, K, global_digit="b5")


# --- attention graph -------------------------------------------------------------------------------------------


def test_attention_rows_sum_to_one_and_shapes(model: Transformer) -> None:
    graph = attention_graph(model, PAIRS, K, threshold=0.2)
    n_tokens = encode_nocot(PAIRS[:1], K).input_ids.shape[1]
    assert graph.pattern.shape == (2, 4, 2 * K, n_tokens) and len(graph.roles) == n_tokens
    assert np.allclose(graph.pattern.sum(-1), 1.0, atol=1e-5)
    assert all(e.weight >= 0.2 and graph.roles[e.source_position] == e.source for e in graph.edges)
    assert np.all((graph.coverage >= 0) & (graph.coverage <= 1)) and np.all(graph.pair_purity <= 1 + 1e-6)
    with pytest.raises(ConfigError, match="threshold"):
        attention_graph(model, PAIRS, K, threshold=0.0)
    with pytest.raises(InputError, match="pairs"):
        attention_graph(model, PAIRS * 10, K)


def test_planted_binary_tree_is_recovered(model: Transformer) -> None:
    """Layer 0 caches a_i b_j with i + j = s at step s; layer 1 at step t reads every step s <= t: coverage 1."""
    batch = encode_nocot(PAIRS, K)
    steps = batch.predict_positions
    cached = {0: [(0, 0)], 1: [(0, 1), (1, 0)], 2: [(1, 1)], 3: [(1, 1)]}  # pairs per step (<= 2 heads)

    def layer0(pattern: torch.Tensor, hook: object) -> torch.Tensor:
        pattern = pattern.clone()
        for s, pairs in cached.items():
            for head, (i, j) in enumerate(pairs):
                pattern[:, head, steps[s]] = 0.0
                pattern[:, head, steps[s], i] = 0.5
                pattern[:, head, steps[s], K + 1 + j] = 0.5
        return pattern

    def layer1(pattern: torch.Tensor, hook: object) -> torch.Tensor:
        pattern = pattern.clone()
        for t, q in enumerate(steps):
            pattern[:, 0, q] = 0.0
            pattern[:, 0, q, steps[0] : q + 1] = 1.0 / (t + 1)
        return pattern

    with model.hooks([("blocks.0.attn.hook_pattern", layer0), ("blocks.1.attn.hook_pattern", layer1)]):
        graph = attention_graph(model, PAIRS, K, threshold=0.2)
        assert np.allclose(graph.coverage, 1.0)
        assert graph.pair_purity[0] == pytest.approx(1.0)
        assert graph.answer_mass[0] == pytest.approx(1.0)
        # removing the edge that carries all of L0H0's mass at step 0 changes c0; a zero-weight edge does not
        zero = edge_knockout(model, PAIRS, K, layer=0, head=0, step=0, source_position=2)
        assert zero["logit_after"] == pytest.approx(zero["logit_before"], abs=1e-5)
        full = edge_knockout(model, PAIRS, K, layer=1, head=0, step=0, source_position=int(steps[0]))
        assert set(full) == {"logit_before", "logit_after", "accuracy_before", "accuracy_after"}
        assert abs(full["logit_after"] - full["logit_before"]) > 1e-4
    with pytest.raises(ConfigError, match="source_position"):
        edge_knockout(model, PAIRS, K, layer=0, head=0, step=0, source_position=20)


# --- logit attribution -----------------------------------------------------------------------------------------


@given(st.integers(0, 2**32 - 1), st.booleans())
def test_counterfactual_digit_always_differs(seed: int, most_significant: bool) -> None:
    rng = np.random.default_rng(seed)
    original = rng.integers(1 if most_significant else 0, 10, size=50)
    new = _counterfactual_digits(original, most_significant, rng)
    assert np.all(new != original) and np.all((new >= (1 if most_significant else 0)) & (new <= 9))


def test_attribution_of_a_model_reading_only_a0(model: Transformer) -> None:
    """Every head attends only to position 0 (a0): swapping any other operand digit changes nothing."""

    def only_a0(pattern: torch.Tensor, hook: object) -> torch.Tensor:
        out = torch.zeros_like(pattern)
        out[..., 0] = 1.0
        return out

    with model.hooks([(lambda name: name.endswith("hook_pattern"), only_a0)]):
        result = logit_attribution(model, PAIRS, K, seed=0)
    assert result.inputs == ("a0", "a1", "b0", "b1") and result.delta.shape == (4, 4)
    assert np.abs(result.delta[0]).max() > 1e-3 and np.abs(result.delta_std[0]).max() > 1e-3
    assert np.abs(result.delta[1:]).max() < 1e-5 and result.flip_rate[1:].max() == 0
    plain = logit_attribution(model, PAIRS, K, seed=0)
    assert np.array_equal(plain.delta, logit_attribution(model, PAIRS, K, seed=0).delta)  # seeded


def test_direct_attribution_sums_to_the_logit_difference(model: Transformer) -> None:
    result = direct_logit_attribution(model, PAIRS, K)
    n_tokens = encode_nocot(PAIRS[:1], K).input_ids.shape[1]
    assert result.head_source.shape == (2, 4, 2 * K, n_tokens)
    assert result.components[:2] == ("embed", "pos_embed") and "L1H3" in result.components
    assert np.allclose(result.contributions.sum(axis=0), result.logit_diff, atol=1e-4)
    assert result.max_abs_error < 1e-4
    heads = [result.components.index(f"L0H{h}") for h in range(4)]
    assert np.allclose(result.contributions[heads].sum(0), result.head_source[0].sum(axis=(0, 2)), atol=1e-5)


def test_run_analysis_and_figures(model: Transformer) -> None:
    for name in ("attrib", "dag", "fourier", "minkowski"):
        result, summary, figure = run_analysis(name, model, PAIRS, K, K)
        assert isinstance(summary, dict) and result is not None
        if has_module("matplotlib"):
            assert figure().axes
    with pytest.raises(ConfigError, match="analysis"):
        run_analysis("nope", model, PAIRS, K, K)
