"""Move models in and out: TransformerLens `HookedTransformer`s and the authors' GPT-2-style checkpoints.

- `to_transformer_lens(model)` -> (`HookedTransformerConfig` keyword arguments, state dict in TL's key names and
  layouts). Plain dicts and tensors: exporting needs no TransformerLens. `to_hooked_transformer(model)` builds the
  `HookedTransformer` from them (extra `mult-probe[lens]`).
- `from_transformer_lens(hooked)` (or `(config, state_dict)`) -> our `Transformer`, for TL models with standard
  LayerNorm, learned absolute positions and a GELU MLP (what ours can express).
- `load_authors_checkpoint(path)` reads a GPT-2-style state dict (`transformer.wte.weight`, `transformer.h.{l}.attn.
  c_attn.weight` in Conv1D `[in, out]` layout, ..., as HF `GPT2LMHeadModel` saves it: the authors' ICoT model,
  spec 4.1) or the same names with the authors' custom LayerNorm (`std_scale`, `mean_scale`, no biases, untied
  `lm_head`: their SFT/aux model, spec 4.2), loaded with `torch.load(weights_only=True)`.

Both directions keep logits and every shared hook's activation equal to float error (tested against
TransformerLens 3.9 in `tests/test_interop.py`). TransformerLens 4 removed `HookedTransformer`; the extra pins
`transformer-lens>=3.0,<4` for that reason (see the README).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mult_probe.model import ModelConfig, Transformer
from repro_core.errors import ConfigError, InputError
from repro_core.optional import require

__all__ = [
    "ImportedCheckpoint",
    "from_transformer_lens",
    "load_authors_checkpoint",
    "process_weights",
    "to_hooked_transformer",
    "to_transformer_lens",
]

#: Buffers TL's state dict carries besides the parameters (causal mask, masking value); never weights.
_TL_BUFFERS = ("attn.mask", "attn.IGNORE")


def to_transformer_lens(model: Transformer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(`HookedTransformerConfig(**config)` arguments, state dict) of `model` in TransformerLens' layout.

    Missing biases (`bias=False`) become zeros, a tied unembedding becomes an explicit `W_U` copy, `b_U` is zero.
    Tensors are detached copies on the model's device.
    """
    cfg = model.cfg
    config: dict[str, Any] = {
        "d_model": cfg.d_model,
        "d_head": cfg.d_head,
        "n_layers": cfg.n_layers,
        "n_ctx": cfg.n_ctx,
        "n_heads": cfg.n_heads,
        "d_mlp": cfg.mlp_width,
        "d_vocab": cfg.d_vocab,
        "d_vocab_out": cfg.d_vocab,
        "act_fn": cfg.act_fn,
        "normalization_type": "LN",
        "eps": cfg.ln_eps,
        "positional_embedding_type": "standard",
        "use_attn_result": cfg.use_attn_result,
        "default_prepend_bos": False,
        "original_architecture": "mult_probe.Transformer",
    }

    def copy(t: torch.Tensor) -> torch.Tensor:
        return t.detach().clone()

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=model.W_E.dtype, device=model.W_E.device)

    h, d, dh, m = cfg.n_heads, cfg.d_model, cfg.d_head, cfg.mlp_width
    state: dict[str, torch.Tensor] = {"embed.W_E": copy(model.W_E), "pos_embed.W_pos": copy(model.W_pos)}
    for layer, block in enumerate(model.blocks):
        p = f"blocks.{layer}"
        attn, mlp = block.attn, block.mlp
        state[f"{p}.ln1.w"], state[f"{p}.ln1.b"] = copy(block.ln1.weight), copy(block.ln1.bias)
        state[f"{p}.ln2.w"], state[f"{p}.ln2.b"] = copy(block.ln2.weight), copy(block.ln2.bias)
        for name in ("W_Q", "W_K", "W_V", "W_O"):
            state[f"{p}.attn.{name}"] = copy(getattr(attn, name))
        for name, shape in (("b_Q", (h, dh)), ("b_K", (h, dh)), ("b_V", (h, dh)), ("b_O", (d,))):
            state[f"{p}.attn.{name}"] = copy(getattr(attn, name)) if cfg.bias else zeros(*shape)
        state[f"{p}.mlp.W_in"] = copy(mlp.W_in.weight.T)
        state[f"{p}.mlp.W_out"] = copy(mlp.W_out.weight.T)
        state[f"{p}.mlp.b_in"] = copy(mlp.W_in.bias) if cfg.bias else zeros(m)
        state[f"{p}.mlp.b_out"] = copy(mlp.W_out.bias) if cfg.bias else zeros(d)
    state["ln_final.w"], state["ln_final.b"] = copy(model.ln_final.weight), copy(model.ln_final.bias)
    state["unembed.W_U"] = copy(model.W_U)
    state["unembed.b_U"] = copy(model.b_U) if cfg.unembed_bias else zeros(cfg.d_vocab)
    return config, state


