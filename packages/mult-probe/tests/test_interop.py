"""TransformerLens round trip (both directions, logits and every shared hook) and the authors' checkpoint importer."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from mult_probe.interop import (
    from_transformer_lens,
    load_authors_checkpoint,
    process_weights,
    to_transformer_lens,
)
from mult_probe.model import ModelConfig, Transformer
from repro_core.errors import ConfigError, InputError, MissingExtraError
from repro_core.optional import has_module
from repro_core.testing import float_tolerance


def _has_hooked_transformer() -> bool:
    """TransformerLens < 4 (4.0 removed HookedTransformer; its module raises ImportError on the old names)."""
    if not has_module("transformer_lens"):
        return False
    try:
        from transformer_lens import HookedTransformer  # noqa: F401
    except ImportError:
        return False
    return True


HAS_LENS = _has_hooked_transformer()
# TransformerLens 3.x announces that 4.0 removes HookedTransformer: the reason the extra pins <4
pytestmark = [
    pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_thread"),
]
needs_lens = pytest.mark.skipif(not HAS_LENS, reason="transformer-lens<4 (extra mult-probe[lens]) not installed")


def _model(**overrides: object) -> Transformer:
    cfg = ModelConfig.tiny(n_ctx=24, **overrides)
    model = Transformer(cfg, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases, so a mix-up of any would show
        for name, param in model.named_parameters():
            if "ln" in name or ".b_" in name or name.endswith("bias"):
                param.add_(0.1 * torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))))
    return model.eval()


def _tokens(vocab: int = 17, batch: int = 3, seq: int = 13) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(1))


def test_export_layout_without_transformer_lens() -> None:
    model = _model(bias=False, tie_embeddings=True)
    config, state = to_transformer_lens(model)
    assert config["d_head"] * config["n_heads"] == config["d_model"] == 64
    assert state["blocks.1.attn.W_Q"].shape == (4, 64, 16)
    assert state["blocks.1.mlp.W_in"].shape == (64, 256)
    assert torch.equal(state["unembed.W_U"], model.W_E.T)  # tied -> an explicit copy
    assert not state["blocks.0.attn.b_Q"].any() and not state["unembed.b_U"].any()  # bias=False -> zeros
    # and back without TL: the state dict alone round-trips to identical logits
    back = from_transformer_lens(config, state)
    tokens = _tokens()
    torch.testing.assert_close(back(tokens), model(tokens), rtol=0, atol=1e-6)


@needs_lens
@pytest.mark.parametrize("overrides", [{}, {"act_fn": "gelu_new", "bias": False, "use_attn_result": True}])
def test_round_trip_to_hooked_transformer(overrides: dict[str, object]) -> None:
    from mult_probe.interop import to_hooked_transformer

    model = _model(**overrides)
    hooked = to_hooked_transformer(model)
    tokens = _tokens()
    ours_logits, ours = model.run_with_cache(tokens)
    with torch.no_grad():
        tl_logits, theirs = hooked.run_with_cache(tokens)
    assert (ours_logits - tl_logits).abs().max() <= 1e-5
    shared = [name for name in ours if name in theirs.cache_dict]
    assert len(shared) == len(ours)  # every hook of ours exists in TL under the same name
    for name in shared:
        torch.testing.assert_close(theirs[name], ours[name], rtol=0, atol=1e-5, msg=name)


@needs_lens
def test_round_trip_from_hooked_transformer() -> None:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(0)  # TL initialises from the global RNG
    cfg = HookedTransformerConfig(
        d_model=32, n_layers=3, n_heads=2, d_head=16, d_mlp=48, d_vocab=11, n_ctx=16, act_fn="gelu", seed=0
    )
    hooked = HookedTransformer(cfg).eval()
    with torch.no_grad():
        for name, param in hooked.named_parameters():
            if name.endswith((".w", ".b", "b_Q", "b_K", "b_V", "b_O", "b_in", "b_out")):
                param.add_(0.1 * torch.randn_like(param))
    model = from_transformer_lens(hooked)
    assert model.cfg.n_layers == 3 and model.cfg.d_mlp == 48
    tokens = _tokens(vocab=11, seq=9)
    with torch.no_grad():
        tl_logits, theirs = hooked.run_with_cache(tokens)
    logits, ours = model.run_with_cache(tokens)
    assert (logits - tl_logits).abs().max() <= 1e-5
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-5, msg=name)
    # a config ours cannot express is refused by name
    with pytest.raises(ConfigError, match="normalization_type"):
        from_transformer_lens({**cfg.to_dict(), "normalization_type": "RMS"}, hooked.state_dict())


def test_transformer_lens_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    code = "import sys, mult_probe.interop, mult_probe.model; assert 'transformer_lens' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "transformer_lens", None)  # as if not installed
    from mult_probe.interop import to_hooked_transformer

    with pytest.raises(MissingExtraError, match=r"mult-probe\[lens\]"):
        to_hooked_transformer(_model())


# --- the authors' GPT-2-style checkpoints -----------------------------------------------------------------------


def _gpt2_layout(
    *, d: int, layers: int, vocab: int, n_ctx: int, custom_ln: bool, bias: bool, tied: bool, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A randomly initialised state dict with HF GPT-2's key names and Conv1D [in, out] shapes."""
    g = torch.Generator().manual_seed(seed)

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    w, b = ("std_scale", "mean_scale") if custom_ln else ("weight", "bias")
    state = {"transformer.wte.weight": normal(vocab, d, std=1.0), "transformer.wpe.weight": normal(n_ctx, d, std=1.0)}
    for layer in range(layers):
        p = f"transformer.h.{layer}"
        for ln in ("ln_1", "ln_2"):
            state[f"{p}.{ln}.{w}"] = 1 + normal(d, std=0.1)
            state[f"{p}.{ln}.{b}"] = normal(d, std=0.1)
        state[f"{p}.attn.c_attn.weight"] = normal(d, 3 * d)
        state[f"{p}.attn.c_proj.weight"] = normal(d, d)
        state[f"{p}.mlp.c_fc.weight"] = normal(d, 4 * d)
        state[f"{p}.mlp.c_proj.weight"] = normal(4 * d, d)
        if bias:
            state[f"{p}.attn.c_attn.bias"] = normal(3 * d, std=0.1)
            state[f"{p}.attn.c_proj.bias"] = normal(d, std=0.1)
            state[f"{p}.mlp.c_fc.bias"] = normal(4 * d, std=0.1)
            state[f"{p}.mlp.c_proj.bias"] = normal(d, std=0.1)
        state[f"{p}.attn.bias"] = torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool))[None, None]  # HF mask buffer
    state[f"transformer.ln_f.{w}"] = 1 + normal(d, std=0.1)
    state[f"transformer.ln_f.{b}"] = normal(d, std=0.1)
    state["lm_head.weight"] = state["transformer.wte.weight"] if tied else normal(vocab, d)
    return state


