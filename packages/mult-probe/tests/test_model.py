"""The transformer: TransformerLens hook names and shapes, caching, hooks removed, causality, greedy decoding."""

from __future__ import annotations

import pytest
import torch

from mult_probe.model import ModelConfig, Transformer, hook_names
from repro_core.errors import ConfigError


def _model(**overrides: object) -> Transformer:
    return Transformer(ModelConfig.tiny(n_ctx=32, **overrides), generator=torch.Generator().manual_seed(0))


def _tokens(batch: int = 3, seq: int = 11) -> torch.Tensor:
    return torch.randint(0, 17, (batch, seq), generator=torch.Generator().manual_seed(1))


def _no_hooks(model: Transformer) -> bool:
    return all(not point._forward_hooks for point in model.hook_dict.values())


def test_cache_names_in_order_and_shapes() -> None:
    model = _model(use_attn_result=True)
    b, t, d, h, dh, m = 3, 11, 64, 4, 16, 256
    logits, cache = model.run_with_cache(_tokens(b, t))
    assert logits.shape == (b, t, 17)
    expected = ["hook_embed", "hook_pos_embed"]
    for layer in range(2):
        p = f"blocks.{layer}"
        expected += [
            f"{p}.hook_resid_pre",
            f"{p}.ln1.hook_scale",
            f"{p}.ln1.hook_normalized",
            f"{p}.attn.hook_q",
            f"{p}.attn.hook_k",
            f"{p}.attn.hook_v",
            f"{p}.attn.hook_attn_scores",
            f"{p}.attn.hook_pattern",
            f"{p}.attn.hook_z",
            f"{p}.attn.hook_result",
            f"{p}.hook_attn_out",
            f"{p}.hook_resid_mid",
            f"{p}.ln2.hook_scale",
            f"{p}.ln2.hook_normalized",
            f"{p}.mlp.hook_pre",
            f"{p}.mlp.hook_post",
            f"{p}.hook_mlp_out",
            f"{p}.hook_resid_post",
        ]
    expected += ["ln_final.hook_scale", "ln_final.hook_normalized"]
    assert list(cache) == expected == hook_names(model.cfg)
    shapes = {
        "hook_q": (b, t, h, dh),
        "hook_k": (b, t, h, dh),
        "hook_v": (b, t, h, dh),
        "hook_z": (b, t, h, dh),
        "hook_attn_scores": (b, h, t, t),
        "hook_pattern": (b, h, t, t),
        "hook_result": (b, t, h, d),
        "hook_pre": (b, t, m),
        "hook_post": (b, t, m),
        "hook_scale": (b, t, 1),
    }
    for name, act in cache.items():
        assert act.shape == shapes.get(name.rsplit(".", 1)[-1], (b, t, d)), name
        assert not act.requires_grad
    assert _no_hooks(model)
    assert "blocks.0.attn.hook_result" not in hook_names(ModelConfig.tiny())
    # internal consistency: the per-head results plus b_O are the attention output; patterns are causal
    attn = model.blocks[1].attn
    torch.testing.assert_close(cache["blocks.1.attn.hook_result"].sum(2) + attn.b_O, cache["blocks.1.hook_attn_out"])
    pattern = cache["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(b, h, t))
    assert (pattern.triu(1) == 0).all()
    assert torch.isinf(cache["blocks.0.attn.hook_attn_scores"][0, 0, 0, 1:]).all()
    torch.testing.assert_close(cache.stack("hook_resid_post")[-1], cache["blocks.1.hook_resid_post"])
    z = cache["blocks.0.attn.hook_z"]
    torch.testing.assert_close(
        torch.einsum("bthe,hed->btd", z, model.W_O[0]) + model.blocks[0].attn.b_O, cache["blocks.0.hook_attn_out"]
    )


def test_names_filter_and_graph_keeping_cache() -> None:
    model = _model()
    _, cache = model.run_with_cache(_tokens(), names_filter=lambda n: n.endswith("hook_z"))
    assert list(cache) == ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    _, cache = model.run_with_cache(_tokens(), names_filter=["blocks.1.hook_resid_mid"], detach=False)
    assert cache["blocks.1.hook_resid_mid"].requires_grad
    with pytest.raises(KeyError, match="no hook point"):
        model.run_with_cache(_tokens(), names_filter=["blocks.9.hook_resid_mid"])
    assert _no_hooks(model)


def test_run_with_hooks_ablation_and_cleanup() -> None:
    model = _model()
    tokens = _tokens()
    clean = model(tokens)
    ablated = model.run_with_hooks(tokens, [("blocks.1.hook_attn_out", lambda act, hook: torch.zeros_like(act))])
    assert not torch.allclose(clean, ablated)
    torch.testing.assert_close(model(tokens), clean)
    assert _no_hooks(model)
    with pytest.raises(RuntimeError, match="boom"), model.hooks([("hook_embed", lambda act, hook: None)]):
        raise RuntimeError("boom")
    assert _no_hooks(model)
    with pytest.raises(KeyError):
        model.run_with_hooks(tokens, [("blocks.0.nope", lambda act, hook: None)])
    assert _no_hooks(model)


def test_causal_and_greedy_generation() -> None:
    model = _model()
    tokens = _tokens(2, 12)
    changed = tokens.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 17
    torch.testing.assert_close(model(tokens)[:, :8], model(changed)[:, :8])
    out = model.generate(tokens[:, :5], 4)
    assert out.shape == (2, 9) and torch.equal(out[:, :5], tokens[:, :5])
    step = model.generate(tokens[:, :5], 1)
    assert torch.equal(step[:, 5], model(tokens[:, :5])[:, -1].argmax(-1))
    assert torch.equal(out, model.generate(tokens[:, :5], 4))  # greedy: deterministic even with dropout configured


def test_presets_configs_and_weights() -> None:
    paper = ModelConfig.paper()
    assert (paper.n_layers, paper.n_heads, paper.d_model, paper.d_head, paper.mlp_width) == (2, 4, 768, 192, 3072)
    assert ModelConfig.paper_sft().bias is False and ModelConfig.paper_12l8h().n_layers == 12
    assert ModelConfig.from_json(paper.to_json()) == paper
    assert ModelConfig.preset("tiny") == ModelConfig.tiny()
    with pytest.raises(ConfigError, match="preset"):
        ModelConfig.preset("huge")
    with pytest.raises(ConfigError, match="d_model"):
        ModelConfig(d_model=10, n_heads=4)
    with pytest.raises(ConfigError, match="dropout"):
        ModelConfig(dropout=1.5)
    model = _model(bias=False, tie_embeddings=True)
    assert model.W_Q.shape == (2, 4, 64, 16) and model.W_O.shape == (2, 4, 16, 64)
    assert model.W_in.shape == (2, 64, 256) and model.W_out.shape == (2, 256, 64)
    assert model.W_U.data_ptr() == model.W_E.data_ptr() and model.W_pos.shape == (32, 64)
    twin = _model(bias=False, tie_embeddings=True)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(), strict=True))
    with pytest.raises(ValueError, match="n_ctx"):
        model(torch.zeros(1, 40, dtype=torch.long))