def to_hooked_transformer(model: Transformer) -> Any:
    """A `transformer_lens.HookedTransformer` with `model`'s weights (needs `pip install 'mult-probe[lens]'`)."""
    lens = require("transformer_lens", "to_hooked_transformer", extra="lens", distribution="mult-probe")
    config, state = to_transformer_lens(model)
    with warnings.catch_warnings():  # 3.x warns that 4.0 removes HookedTransformer: why the extra pins <4
        warnings.simplefilter("ignore", DeprecationWarning)
        hooked = lens.HookedTransformer(lens.HookedTransformerConfig(**config, init_weights=False))
    missing, unexpected = hooked.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(_TL_BUFFERS)]
    if missing or unexpected:  # a TransformerLens whose layout we do not know
        raise ConfigError(f"transformer_lens layout differs: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return hooked.to(model.W_E.device).eval()


def process_weights(
    model: Transformer,
    *,
    fold_ln: bool = True,
    center_writing_weights: bool = True,
    center_unembed: bool = True,
    fold_value_biases: bool = True,
) -> Transformer:
    """A copy of `model` with TransformerLens' weight processing (what `HookedTransformer.from_pretrained` does).

    - `fold_ln`: each LayerNorm's weight multiplies the rows of the matrices reading its output (W_Q/K/V, W_in,
      W_U) and its bias moves into their biases (b_U for the final one); those reading weights are then centred
      over d_model (exact: a LayerNorm output has zero mean). The LayerNorms keep unit weight and zero bias.
    - `center_writing_weights`: W_E, W_pos, W_O, W_out, b_O and b_out lose their mean over d_model (exact: every
      reader of the residual stream is a LayerNorm, which removes it); residual activations change.
    - `center_unembed`: W_U and b_U lose their mean over the vocabulary, shifting each position's logits by a
      constant (softmax, argmax and logit differences unchanged).
    - `fold_value_biases`: b_V moves into b_O (`b_O += sum_h b_V[h] @ W_O[h]`; exact, attention rows sum to 1).

    Logits (after `center_unembed`: logit differences) are unchanged up to float error. The result has biases,
    an untied unembedding and `unembed_bias` where b_U is non-zero.
    """
    config, s = to_transformer_lens(model)
    n_layers = model.cfg.n_layers
    if fold_ln:

        def fold(ln: str, weight: str, bias: str, d_dim: int) -> None:
            w, b = s[f"{ln}.w"], s[f"{ln}.b"]
            matrix = s[weight]
            s[bias] = s[bias] + torch.tensordot(b, matrix, dims=([0], [d_dim])).reshape(s[bias].shape)
            shape = [1] * matrix.ndim
            shape[d_dim] = -1
            folded = matrix * w.reshape(shape)
            s[weight] = folded - folded.mean(dim=d_dim, keepdim=True)

        for layer in range(n_layers):
            p = f"blocks.{layer}"
            for name in ("Q", "K", "V"):
                fold(f"{p}.ln1", f"{p}.attn.W_{name}", f"{p}.attn.b_{name}", 1)  # [H, d, dh]
            fold(f"{p}.ln2", f"{p}.mlp.W_in", f"{p}.mlp.b_in", 0)  # [d, m]
        fold("ln_final", "unembed.W_U", "unembed.b_U", 0)  # [d, V]
        for ln in [f"blocks.{i}.{n}" for i in range(n_layers) for n in ("ln1", "ln2")] + ["ln_final"]:
            s[f"{ln}.w"], s[f"{ln}.b"] = torch.ones_like(s[f"{ln}.w"]), torch.zeros_like(s[f"{ln}.b"])
    if center_writing_weights:
        names = ["embed.W_E", "pos_embed.W_pos"]
        for layer in range(n_layers):
            p = f"blocks.{layer}"
            names += [f"{p}.attn.W_O", f"{p}.attn.b_O", f"{p}.mlp.W_out", f"{p}.mlp.b_out"]
        for name in names:
            s[name] = s[name] - s[name].mean(dim=-1, keepdim=True)
    if center_unembed:
        s["unembed.W_U"] = s["unembed.W_U"] - s["unembed.W_U"].mean(dim=-1, keepdim=True)
        s["unembed.b_U"] = s["unembed.b_U"] - s["unembed.b_U"].mean()
    if fold_value_biases:
        for layer in range(n_layers):
            p = f"blocks.{layer}.attn"
            s[f"{p}.b_O"] = s[f"{p}.b_O"] + torch.einsum("he,hed->d", s[f"{p}.b_V"], s[f"{p}.W_O"])
            s[f"{p}.b_V"] = torch.zeros_like(s[f"{p}.b_V"])
    return from_transformer_lens(config, s, dtype=model.W_E.dtype).to(model.W_E.device)


def _config_value(config: Any, name: str, default: Any = None) -> Any:
    return config.get(name, default) if isinstance(config, Mapping) else getattr(config, name, default)


def from_transformer_lens(
    source: Any, state_dict: Mapping[str, torch.Tensor] | None = None, *, dtype: torch.dtype = torch.float32
) -> Transformer:
    """Our `Transformer` from a `HookedTransformer`, or from its config (object or dict) and state dict.

    Supported: `normalization_type` "LN" (or "LNPre", imported as LN with unit weight and zero bias), standard
    positions, act_fn "gelu"/"gelu_new", full attention with the default 1/sqrt(d_head) scale; a non-zero `b_U`
    (TL's folded models) turns on `unembed_bias`. Anything else raises `ConfigError` naming the field.
    """
    if state_dict is None:
        config, state_dict = source.cfg, source.state_dict()
    else:
        config = source
    checks = {
        "normalization_type": ("LN", "LNPre"),
        "positional_embedding_type": ("standard",),
        "act_fn": ("gelu", "gelu_new"),
    }
    for name, allowed in checks.items():
        value = _config_value(config, name)
        if value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not supported (ours: {', '.join(map(repr, allowed))})")
    for name in ("attn_only", "gated_mlp", "use_local_attn", "parallel_attn_mlp", "final_rms", "post_embedding_ln"):
        if _config_value(config, name, False):
            raise ConfigError(f"{name}: True is not supported by mult_probe.Transformer")
    d_model, n_heads, d_head = (_config_value(config, n) for n in ("d_model", "n_heads", "d_head"))
    if n_heads * d_head != d_model:
        raise ConfigError(f"d_head: n_heads * d_head = {n_heads * d_head} must equal d_model = {d_model}")
    n_kv = _config_value(config, "n_key_value_heads")
    if n_kv not in (None, n_heads):
        raise ConfigError(f"n_key_value_heads: grouped-query attention ({n_kv}) is not supported")
    scale = _config_value(config, "attn_scale", math.sqrt(d_head))
    if not _config_value(config, "use_attn_scale", True) or not math.isclose(float(scale), math.sqrt(d_head)):
        raise ConfigError(f"attn_scale: only sqrt(d_head) = {math.sqrt(d_head)} is supported, got {scale}")
    d_vocab = _config_value(config, "d_vocab")
    if _config_value(config, "d_vocab_out", d_vocab) not in (-1, d_vocab):
        raise ConfigError("d_vocab_out: must equal d_vocab")
    state = {k: v.detach().to("cpu", dtype) for k, v in state_dict.items() if not k.endswith(_TL_BUFFERS)}
    unembed_bias = "unembed.b_U" in state and bool(state["unembed.b_U"].abs().max() > 0)
    cfg = ModelConfig(
        d_vocab=d_vocab,
        n_ctx=_config_value(config, "n_ctx"),
        d_model=d_model,
        n_layers=_config_value(config, "n_layers"),
        n_heads=n_heads,
        d_mlp=_config_value(config, "d_mlp"),
        act_fn=_config_value(config, "act_fn"),
        bias=True,
        tie_embeddings=False,
        ln_eps=float(_config_value(config, "eps", 1e-5)),
        use_attn_result=bool(_config_value(config, "use_attn_result", False)),
        unembed_bias=unembed_bias,
    )
    ours: dict[str, torch.Tensor] = {
        "embed.weight": state.pop("embed.W_E"),
        "pos_embed.weight": state.pop("pos_embed.W_pos"),
    }

    def layer_norm(src: str, dst: str) -> None:
        weight, bias = state.pop(f"{src}.w", None), state.pop(f"{src}.b", None)
        ours[f"{dst}.ln.weight"] = torch.ones(d_model, dtype=dtype) if weight is None else weight
        ours[f"{dst}.ln.bias"] = torch.zeros(d_model, dtype=dtype) if bias is None else bias

    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}"
        layer_norm(f"{p}.ln1", f"{p}.ln1")
        layer_norm(f"{p}.ln2", f"{p}.ln2")
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
            ours[f"{p}.attn.{name}"] = state.pop(f"{p}.attn.{name}")
        ours[f"{p}.mlp.W_in.weight"] = state.pop(f"{p}.mlp.W_in").T
        ours[f"{p}.mlp.W_in.bias"] = state.pop(f"{p}.mlp.b_in")
        ours[f"{p}.mlp.W_out.weight"] = state.pop(f"{p}.mlp.W_out").T
        ours[f"{p}.mlp.W_out.bias"] = state.pop(f"{p}.mlp.b_out")
    layer_norm("ln_final", "ln_final")
    ours["unembed.weight"] = state.pop("unembed.W_U").T
    b_u = state.pop("unembed.b_U", None)
    if unembed_bias:
        ours["b_U"] = b_u
    if state:
        raise ConfigError(f"state dict: keys mult_probe.Transformer has no place for: {sorted(state)[:5]}")
    model = Transformer(cfg)
    model.load_state_dict({k: v.contiguous() for k, v in ours.items()})
    return model.eval()