def _reference_gpt2(
    state: dict[str, torch.Tensor], tokens: torch.Tensor, *, n_heads: int, custom_ln: bool, gelu: str, eps: float
) -> torch.Tensor:
    """GPT-2's forward pass written directly on the raw checkpoint keys (Conv1D: x @ W + b), for comparison."""
    s = {k.removeprefix("transformer."): v for k, v in state.items()}
    w, b = ("std_scale", "mean_scale") if custom_ln else ("weight", "bias")

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], s[f"{name}.{w}"], s[f"{name}.{b}"], eps)

    def conv1d(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ s[f"{name}.weight"] + s.get(f"{name}.bias", 0)

    t = tokens.shape[1]
    x = s["wte.weight"][tokens] + s["wpe.weight"][:t]
    n_layers = len({k.split(".")[1] for k in s if k.startswith("h.")})
    for layer in range(n_layers):
        p = f"h.{layer}"
        q, k, v = conv1d(ln(x, f"{p}.ln_1"), f"{p}.attn.c_attn").split(x.shape[-1], dim=-1)
        heads = [u.unflatten(-1, (n_heads, -1)).transpose(1, 2) for u in (q, k, v)]  # [B, H, T, dh]
        attn = F.scaled_dot_product_attention(*heads, is_causal=True).transpose(1, 2).flatten(2)
        x = x + conv1d(attn, f"{p}.attn.c_proj")
        x = x + conv1d(F.gelu(conv1d(ln(x, f"{p}.ln_2"), f"{p}.mlp.c_fc"), approximate=gelu), f"{p}.mlp.c_proj")
    return ln(x, "ln_f") @ s["lm_head.weight"].T


def _tolerance(reference: torch.Tensor, d: int) -> float:
    """Rounding bound of two blocks (q/k/v, attention, output, MLP in and out) plus the unembedding, at logit scale."""
    return float_tolerance(torch.float32, 2 * (4 * d + 4 * d) + d, scale=reference.abs().max().item())


def test_authors_icot_checkpoint_full_layout(tmp_path: Path) -> None:
    """Spec 4.1: HF GPT-2, 2 layers, 4 heads, width 768, the GPT-2 vocabulary and 1024 positions, tied."""
    state = _gpt2_layout(d=768, layers=2, vocab=50257, n_ctx=1024, custom_ln=False, bias=True, tied=True)
    path = tmp_path / "state_dict.bin"
    torch.save(state, path)
    imported = load_authors_checkpoint(path)
    cfg = imported.model.cfg
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.mlp_width, cfg.d_vocab, cfg.n_ctx) == (
        768,
        2,
        4,
        3072,
        50257,
        1024,
    )
    assert cfg.tie_embeddings and cfg.bias and cfg.act_fn == "gelu_new"
    assert imported.ignored_keys == ("h.0.attn.bias", "h.1.attn.bias")
    tokens = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = imported.model(tokens)
        reference = _reference_gpt2(state, tokens, n_heads=4, custom_ln=False, gelu="tanh", eps=1e-5)
    torch.testing.assert_close(ours, reference, rtol=0, atol=_tolerance(reference, 768))


