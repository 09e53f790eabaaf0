"""A compact pre-LN decoder-only transformer with TransformerLens hook names, an activation cache and greedy decoding.

Every intermediate activation passes through a `HookPoint` (an identity module) registered under the name
TransformerLens uses, so `run_with_cache` and `run_with_hooks` address activations exactly as TL users expect:

    hook_embed, hook_pos_embed                                      [B, T, d_model]
    blocks.{l}.hook_resid_pre / hook_resid_mid / hook_resid_post    [B, T, d_model]
    blocks.{l}.ln1.hook_scale / ln2.hook_scale, ln_final.hook_scale  [B, T, 1] (sqrt(var + eps))
    blocks.{l}.ln1.hook_normalized, blocks.{l}.ln2.hook_normalized  [B, T, d_model] (before weight and bias)
    blocks.{l}.attn.hook_q / hook_k / hook_v / hook_z               [B, T, n_heads, d_head]
    blocks.{l}.attn.hook_attn_scores / hook_pattern                 [B, n_heads, T_q, T_k] (scores causally masked)
    blocks.{l}.attn.hook_result (only with use_attn_result)         [B, T, n_heads, d_model]
    blocks.{l}.hook_attn_out, blocks.{l}.hook_mlp_out               [B, T, d_model]
    blocks.{l}.mlp.hook_pre / hook_post                             [B, T, d_mlp]
    ln_final.hook_normalized                                        [B, T, d_model]

Hooks added by `run_with_cache`, `run_with_hooks` or the `hooks()` context manager are always removed on exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from mult_probe.cache import ActivationCache
from repro_core.config import checked_fields
from repro_core.errors import ConfigError

__all__ = ["ActivationCache", "HookPoint", "KeyValueCache", "ModelConfig", "Transformer", "hook_names"]

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]


@dataclass(frozen=True)
class ModelConfig:
    """Shape and initialisation of the transformer; presets are the class methods `paper`, `tiny`, ...."""

    d_vocab: int = 17  #: vocabulary size (the 17-symbol `CharTokenizer` by default)
    n_ctx: int = 128  #: maximum sequence length (learned absolute positions)
    d_model: int = 64  #: residual stream width
    n_layers: int = 2  #: transformer blocks
    n_heads: int = 4  #: attention heads per block; d_head = d_model / n_heads
    d_mlp: int | None = None  #: MLP width (default 4 * d_model)
    act_fn: Literal["gelu", "gelu_new"] = "gelu"  #: exact (erf) GELU or GPT-2's tanh approximation
    dropout: float = 0.0  #: embedding, attention and residual dropout (GPT-2: 0.1)
    bias: bool = True  #: biases in attention and MLP linears
    tie_embeddings: bool = False  #: unembedding = embedding transposed
    embed_init_std: float = 0.02  #: std of token/position embeddings (GPT-2 0.02; the authors' SFT model 1.0)
    init_std: float = 0.02  #: std of every other weight matrix
    ln_eps: float = 1e-5  #: LayerNorm epsilon
    use_attn_result: bool = False  #: also expose per-head post-W_O outputs at attn.hook_result (memory heavy)
    unembed_bias: bool = False  #: a bias b_U on the logits (where folding the final LayerNorm's bias puts it)

    def __post_init__(self) -> None:
        for name in ("d_vocab", "n_ctx", "d_model", "n_layers", "n_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model: {self.d_model} is not divisible by n_heads = {self.n_heads}")
        if self.d_mlp is not None and (not isinstance(self.d_mlp, int) or self.d_mlp < 1):
            raise ConfigError(f"d_mlp: must be an integer >= 1 or None, got {self.d_mlp!r}")
        if self.act_fn not in ("gelu", "gelu_new"):
            raise ConfigError(f"act_fn: must be 'gelu' or 'gelu_new', got {self.act_fn!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        for name in ("embed_init_std", "init_std", "ln_eps"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def mlp_width(self) -> int:
        return 4 * self.d_model if self.d_mlp is None else self.d_mlp

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**checked_fields(cls, data, "model config"))

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def paper(cls, **overrides: Any) -> ModelConfig:
        """The ICoT model (spec 4.1): GPT-2 style, 2 layers, 4 heads, width 768, dropout 0.1, tied, tanh GELU."""
        base = dict(d_model=768, n_layers=2, n_heads=4, d_mlp=3072, act_fn="gelu_new", dropout=0.1, tie_embeddings=True)
        return cls(**{**base, **overrides})

    @classmethod
    def paper_sft(cls, **overrides: Any) -> ModelConfig:
        """The authors' SFT/aux model (spec 4.2): width 768, 2x4 heads, no biases, std-1 embeddings, untied."""
        base = dict(
            d_model=768,
            n_layers=2,
            n_heads=4,
            d_mlp=3072,
            act_fn="gelu",
            dropout=0.0,
            bias=False,
            tie_embeddings=False,
            embed_init_std=1.0,
            ln_eps=1e-9,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def paper_12l8h(cls, **overrides: Any) -> ModelConfig:
        """The deeper SFT baseline the paper reports failing the same way (12 layers, 8 heads, width 768)."""
        return cls.paper_sft(**{"n_layers": 12, "n_heads": 8, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> ModelConfig:
        """A CPU-sized model for tests and quick runs: width 64, 2 layers, 4 heads (~0.1M parameters)."""
        return cls(**{**dict(d_model=64, n_layers=2, n_heads=4), **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> ModelConfig:
        """Width 128, 2 layers, 4 heads: the largest we run on CPU."""
        return cls(**{**dict(d_model=128, n_layers=2, n_heads=4), **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A preset by name: paper, paper_sft, paper_12l8h, tiny, small."""
        presets = {
            "paper": cls.paper,
            "paper_sft": cls.paper_sft,
            "paper_12l8h": cls.paper_12l8h,
            "tiny": cls.tiny,
            "small": cls.small,
        }
        if name not in presets:
            raise ConfigError(f"preset: unknown {name!r}; choose from {', '.join(presets)}")
        return presets[name](**overrides)


class HookPoint(nn.Module):
    """An identity module: a named place to read or replace an activation with a forward hook."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _LayerNorm(nn.Module):
    """LayerNorm whose scale `sqrt(var + eps)` passes through `hook_scale` [B, T, 1] (as in TL) when hooked.

    As in TransformerLens, `hook_normalized` is `(x - mean) / scale`, before the weight and bias.

    The parameters stay in an `nn.LayerNorm` (`ln.weight`, `ln.bias`) so checkpoints keep their key names.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    @property
    def weight(self) -> torch.Tensor:
        return self.ln.weight

    @property
    def bias(self) -> torch.Tensor:
        return self.ln.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The fused kernel unless a hook needs the pieces: training pays nothing for hook_scale (the three paths
        # agree to float rounding; each is deterministic).
        if self.hook_scale._forward_hooks:
            centred = x - x.mean(dim=-1, keepdim=True)
            scale = self.hook_scale((centred.pow(2).mean(dim=-1, keepdim=True) + self.ln.eps).sqrt())
            normalized = self.hook_normalized(centred / scale)
        elif self.hook_normalized._forward_hooks:
            normalized = self.hook_normalized(F.layer_norm(x, self.ln.normalized_shape, eps=self.ln.eps))
        else:
            return self.ln(x)
        return normalized * self.ln.weight + self.ln.bias


class _Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, h, dh = cfg.d_model, cfg.n_heads, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        if cfg.bias:
            self.b_Q = nn.Parameter(torch.zeros(h, dh))
            self.b_K = nn.Parameter(torch.zeros(h, dh))
            self.b_V = nn.Parameter(torch.zeros(h, dh))
            self.b_O = nn.Parameter(torch.zeros(d))
        for hook in ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z", "hook_result"):
            setattr(self, hook, HookPoint())
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)), persistent=False)

    def forward(self, x: torch.Tensor, kv_cache: KeyValueCache | None = None, layer: int = 0) -> torch.Tensor:
        """x: [B, T, d_model] -> [B, T, d_model]; with `kv_cache`, x holds only the new positions."""
        cfg = self.cfg
        q = torch.einsum("btd,hde->bthe", x, self.W_Q)
        k = torch.einsum("btd,hde->bthe", x, self.W_K)
        v = torch.einsum("btd,hde->bthe", x, self.W_V)
        if cfg.bias:
            q, k, v = q + self.b_Q, k + self.b_K, v + self.b_V
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        t = x.shape[1]
        past = 0
        if kv_cache is not None:
            past = kv_cache.length
            k, v = kv_cache.extend(layer, k, v)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(cfg.d_head)
        scores = scores.masked_fill(~self.mask[past : past + t, : past + t], float("-inf"))
        scores = self.hook_attn_scores(scores)
        pattern = self.hook_pattern(F.softmax(scores, dim=-1))
        pattern = F.dropout(pattern, cfg.dropout, self.training)
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))  # [B, T, H, d_head]
        if cfg.use_attn_result:
            result = self.hook_result(torch.einsum("bqhe,hed->bqhd", z, self.W_O))  # [B, T, H, d_model]
            out = result.sum(dim=2)
        else:
            out = torch.einsum("bqhe,hed->bqd", z, self.W_O)
        return out + self.b_O if cfg.bias else out


class _MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_in = nn.Linear(cfg.d_model, cfg.mlp_width, bias=cfg.bias)
        self.W_out = nn.Linear(cfg.mlp_width, cfg.d_model, bias=cfg.bias)
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(self.W_in(x))
        post = self.hook_post(F.gelu(pre, approximate="tanh" if self.cfg.act_fn == "gelu_new" else "none"))
        return self.W_out(post)


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.ln1 = _LayerNorm(cfg)
        self.attn = _Attention(cfg)
        self.ln2 = _LayerNorm(cfg)
        self.mlp = _MLP(cfg)
        for hook in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"):
            setattr(self, hook, HookPoint())

    def forward(self, x: torch.Tensor, kv_cache: KeyValueCache | None = None, layer: int = 0) -> torch.Tensor:
        p = self.cfg.dropout
        x = self.hook_resid_pre(x)
        attn_out = self.hook_attn_out(F.dropout(self.attn(self.ln1(x), kv_cache, layer), p, self.training))
        x = self.hook_resid_mid(x + attn_out)
        mlp_out = self.hook_mlp_out(F.dropout(self.mlp(self.ln2(x)), p, self.training))
        return self.hook_resid_post(x + mlp_out)


class KeyValueCache:
    """Keys and values of every position decoded so far, per layer, so `generate` feeds only the new token.

    `Transformer.forward(tokens, kv_cache=cache)` reads positions `cache.length ...` and appends their keys and
    values; the attention of a new position over the cached ones is the same computation as without the cache.
    """

    def __init__(self, n_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.length = 0  #: positions already stored (the offset of the next token)

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this call's [B, T, H, d_head] keys and values of `layer`; return all of them so far."""
        past_k, past_v = self.keys[layer], self.values[layer]
        if past_k is not None and past_v is not None:
            k, v = torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def hook_names(cfg: ModelConfig) -> list[str]:
    """Every hook name of a model with config `cfg`, in the order the forward pass reaches them."""
    names = ["hook_embed", "hook_pos_embed"]
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}"
        names += [
            f"{b}.hook_resid_pre",
            f"{b}.ln1.hook_scale",
            f"{b}.ln1.hook_normalized",
            f"{b}.attn.hook_q",
            f"{b}.attn.hook_k",
            f"{b}.attn.hook_v",
            f"{b}.attn.hook_attn_scores",
            f"{b}.attn.hook_pattern",
            f"{b}.attn.hook_z",
        ]
        names += [f"{b}.attn.hook_result"] * cfg.use_attn_result
        names += [
            f"{b}.hook_attn_out",
            f"{b}.hook_resid_mid",
            f"{b}.ln2.hook_scale",
            f"{b}.ln2.hook_normalized",
            f"{b}.mlp.hook_pre",
            f"{b}.mlp.hook_post",
            f"{b}.hook_mlp_out",
            f"{b}.hook_resid_post",
        ]
    return [*names, "ln_final.hook_scale", "ln_final.hook_normalized"]


class Transformer(nn.Module):
    """Decoder-only transformer: token + learned position embeddings, pre-LN blocks, final LN, unembedding.

    `forward(tokens [B, T]) -> logits [B, T, d_vocab]`. Weights follow TL's layout: `W_Q/W_K/W_V [H, d_model,
    d_head]`, `W_O [H, d_head, d_model]` per block; accessors `W_E`, `W_pos`, `W_U` and stacked `W_Q` etc.
    """

    def __init__(self, cfg: ModelConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = _LayerNorm(cfg)
        self.unembed = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.d_vocab, bias=False)
        if cfg.unembed_bias:
            self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
        self.hook_dict: dict[str, HookPoint] = {n: m for n, m in self.named_modules() if isinstance(m, HookPoint)}
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """GPT-2 style init from `generator` (normal(0, init_std); embeddings normal(0, embed_init_std))."""
        cfg = self.cfg
        for name, param in self.named_parameters():
            if name.endswith(("ln.weight",)):
                param.fill_(1.0)
            elif name.endswith(("ln.bias",)) or ".b_" in name or name.endswith(".bias") or name == "b_U":
                param.zero_()
            elif name in ("embed.weight", "pos_embed.weight"):
                param.normal_(0.0, cfg.embed_init_std, generator=generator)
            else:
                param.normal_(0.0, cfg.init_std, generator=generator)

    # --- weights, TransformerLens style -------------------------------------------------------------------------
    @property
    def W_E(self) -> torch.Tensor:
        """[d_vocab, d_model]"""
        return self.embed.weight

    @property
    def W_pos(self) -> torch.Tensor:
        """[n_ctx, d_model]"""
        return self.pos_embed.weight

    @property
    def W_U(self) -> torch.Tensor:
        """[d_model, d_vocab]"""
        return self.embed.weight.T if self.unembed is None else self.unembed.weight.T

    def _stack(self, name: str) -> torch.Tensor:
        return torch.stack([getattr(block.attn, name) for block in self.blocks])

    @property
    def W_Q(self) -> torch.Tensor:
        """[n_layers, n_heads, d_model, d_head]"""
        return self._stack("W_Q")

    @property
    def W_K(self) -> torch.Tensor:
        return self._stack("W_K")

    @property
    def W_V(self) -> torch.Tensor:
        return self._stack("W_V")

    @property
    def W_O(self) -> torch.Tensor:
        """[n_layers, n_heads, d_head, d_model]"""
        return self._stack("W_O")

    @property
    def W_in(self) -> torch.Tensor:
        """[n_layers, d_model, d_mlp]"""
        return torch.stack([block.mlp.W_in.weight.T for block in self.blocks])

    @property
    def W_out(self) -> torch.Tensor:
        """[n_layers, d_mlp, d_model]"""
        return torch.stack([block.mlp.W_out.weight.T for block in self.blocks])

    # --- forward and hooks ---------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, *, kv_cache: KeyValueCache | None = None) -> torch.Tensor:
        """tokens: [B, T] int64 -> logits [B, T, d_vocab].

        With `kv_cache`, `tokens` are the positions after the `kv_cache.length` already cached ones (their keys and
        values are appended): the incremental decoding that `generate` uses.
        """
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be [batch, seq], got shape {tuple(tokens.shape)}")
        t = tokens.shape[1]
        start = 0 if kv_cache is None else kv_cache.length
        if start + t > self.cfg.n_ctx:
            raise ValueError(f"tokens: sequence length {start + t} exceeds n_ctx = {self.cfg.n_ctx}")
        embed = self.hook_embed(self.embed(tokens))
        positions = torch.arange(start, start + t, device=tokens.device)
        pos = self.hook_pos_embed(self.pos_embed(positions).expand_as(embed))
        x = F.dropout(embed + pos, self.cfg.dropout, self.training)
        for layer, block in enumerate(self.blocks):
            x = block(x, kv_cache, layer)
        if kv_cache is not None:
            kv_cache.length += t
        x = self.ln_final(x)
        return x @ self.W_U + self.b_U if self.cfg.unembed_bias else x @ self.W_U

    def _points(self, name: str | Callable[[str], bool]) -> list[HookPoint]:
        points = [p for n, p in self.hook_dict.items() if (name(n) if callable(name) else n == name)]
        if not points and not callable(name):
            raise KeyError(f"no hook point named {name!r}")
        return points

    @contextlib.contextmanager
    def hooks(
        self,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
        bwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
    ) -> Iterator[Transformer]:
        """Attach `(name or name-predicate, fn(activation, hook) -> replacement or None)` hooks; always removed.

        `bwd_hooks` get `fn(gradient, hook)`, the gradient of whatever is backpropagated with respect to that
        activation (a replacement gradient or None). They are attached to the activation tensors during the forward
        passes run inside the block, so a `.backward()` after the block still reaches them (unlike TL, no
        `reset_hooks_end=False` is needed); activations that do not require grad get none.
        """
        handles = []
        try:
            for name, fn in fwd_hooks:
                for point in self._points(name):
                    handles.append(
                        point.register_forward_hook(lambda module, _inputs, output, fn=fn: fn(output, module))
                    )
            for name, fn in bwd_hooks:
                for point in self._points(name):

                    def attach(module: nn.Module, _inputs: Any, output: torch.Tensor, fn: HookFn = fn) -> None:
                        if output.requires_grad:
                            output.register_hook(lambda grad: fn(grad, module))  # type: ignore[arg-type]

                    handles.append(point.register_forward_hook(attach))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def run_with_hooks(
        self,
        tokens: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
        bwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
    ) -> torch.Tensor:
        """Logits `[B, T, d_vocab]` of a forward pass with temporary hooks (e.g. ablations, patches).

        Backward hooks fire when the caller backpropagates from these logits.
        """
        with self.hooks(fwd_hooks, bwd_hooks):
            return self(tokens)

    def run_with_cache(
        self,
        tokens: torch.Tensor,
        names_filter: str | Sequence[str] | Callable[[str], bool] | None = None,
        *,
        detach: bool = True,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """(logits `[B, T, d_vocab]`, cache of the hook activations selected by `names_filter`).

        `detach=False` keeps the autograd graph, which the auxiliary loss needs during training.
        """
        if names_filter is None:
            keep: Callable[[str], bool] = lambda _n: True  # noqa: E731
        elif isinstance(names_filter, str):
            if names_filter not in self.hook_dict:
                raise KeyError(f"no hook point named {names_filter!r}")
            keep = lambda n: n == names_filter  # noqa: E731
        elif callable(names_filter):
            keep = names_filter
        else:
            wanted = set(names_filter)
            unknown = wanted - set(self.hook_dict)
            if unknown:
                raise KeyError(f"no hook point named {sorted(unknown)[0]!r}")
            keep = wanted.__contains__
        cache = ActivationCache(model=self)

        def save(act: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = act.detach() if detach else act

        with self.hooks([(keep, save)]):
            logits = self(tokens)
        return logits, cache

    def run_with_cache_and_grad(
        self,
        tokens: torch.Tensor,
        metric: Callable[[torch.Tensor], torch.Tensor],
        names_filter: str | Sequence[str] | Callable[[str], bool] | None = None,
    ) -> tuple[torch.Tensor, ActivationCache, ActivationCache]:
        """(metric value, forward cache, gradient cache): `d metric(logits) / d activation` at every selected hook.

        TL's `run_with_cache(incl_bwd=True)` with the scalar `metric` made explicit; what attribution patching needs.
        Parameter gradients are left untouched (the backward pass asks for the activations' gradients only).
        """
        with torch.enable_grad():
            logits, cache = self.run_with_cache(tokens, names_filter, detach=False)
            if not cache:
                raise KeyError("names_filter selected no hook point")
            names = list(cache)
            acts = [cache[n] for n in names]
            if not all(a.requires_grad for a in acts):
                raise ValueError("run_with_cache_and_grad: activations do not require grad (frozen parameters?)")
            value = metric(logits)
            grads = torch.autograd.grad(value, acts, allow_unused=True)
        grad_cache = ActivationCache(model=self)
        fwd_cache = ActivationCache(model=self)
        for name, act, grad in zip(names, acts, grads, strict=True):
            fwd_cache[name] = act.detach()
            grad_cache[name] = torch.zeros_like(act) if grad is None else grad.detach()
        return value.detach(), fwd_cache, grad_cache

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, *, use_past_kv_cache: bool = True) -> torch.Tensor:
        """Greedy decoding (argmax at every step; never sampling): prompt [B, P] -> [B, P + max_new_tokens].

        With `use_past_kv_cache` (default) each step feeds only the newest token and reuses the cached keys and
        values; the tokens equal the uncached decoding's (`use_past_kv_cache=False`), which reruns the whole prefix.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        was_training = self.training
        self.eval()
        try:
            out = prompt
            if max_new_tokens == 0:
                return out
            if not use_past_kv_cache:
                for _ in range(max_new_tokens):
                    next_token = self(out)[:, -1].argmax(dim=-1, keepdim=True)
                    out = torch.cat([out, next_token], dim=1)
                return out
            kv_cache = KeyValueCache(self.cfg.n_layers)
            logits = self(prompt, kv_cache=kv_cache)
            for step in range(max_new_tokens):
                next_token = logits[:, -1].argmax(dim=-1, keepdim=True)
                out = torch.cat([out, next_token], dim=1)
                if step + 1 < max_new_tokens:
                    logits = self(next_token, kv_cache=kv_cache)
            return out
        finally:
            self.train(was_training)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
