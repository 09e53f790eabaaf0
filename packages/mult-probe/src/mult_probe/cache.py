"""`ActivationCache`: activations by TransformerLens hook name, with TL's residual-stream helpers.

The helpers decompose the residual stream into what each component wrote (`decompose_resid`), read it after each
layer (`accumulated_resid`), split attention into heads (`stack_head_results`, from `hook_z` and `W_O`, so the
model need not run with `use_attn_result`), divide by a LayerNorm's cached scale (`apply_ln_to_stack`) and project
onto unembedding directions (`logit_attrs`). They follow TransformerLens' names, argument names and label strings
so analysis code carries over; stacks are `[component, batch, pos, d_model]`.

Our model keeps its LayerNorm weights unfolded, so `logit_attrs` multiplies by the final LayerNorm's weight before
the unembedding: with the cached scale frozen, the attributions of `decompose_resid()` plus the final LayerNorm
bias term (`final_ln_bias_logits`) sum to the logits exactly (TransformerLens assumes folded weights instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from mult_probe.model import Transformer

__all__ = ["ActivationCache"]

PosSlice = int | slice | None


def _slice_pos(tensor: torch.Tensor, pos_slice: PosSlice, pos_dim: int = -2) -> torch.Tensor:
    """Select positions on `pos_dim`; an int keeps the dimension (length 1) so shapes stay aligned."""
    if pos_slice is None:
        return tensor
    index = slice(pos_slice, pos_slice + 1 if pos_slice != -1 else None) if isinstance(pos_slice, int) else pos_slice
    return tensor[(slice(None),) * (tensor.ndim + pos_dim if pos_dim < 0 else pos_dim) + (index,)]


class ActivationCache(dict[str, torch.Tensor]):
    """Activations by hook name, in forward order; a dict with TransformerLens' cache methods.

    `model` (set by `Transformer.run_with_cache`) supplies `W_O`, the LayerNorm weights and the layer count; the
    methods that need a hook the cache lacks raise `KeyError` naming it.
    """

    def __init__(self, *args: Any, model: Transformer | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = model

    # --- plain access ------------------------------------------------------------------------------------------
    def stack(self, suffix: str) -> torch.Tensor:
        """`[n_layers, ...]` stack of `blocks.{l}.<suffix>` over the layers present in the cache."""
        keys = [k for k in self if k.startswith("blocks.") and k.split(".", 2)[2] == suffix]
        if not keys:
            raise KeyError(f"no cached activation ends with {suffix!r}")
        return torch.stack([self[k] for k in keys])

    def stack_activation(self, suffix: str) -> torch.Tensor:
        """TransformerLens' name for `stack`."""
        return self.stack(suffix)

    def _get(self, name: str) -> torch.Tensor:
        if name not in self:
            raise KeyError(f"the cache has no {name!r}; run run_with_cache without a names_filter that drops it")
        return self[name]

    def _model(self) -> Transformer:
        if self.model is None:
            raise ValueError("this cache has no model attached (made outside Transformer.run_with_cache)")
        return self.model

    @property
    def n_layers(self) -> int:
        return self._model().cfg.n_layers

    def _layer(self, layer: int | None) -> int:
        n = self.n_layers
        layer = n if layer is None else (layer + n + 1 if layer < 0 else layer)
        if not 0 <= layer <= n:
            raise ValueError(f"layer: must be in [0, {n}] (or negative from the end), got {layer}")
        return layer

    # --- residual stream ---------------------------------------------------------------------------------------
    def decompose_resid(
        self,
        layer: int | None = None,
        mlp_input: bool = False,
        apply_ln: bool = False,
        pos_slice: PosSlice = None,
        incl_embeds: bool = True,
        return_labels: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """What each component wrote into the residual stream that enters `layer` (default: the final one).

        Components: `embed`, `pos_embed`, then `{l}_attn_out`, `{l}_mlp_out` per earlier layer (and `{layer}_attn_out`
        with `mlp_input`). Their sum is `blocks.{layer}.hook_resid_pre` (`hook_resid_mid` with `mlp_input`, the final
        `hook_resid_post` for `layer = n_layers`). `[component, batch, pos, d_model]`.
        """
        layer = self._layer(layer)
        parts: list[torch.Tensor] = []
        labels: list[str] = []
        if incl_embeds:
            parts += [self._get("hook_embed"), self._get("hook_pos_embed")]
            labels += ["embed", "pos_embed"]
        for index in range(layer + (1 if mlp_input and layer < self.n_layers else 0)):
            parts.append(self._get(f"blocks.{index}.hook_attn_out"))
            labels.append(f"{index}_attn_out")
            if index < layer:
                parts.append(self._get(f"blocks.{index}.hook_mlp_out"))
                labels.append(f"{index}_mlp_out")
        stack = _slice_pos(torch.stack(parts), pos_slice)
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, mlp_input, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def accumulated_resid(
        self,
        layer: int | None = None,
        incl_mid: bool = False,
        apply_ln: bool = False,
        pos_slice: PosSlice = None,
        mlp_input: bool = False,
        return_labels: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """The residual stream as each layer reads it: `resid_pre` of layers 0..layer-1 (plus `resid_mid` with
        `incl_mid`), then `resid_pre` of `layer`, or the final `resid_post` (label `final_post`) when it is the last.

        With `apply_ln`, every entry goes through the LayerNorm that `layer` applies; for the final layer (the logit
        lens) each entry is normalised with its own scale by the final LayerNorm, weight and bias included (as TL's
        `recompute_ln`), otherwise divided by the cached scale. `[component, batch, pos, d_model]`.
        """
        layer = self._layer(layer)
        parts: list[torch.Tensor] = []
        labels: list[str] = []
        for index in range(layer + 1):
            if index == self.n_layers:
                parts.append(self._get(f"blocks.{index - 1}.hook_resid_post"))
                labels.append("final_post")
                break
            parts.append(self._get(f"blocks.{index}.hook_resid_pre"))
            labels.append(f"{index}_pre")
            if (incl_mid and index < layer) or (mlp_input and index == layer):
                parts.append(self._get(f"blocks.{index}.hook_resid_mid"))
                labels.append(f"{index}_mid")
        stack = _slice_pos(torch.stack(parts), pos_slice)
        if apply_ln:
            recompute = layer == self.n_layers
            stack = self.apply_ln_to_stack(stack, layer, mlp_input, pos_slice=pos_slice, recompute_ln=recompute)
        return (stack, labels) if return_labels else stack

    def stack_head_results(
        self,
        layer: int = -1,
        return_labels: bool = False,
        incl_remainder: bool = False,
        pos_slice: PosSlice = None,
        apply_ln: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """Each head's output in the residual stream (`hook_z @ W_O`, without `b_O`), for the layers before `layer`
        (default -1: every layer). Labels `L{l}H{h}`; with `incl_remainder`, a last `remainder` component holds the
        rest of the residual stream there (embeddings, MLPs, `b_O`), so the stack sums to it.
        """
        end = self._layer(layer)
        model = self._model()
        parts: list[torch.Tensor] = []
        labels: list[str] = []
        for index in range(end):
            z = self._get(f"blocks.{index}.attn.hook_z")  # [B, T, H, dh]
            w_o = model.blocks[index].attn.W_O.detach().to(z.dtype)  # [H, dh, d]
            parts.append(torch.einsum("bthe,hed->hbtd", z, w_o))
            labels += [f"L{index}H{head}" for head in range(w_o.shape[0])]
        if not parts:
            raise ValueError("stack_head_results: no layer before layer 0")
        stack = torch.cat(parts)
        if incl_remainder:
            resid = self.accumulated_resid(end)[-1]  # type: ignore[index]
            stack = torch.cat([stack, (resid - stack.sum(0))[None]])
            labels.append("remainder")
        stack = _slice_pos(stack, pos_slice)
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, end, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def _ln_name(self, layer: int | None, mlp_input: bool) -> str:
        layer = self._layer(layer)
        if layer == self.n_layers:
            return "ln_final"
        return f"blocks.{layer}.{'ln2' if mlp_input else 'ln1'}"

    def apply_ln_to_stack(
        self,
        residual_stack: torch.Tensor,
        layer: int | None = None,
        mlp_input: bool = False,
        pos_slice: PosSlice = None,
        batch_slice: int | slice | None = None,
        has_batch_dim: bool = True,
        recompute_ln: bool = False,
    ) -> torch.Tensor:
        """Centre each vector and divide by the cached `hook_scale` of the LayerNorm that `layer` applies (ln1, ln2
        with `mlp_input`, `ln_final` for the last layer): the LayerNorm with its scale frozen, a linear map.

        Like TransformerLens, the LayerNorm weight and bias are not applied (TL assumes them folded).
        `recompute_ln` (final layer only, as TL): apply the final LayerNorm itself to each vector instead (own
        scale, weight and bias). `residual_stack`: `[..., batch, pos, d_model]` (`[..., pos, d_model]` without
        the batch dim).
        """
        if recompute_ln and self._layer(layer) == self.n_layers:
            ln = self._model().ln_final
            centred = residual_stack - residual_stack.mean(dim=-1, keepdim=True)
            scale = (centred.pow(2).mean(dim=-1, keepdim=True) + ln.ln.eps).sqrt()
            return centred / scale * ln.weight.detach() + ln.bias.detach()
        scale = self._get(f"{self._ln_name(layer, mlp_input)}.hook_scale")  # [B, T, 1]
        if batch_slice is not None:
            scale = scale[batch_slice if isinstance(batch_slice, slice) else slice(batch_slice, batch_slice + 1)]
        scale = _slice_pos(scale, pos_slice)
        if not has_batch_dim:
            scale = scale[0]
        centred = residual_stack - residual_stack.mean(dim=-1, keepdim=True)
        return centred / scale

    def _directions(self, tokens: int | torch.Tensor) -> torch.Tensor:
        """Unembedding directions with the final LayerNorm weight folded in: `[..., d_model]`."""
        model = self._model()
        w_u = model.W_U.detach() * model.ln_final.weight.detach()[:, None]  # [d, V]
        if isinstance(tokens, int):
            return w_u[:, tokens]
        return w_u.T[tokens.long()]

    def logit_attrs(
        self,
        residual_stack: torch.Tensor,
        tokens: int | torch.Tensor,
        incorrect_tokens: int | torch.Tensor | None = None,
        pos_slice: PosSlice = None,
        batch_slice: int | slice | None = None,
        has_batch_dim: bool = True,
    ) -> torch.Tensor:
        """Each component's direct contribution to the logit of `tokens` (minus that of `incorrect_tokens`).

        `residual_stack` `[component, batch, pos, d_model]` (raw, from `decompose_resid` etc.) goes through the
        final LayerNorm with its cached scale and weight, then onto `W_U[:, token]`. `tokens`: one id, or ids of
        shape `[batch]` or `[batch, pos]` (per example / per position). Returns `[component, batch, pos]`.
        """
        scaled = self.apply_ln_to_stack(residual_stack, None, False, pos_slice, batch_slice, has_batch_dim)

        def project(ids: int | torch.Tensor) -> torch.Tensor:
            directions = self._directions(ids).to(scaled.dtype)
            if directions.ndim == 1:
                return scaled @ directions
            if has_batch_dim and directions.ndim == 2:  # [batch, d] -> one token per example, every position
                directions = directions[:, None, :]
            return (scaled * directions).sum(-1)

        attrs = project(tokens)
        if incorrect_tokens is not None:
            attrs = attrs - project(incorrect_tokens)
        return attrs

    def final_ln_bias_logits(self, tokens: int | torch.Tensor) -> torch.Tensor:
        """`ln_final.bias @ W_U[:, tokens]` (+ `b_U`): the part of a logit that no component writes."""
        model = self._model()
        bias = model.ln_final.bias.detach()
        w_u = model.W_U.detach()
        b_u = model.b_U.detach() if model.cfg.unembed_bias else torch.zeros(w_u.shape[1], dtype=w_u.dtype)
        if isinstance(tokens, int):
            return bias @ w_u[:, tokens] + b_u[tokens]
        return w_u.T[tokens.long()] @ bias + b_u[tokens.long()]