def test_authors_sft_checkpoint_custom_layernorm(tmp_path: Path) -> None:
    """Spec 4.2: custom LayerNorm (std_scale/mean_scale, eps 1e-9), no biases, untied lm_head, aux heads; wrapped."""
    state = _gpt2_layout(d=768, layers=2, vocab=40, n_ctx=128, custom_ln=True, bias=False, tied=False)
    state = {k.removeprefix("transformer."): v for k, v in state.items() if not k.endswith("attn.bias")}
    aux = {f"linear_regression_heads.{h}.weight": torch.randn(1, 192) for h in (0, 1)}
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {f"module.{k}": v for k, v in {**state, **aux}.items()}, "step": 7}, path)
    imported = load_authors_checkpoint(path)
    cfg = imported.model.cfg
    assert not cfg.bias and not cfg.tie_embeddings and cfg.act_fn == "gelu" and cfg.ln_eps == 1e-9
    assert sorted(imported.aux_heads) == [0, 1] and imported.aux_heads[0].shape == (1, 192)
    tokens = torch.randint(0, 40, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = imported.model(tokens)
        reference = _reference_gpt2(state, tokens, n_heads=4, custom_ln=True, gelu="none", eps=1e-9)
        torch.testing.assert_close(ours, reference, rtol=0, atol=_tolerance(reference, 768))
        # torch.std's unbiased convention: the same model up to the exact factor sqrt((d-1)/d) on every LN weight
        unbiased = load_authors_checkpoint(path, unbiased_std=True).model
        ratio = unbiased.blocks[0].ln1.weight / imported.model.blocks[0].ln1.weight
        torch.testing.assert_close(ratio, torch.full_like(ratio, math.sqrt(767 / 768)))


def test_authors_checkpoint_bad_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(InputError, match="not a torch checkpoint"):
        load_authors_checkpoint(text)
    with pytest.raises(InputError, match="no such file"):
        load_authors_checkpoint(tmp_path / "missing.pt")
    ours = tmp_path / "ours.pt"
    torch.save(_model().state_dict(), ours)
    with pytest.raises(InputError, match=r"wte\.weight"):
        load_authors_checkpoint(ours)


# --- weight processing ---------------------------------------------------------------------------------------------


def test_process_weights_keeps_the_logits() -> None:
    model = _model(bias=False)
    tokens = _tokens()
    logits = model(tokens)
    folded = process_weights(model, center_writing_weights=False, center_unembed=False)
    assert folded.cfg.unembed_bias and folded.cfg.bias
    assert torch.equal(folded.blocks[0].ln1.weight, torch.ones(64))
    assert folded.W_Q.mean(dim=2).abs().max() < 1e-6  # reading weights centred over d_model
    torch.testing.assert_close(folded(tokens), logits, rtol=0, atol=1e-5)
    # on a folded model the logit attributions (with the b_U term) still sum to the logits
    folded_logits, cache = folded.run_with_cache(tokens)
    attrs = cache.logit_attrs(cache.decompose_resid(), 4).sum(0) + cache.final_ln_bias_logits(4)
    torch.testing.assert_close(attrs, folded_logits[..., 4], rtol=0, atol=1e-5)
    full = process_weights(model)
    assert full.W_E.mean(-1).abs().max() < 1e-6 and full.W_U.mean(-1).abs().max() < 1e-6
    shifted = full(tokens) - logits  # centring the unembedding shifts each position's logits by one constant
    torch.testing.assert_close(shifted - shifted.mean(-1, keepdim=True), torch.zeros_like(shifted), rtol=0, atol=1e-5)


@needs_lens
def test_process_weights_matches_transformer_lens_processing() -> None:
    """TL's own `load_and_process_state_dict` on our export equals our `process_weights`, hook by hook."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    model = _model()
    config, state = to_transformer_lens(model)
    hooked = HookedTransformer(HookedTransformerConfig(**config))
    hooked.load_and_process_state_dict(state, fold_ln=True, center_writing_weights=True, center_unembed=True)
    hooked.eval()
    assert hooked.cfg.normalization_type == "LNPre"
    ours = process_weights(model)
    tokens = _tokens()
    with torch.no_grad():
        tl_logits, theirs = hooked.run_with_cache(tokens)
    logits, cache = ours.run_with_cache(tokens)
    assert (logits - tl_logits).abs().max() <= 1e-5
    for name in cache:
        if name in theirs.cache_dict:  # LNPre has no hook after the (now trivial) affine step: same names
            torch.testing.assert_close(cache[name], theirs[name], rtol=0, atol=1e-5, msg=name)
    # and a folded TL model (LNPre, non-zero b_U) imports
    back = from_transformer_lens(hooked)
    assert back.cfg.unembed_bias
    torch.testing.assert_close(back(tokens), tl_logits, rtol=0, atol=1e-5)


@needs_lens
def test_cache_methods_match_transformer_lens() -> None:
    """Our ActivationCache methods give TL's results (labels and values) on the same, weight-processed, model."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    model = _model()
    config, state = to_transformer_lens(model)
    hooked = HookedTransformer(HookedTransformerConfig(**config))
    hooked.load_and_process_state_dict(state, fold_ln=True, center_writing_weights=True, center_unembed=True)
    hooked.eval()
    ours = process_weights(model)
    tokens = _tokens()
    with torch.no_grad():
        _, theirs = hooked.run_with_cache(tokens)
    _, cache = ours.run_with_cache(tokens)

    def same(a: object, b: object) -> None:
        (x, x_labels), (y, y_labels) = a, b  # type: ignore[misc]
        assert x_labels == y_labels
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)

    same(cache.decompose_resid(return_labels=True), theirs.decompose_resid(return_labels=True))
    same(
        cache.decompose_resid(layer=1, mlp_input=True, return_labels=True),
        theirs.decompose_resid(layer=1, mlp_input=True, return_labels=True),
    )
    same(
        cache.accumulated_resid(incl_mid=True, apply_ln=True, return_labels=True),
        theirs.accumulated_resid(incl_mid=True, apply_ln=True, return_labels=True),
    )
    same(cache.stack_head_results(return_labels=True), theirs.stack_head_results(return_labels=True))
    same(
        cache.stack_head_results(layer=1, incl_remainder=True, return_labels=True),
        theirs.stack_head_results(layer=1, incl_remainder=True, return_labels=True),
    )
    parts = cache.decompose_resid()
    torch.testing.assert_close(
        cache.apply_ln_to_stack(parts, layer=1), theirs.apply_ln_to_stack(parts, layer=1), rtol=0, atol=1e-5
    )
    targets = tokens.roll(-1, dims=1)
    torch.testing.assert_close(cache.logit_attrs(parts, targets), theirs.logit_attrs(parts, targets), rtol=0, atol=1e-5)