# --- the authors' checkpoints -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedCheckpoint:
    """A model read from the authors' checkpoint, its auxiliary regression heads (if any) and what was skipped."""

    model: Transformer
    aux_heads: dict[int, torch.Tensor] = field(default_factory=dict)  #: head -> [1, d_head] bias-free probe weight
    ignored_keys: tuple[str, ...] = ()  #: non-weight entries (HF's cached causal-mask buffers)


_WRAPPERS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "_orig_mod.", "transformer.")


def _flatten_checkpoint(raw: Any, path: Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint (`{"model": {...}}` etc.), with DDP/compile/HF prefixes removed."""
    while isinstance(raw, Mapping) and not any(isinstance(v, torch.Tensor) for v in raw.values()):
        inner = next((raw[k] for k in _WRAPPERS if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            break
        raw = inner
    if not isinstance(raw, Mapping) or not raw:
        raise InputError("not a state dict (no tensors found)", path=path)
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        state[name] = value
    if not state:
        raise InputError("not a state dict (no tensors found)", path=path)
    return state


def load_authors_checkpoint(
    path: str | Path,
    *,
    n_heads: int = 4,
    act_fn: str | None = None,
    ln_eps: float | None = None,
    unbiased_std: bool = False,
    dtype: torch.dtype = torch.float32,
) -> ImportedCheckpoint:
    """Our `Transformer` from a GPT-2-style checkpoint file of the authors (spec 4.1 and 4.2).

    Keys (after an optional `transformer.`/`module.` prefix): `wte.weight [V, d]`, `wpe.weight [n_ctx, d]`,
    `h.{l}.ln_1.*`, `h.{l}.attn.c_attn.weight [d, 3d]` (q, k, v side by side, heads contiguous within each),
    `h.{l}.attn.c_proj.weight [d, d]`, `h.{l}.ln_2.*`, `h.{l}.mlp.c_fc.weight [d, d_mlp]`,
    `h.{l}.mlp.c_proj.weight [d_mlp, d]`, `ln_f.*`, optional `lm_head.weight [V, d]` (absent or equal to `wte`:
    tied), biases optional (all or none), optional `linear_regression_heads.{h}.weight [1, d_head]`. LayerNorms are
    `weight`/`bias` (GPT-2, eps 1e-5) or the authors' custom `std_scale`/`mean_scale` (eps 1e-9). Weights stored
    `nn.Linear`-style (`[out, in]`) are recognised by shape.

    The head count is not in a state dict: `n_heads` (the authors': 4). `act_fn` defaults to tanh GELU for the
    GPT-2 layout and exact GELU for the custom-LayerNorm model (spec 4.2). The custom LayerNorm is read as
    `std_scale * (x - mean) / sqrt(var + eps) + mean_scale` with the biased variance; `unbiased_std=True` reads it
    with torch's default unbiased `std`, folding the exact factor sqrt((d-1)/d) into the weight.
    Token ids stay the checkpoint's (GPT-2 BPE for the authors' models), not our `CharTokenizer`'s.
    """
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InputError("no such file", path=path) from exc
    except Exception as exc:  # pickle/zip errors of every kind: one clear line
        raise InputError(f"not a torch checkpoint ({type(exc).__name__})", path=path) from exc
    state = _flatten_checkpoint(raw, path)
    state = {k: v.to(dtype) for k, v in state.items()}

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise InputError(f"missing key {key!r} (not the GPT-2 layout)", path=path, field=key)
        return state.pop(key)

    wte, wpe = take("wte.weight"), take("wpe.weight")
    d_vocab, d_model = wte.shape
    n_ctx = wpe.shape[0]
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("h.") and k.split(".")[1].isdigit()})
    if not layers or layers != list(range(len(layers))):
        raise InputError(f"transformer blocks h.0..h.N not found or not contiguous: {layers}", path=path)
    if d_model % n_heads:
        raise ConfigError(f"n_heads: {n_heads} does not divide the checkpoint's width {d_model}")
    custom_ln = "ln_f.std_scale" in state
    weight_key, bias_key = ("std_scale", "mean_scale") if custom_ln else ("weight", "bias")
    has_bias = "h.0.attn.c_attn.bias" in state
    ln_factor = math.sqrt((d_model - 1) / d_model) if unbiased_std else 1.0

    c_attn = state.get("h.0.attn.c_attn.weight")
    linear_layout = c_attn is not None and tuple(c_attn.shape) == (3 * d_model, d_model)
    c_fc = state.get("h.0.mlp.c_fc.weight")
    if c_fc is None:
        raise InputError("missing key 'h.0.mlp.c_fc.weight' (not the GPT-2 layout)", path=path)
    d_mlp = int(c_fc.shape[0 if linear_layout else 1])

    def to_in_out(key: str, d_in: int, d_out: int) -> torch.Tensor:
        """A weight as `[in, out]` (Conv1D); `[out, in]` (nn.Linear) is transposed; square ones follow c_attn."""
        weight = take(key)
        if tuple(weight.shape) == (d_in, d_out) and not (linear_layout and d_in == d_out):
            return weight
        if tuple(weight.shape) == (d_out, d_in):
            return weight.T
        raise InputError(f"shape {tuple(weight.shape)}, expected {(d_in, d_out)}", path=path, field=key)

    lm_head = state.pop("lm_head.weight", None)
    tied = lm_head is None or torch.equal(lm_head, wte)
    cfg = ModelConfig(
        d_vocab=d_vocab,
        n_ctx=n_ctx,
        d_model=d_model,
        n_layers=len(layers),
        n_heads=n_heads,
        d_mlp=d_mlp,
        act_fn=act_fn or ("gelu" if custom_ln else "gelu_new"),  # type: ignore[arg-type]
        bias=has_bias,
        tie_embeddings=tied,
        ln_eps=ln_eps if ln_eps is not None else (1e-9 if custom_ln else 1e-5),
    )
    h, dh = n_heads, d_model // n_heads
    ours: dict[str, torch.Tensor] = {"embed.weight": wte, "pos_embed.weight": wpe}

    def layer_norm(src: str, dst: str) -> None:
        ours[f"{dst}.ln.weight"] = take(f"{src}.{weight_key}") * ln_factor
        ours[f"{dst}.ln.bias"] = take(f"{src}.{bias_key}")

    for layer in layers:
        src, dst = f"h.{layer}", f"blocks.{layer}"
        layer_norm(f"{src}.ln_1", f"{dst}.ln1")
        layer_norm(f"{src}.ln_2", f"{dst}.ln2")
        qkv = to_in_out(f"{src}.attn.c_attn.weight", d_model, 3 * d_model)  # [d, 3d]
        for name, part in zip(("W_Q", "W_K", "W_V"), qkv.split(d_model, dim=1), strict=True):
            ours[f"{dst}.attn.{name}"] = part.reshape(d_model, h, dh).permute(1, 0, 2)  # [H, d, dh]
        ours[f"{dst}.attn.W_O"] = to_in_out(f"{src}.attn.c_proj.weight", d_model, d_model).reshape(h, dh, d_model)
        ours[f"{dst}.mlp.W_in.weight"] = to_in_out(f"{src}.mlp.c_fc.weight", d_model, d_mlp).T
        ours[f"{dst}.mlp.W_out.weight"] = to_in_out(f"{src}.mlp.c_proj.weight", d_mlp, d_model).T
        if has_bias:
            b_qkv = take(f"{src}.attn.c_attn.bias")
            for name, part in zip(("b_Q", "b_K", "b_V"), b_qkv.split(d_model), strict=True):
                ours[f"{dst}.attn.{name}"] = part.reshape(h, dh)
            ours[f"{dst}.attn.b_O"] = take(f"{src}.attn.c_proj.bias")
            ours[f"{dst}.mlp.W_in.bias"] = take(f"{src}.mlp.c_fc.bias")
            ours[f"{dst}.mlp.W_out.bias"] = take(f"{src}.mlp.c_proj.bias")
    layer_norm("ln_f", "ln_final")
    if not tied:
        assert lm_head is not None
        ours["unembed.weight"] = lm_head
    aux_heads: dict[int, torch.Tensor] = {}
    for key in sorted(k for k in state if k.startswith("linear_regression_heads.") and k.endswith(".weight")):
        aux_heads[int(key.split(".")[1])] = state.pop(key)
    ignored = tuple(sorted(k for k in state if k.endswith(("attn.bias", "attn.masked_bias")) and k.startswith("h.")))
    for key in ignored:
        state.pop(key)
    if state:
        raise InputError(f"unrecognised keys {sorted(state)[:4]} (not the GPT-2 layout)", path=path)
    model = Transformer(cfg)
    model.load_state_dict({k: v.contiguous() for k, v in ours.items()})
    return ImportedCheckpoint(model.eval(), aux_heads, ignored)
