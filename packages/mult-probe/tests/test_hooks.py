"""Cache methods (TL names), LayerNorm hook_scale, backward hooks and the KV-cached generate."""

from __future__ import annotations

import pytest
import torch

from mult_probe.model import KeyValueCache, ModelConfig, Transformer
from repro_core.testing import float_tolerance

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**overrides: object) -> Transformer:
    model = Transformer(ModelConfig.tiny(n_ctx=32, **overrides), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # non-trivial LayerNorm parameters so the folded weight matters
        for name, param in model.named_parameters():
            if "ln." in name:
                param.add_(0.2 * torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))))
    return model.eval()


def _tokens(batch: int = 3, seq: int = 11) -> torch.Tensor:
    return torch.randint(0, 17, (batch, seq), generator=torch.Generator().manual_seed(1))


def _tol(scale: float, n: int = 64 * 8) -> float:
    return float_tolerance(torch.float32, n, scale=scale)


def test_hook_scale_is_layernorm_scale() -> None:
    model = _model()
    logits, cache = model.run_with_cache(_tokens())
    resid = cache["blocks.1.hook_resid_mid"]
    expected = (resid.var(-1, unbiased=False, keepdim=True) + model.cfg.ln_eps).sqrt()
    torch.testing.assert_close(cache["blocks.1.ln2.hook_scale"], expected)
    centred = resid - resid.mean(-1, keepdim=True)
    torch.testing.assert_close(cache["blocks.1.ln2.hook_normalized"], centred / expected)
    # without a hook on hook_scale the fused kernel runs (training pays nothing); same values to float rounding
    _, only_normalized = model.run_with_cache(_tokens(), "blocks.1.ln2.hook_normalized")
    torch.testing.assert_close(only_normalized["blocks.1.ln2.hook_normalized"], centred / expected)
    torch.testing.assert_close(model(_tokens()), logits)


def test_decompose_and_accumulated_resid_sum_to_the_stream() -> None:
    model = _model()
    _, cache = model.run_with_cache(_tokens())
    parts, labels = cache.decompose_resid(return_labels=True)
    assert labels == ["embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"]
    final = cache["blocks.1.hook_resid_post"]
    torch.testing.assert_close(parts.sum(0), final, rtol=0, atol=_tol(final.abs().max().item()))
    mid, mid_labels = cache.decompose_resid(layer=1, mlp_input=True, return_labels=True)
    assert mid_labels[-1] == "1_attn_out"
    torch.testing.assert_close(
        mid.sum(0), cache["blocks.1.hook_resid_mid"], rtol=0, atol=_tol(final.abs().max().item())
    )
    acc, acc_labels = cache.accumulated_resid(incl_mid=True, return_labels=True)
    assert acc_labels == ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]
    assert torch.equal(acc[-1], final) and torch.equal(acc[1], cache["blocks.0.hook_resid_mid"])
    assert cache.accumulated_resid(pos_slice=-1).shape == (3, 3, 1, 64)
    # apply_ln (logit lens): the last entry is exactly what the final LayerNorm made of the stream
    ln_final = model.ln_final
    lens = cache.accumulated_resid(apply_ln=True)
    torch.testing.assert_close(lens[-1], cache["ln_final.hook_normalized"] * ln_final.weight + ln_final.bias)
    # an earlier entry goes through the final LayerNorm with its own scale (not the cached final one)
    resid = cache["blocks.1.hook_resid_pre"]  # lens: 0_pre, 1_pre, final_post
    own = torch.nn.functional.layer_norm(resid, (64,), ln_final.weight, ln_final.bias, model.cfg.ln_eps)
    torch.testing.assert_close(lens[1], own)
    # apply_ln_to_stack divides by the cached scale of the LayerNorm of that layer
    torch.testing.assert_close(
        cache.apply_ln_to_stack(cache["blocks.1.hook_resid_pre"][None], layer=1)[0],
        cache["blocks.1.ln1.hook_normalized"],
    )


