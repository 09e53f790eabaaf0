"""Activation patching (exact) and attribution patching (its gradient estimate) on a briefly trained tiny model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from mult_probe.analysis.attribution import activation_patching, attribution_patching, patch_activation
from mult_probe.data import CharTokenizer, encode_nocot, generate_operands
from mult_probe.model import ModelConfig, Transformer
from mult_probe.train import TrainConfig, train
from repro_core.testing import float_tolerance

pytestmark = pytest.mark.usefixtures("one_thread")


Setup = tuple[Transformer, torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor], int]


@pytest.fixture(scope="module")
def setup() -> Setup:
    """2x2 SFT for 150 steps (a few seconds); clean vs a0 shifted by 3; metric: logit difference of c1."""
    config = TrainConfig(
        method="sft", k=2, steps=150, batch_size=32, lr=3e-3, eval_size=50, model=ModelConfig.tiny(d_model=32, n_ctx=16)
    )
    model = train(config).model.eval()
    pairs = generate_operands(2, 2, n=32, seed=5)
    corrupted = pairs.copy()
    corrupted[:, 0] = corrupted[:, 0] // 10 * 10 + (corrupted[:, 0] % 10 + 3) % 10
    clean, bad = encode_nocot(pairs, 2), encode_nocot(corrupted, 2)
    position = int(clean.predict_positions[1])
    digits = torch.tensor([CharTokenizer().vocab[str(d)] for d in range(10)])
    right, wrong = digits[clean.answer[:, 1]], digits[bad.answer[:, 1]]

    def metric(logits: torch.Tensor) -> torch.Tensor:
        at = logits[:, position]
        return (at.gather(-1, right[:, None]) - at.gather(-1, wrong[:, None])).mean()

    return model, torch.as_tensor(clean.input_ids), torch.as_tensor(bad.input_ids), metric, position


def test_activation_patching_restores_the_clean_metric(setup: Setup) -> None:
    model, clean, corrupted, metric, position = setup
    result = activation_patching(model, clean, corrupted, metric, ["blocks.1.hook_resid_post"])
    assert result.effect.shape == (1, clean.shape[1]) and result.per == "position"
    gap = result.clean_metric - result.corrupted_metric
    assert gap > 0.1  # the corruption matters to the metric
    # the last residual stream at the predicting position carries everything the logit there depends on
    tol = float_tolerance(torch.float32, 64, scale=abs(result.clean_metric) + abs(result.corrupted_metric))
    assert abs(result.effect[0, position].item() - gap) <= tol
    assert result.effect[0, position + 1 :].abs().max() == 0  # later positions cannot affect it (causal)
    _, clean_cache = model.run_with_cache(clean, "blocks.1.hook_resid_post")
    patched = patch_activation(model, corrupted, "blocks.1.hook_resid_post", clean_cache["blocks.1.hook_resid_post"])
    assert abs(float(metric(patched)) - result.clean_metric) <= tol
    with pytest.raises(ValueError, match="no head dimension"):
        activation_patching(model, clean, corrupted, metric, ["blocks.0.hook_resid_pre"], per="head")


def test_attribution_patching_approximates_activation_patching(setup: Setup) -> None:
    model, clean, corrupted, metric, _ = setup
    grads_before = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    heads = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    exact = activation_patching(model, clean, corrupted, metric, heads, per="head")
    estimate = attribution_patching(model, clean, corrupted, metric, heads, per="head")
    assert exact.effect.shape == estimate.effect.shape == (2, 4)
    assert estimate.corrupted_metric == pytest.approx(exact.corrupted_metric, abs=1e-5)
    assert np.corrcoef(exact.effect.flatten(), estimate.effect.flatten())[0, 1] > 0.9
    assert exact.effect.flatten().argmax() == estimate.effect.flatten().argmax()  # the same most important head
    # past the embeddings the residual stream is near-linear for this metric: the estimate tracks the exact effect
    resid = ["blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post"]
    exact = activation_patching(model, clean, corrupted, metric, resid)
    estimate = attribution_patching(model, clean, corrupted, metric, resid)
    assert np.corrcoef(exact.effect.flatten(), estimate.effect.flatten())[0, 1] > 0.9
    assert (estimate.effect - exact.effect).abs().max() < 0.5 * exact.effect.abs().max()
    for param, before in zip(model.parameters(), grads_before, strict=True):  # parameter gradients untouched
        assert (param.grad is None and before is None) or torch.equal(param.grad, before)