def test_stack_head_results_without_use_attn_result() -> None:
    model = _model()
    tokens = _tokens()
    _, cache = model.run_with_cache(tokens)
    heads, labels = cache.stack_head_results(return_labels=True)
    assert heads.shape == (8, 3, 11, 64) and labels[:2] == ["L0H0", "L0H1"] and labels[-1] == "L1H3"
    _, with_result = _model(use_attn_result=True).run_with_cache(tokens)
    torch.testing.assert_close(heads[4:8].permute(1, 2, 0, 3), with_result["blocks.1.attn.hook_result"])
    full, full_labels = cache.stack_head_results(incl_remainder=True, return_labels=True)
    assert full_labels[-1] == "remainder"
    final = cache["blocks.1.hook_resid_post"]
    torch.testing.assert_close(full.sum(0), final, rtol=0, atol=_tol(final.abs().max().item()))
    assert cache.stack_head_results(layer=1).shape[0] == 4


def test_logit_attrs_sum_to_the_logits() -> None:
    model = _model()
    tokens = _tokens()
    logits, cache = model.run_with_cache(tokens)
    parts = cache.decompose_resid()
    targets = tokens.roll(-1, dims=1)  # a [batch, pos] token per position
    attrs = cache.logit_attrs(parts, targets)
    assert attrs.shape == (6, 3, 11)
    picked = logits.gather(-1, targets[..., None])[..., 0]
    total = attrs.sum(0) + cache.final_ln_bias_logits(targets)
    torch.testing.assert_close(total, picked, rtol=0, atol=_tol(logits.abs().max().item()))
    # one token for everything, and a difference against another token
    diff = cache.logit_attrs(parts, 3, incorrect_tokens=5).sum(0) + cache.final_ln_bias_logits(3)
    diff = diff - cache.final_ln_bias_logits(5)
    torch.testing.assert_close(diff, logits[..., 3] - logits[..., 5], rtol=0, atol=_tol(logits.abs().max().item()))
    # heads through the final LN, restricted to the last position
    head_attrs = cache.logit_attrs(cache.stack_head_results(pos_slice=-1), 3, pos_slice=-1)
    assert head_attrs.shape == (8, 3, 1)


def test_backward_hooks_see_and_replace_gradients() -> None:
    model = _model()
    tokens = _tokens()
    seen: dict[str, torch.Tensor] = {}

    def record(grad: torch.Tensor, hook: object) -> None:
        seen[hook.name] = grad.clone()  # type: ignore[attr-defined]

    logits = model.run_with_hooks(tokens, bwd_hooks=[("blocks.1.hook_resid_mid", record)])
    assert all(not p._forward_hooks for p in model.hook_dict.values())  # removed; the gradient hook still fires
    logits[:, -1, 3].sum().backward()
    value, _, grads = model.run_with_cache_and_grad(tokens, lambda out: out[:, -1, 3].sum(), "blocks.1.hook_resid_mid")
    torch.testing.assert_close(seen["blocks.1.hook_resid_mid"], grads["blocks.1.hook_resid_mid"])
    assert seen["blocks.1.hook_resid_mid"][:, -1].abs().sum() > 0 and value.ndim == 0
    # a backward hook that zeroes the gradient through the residual stream cuts the embedding's gradient
    model.zero_grad()
    out = model.run_with_hooks(tokens, bwd_hooks=[(lambda n: n.endswith("resid_pre"), lambda g, h: g * 0)])
    out.sum().backward()
    assert model.embed.weight.grad is not None and not model.embed.weight.grad.any()


@pytest.mark.parametrize("overrides", [{}, {"act_fn": "gelu_new", "bias": False, "tie_embeddings": True}])
def test_kv_cached_generate_equals_uncached(overrides: dict[str, object]) -> None:
    model = _model(**overrides)
    prompt = _tokens(batch=5, seq=6)
    cached = model.generate(prompt, 20)
    uncached = model.generate(prompt, 20, use_past_kv_cache=False)
    assert torch.equal(cached, uncached)
    # incremental logits equal the full pass position by position
    full = model(cached[:, :-1])
    kv = KeyValueCache(model.cfg.n_layers)
    steps = [model(cached[:, :6], kv_cache=kv)] + [model(cached[:, i : i + 1], kv_cache=kv) for i in range(6, 25)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=_tol(full.abs().max().item()))
    assert kv.length == 25
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        model.generate(prompt, 40)
