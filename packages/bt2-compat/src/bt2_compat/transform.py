"""The basis transformation (BT): a learnable orthonormal map, and checks of its orthonormality.

BT^2 keeps every bit of the new model's information because its maps are orthonormal: `||Q x|| = ||x||` and
`<Q x, Q y> = <x, y>`. The released code gets orthonormality from `torch.nn.utils.parametrizations.orthogonal` on
a bias-free square `nn.Linear`; so does `BasisTransform`. For a square matrix PyTorch's default map is the matrix
exponential of a skew-symmetric matrix with dynamic trivialization (`orthogonal_map="matrix_exp"`).

`skew_expm` is the explicit reference map `Q = matrix_exp(A - A^T)` (what lambda-orthogonality uses; easy to port
to JAX), used by the tests to cross-check the parametrization.

Export note: `torch.jit.script` fails on parametrized modules; save state_dicts (keys
`linear.parametrizations.weight.original` and `...weight.0.base`) or call `freeze()` first.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from repro_core.errors import ConfigError

__all__ = ["INITS", "MAPS", "BasisTransform", "orthogonality_error", "skew_expm"]

#: Accepted `orthogonal_map` values of `torch.nn.utils.parametrizations.orthogonal`.
MAPS = ("matrix_exp", "cayley", "householder")
#: Accepted initialisations: "random" (PyTorch's QR of the default Linear init, what BT-2 gets) or "identity".
INITS = ("random", "identity")


def orthogonality_error(weight: torch.Tensor) -> float:
    """`max |Q^T Q - I|` of a square matrix `weight: [dim, dim]`, computed in float64 (the drift measure)."""
    q = weight.detach().to(torch.float64)
    if q.ndim != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"weight: expected a square [dim, dim] matrix, got shape {tuple(q.shape)}")
    eye = torch.eye(q.shape[0], dtype=torch.float64, device=q.device)
    return float((q.T @ q - eye).abs().max())


def skew_expm(params: torch.Tensor) -> torch.Tensor:
    """Reference orthogonal map `Q = matrix_exp(A - A^T)` with `A = triu(params, 1)`; `params: [dim, dim]`."""
    if params.ndim != 2 or params.shape[0] != params.shape[1]:
        raise ValueError(f"params: expected a square [dim, dim] matrix, got shape {tuple(params.shape)}")
    upper = torch.triu(params, diagonal=1)
    return torch.linalg.matrix_exp(upper - upper.T)


class BasisTransform(nn.Module):
    """A learnable orthonormal map `x -> x Q^T` of `[batch, dim]` inputs (bias-free, square).

    Args:
        dim: the dimension (>= 1).
        orthogonal_map: "matrix_exp" (PyTorch's default for square layers, and the paper's), "cayley" or
            "householder".
        init: "random" (a random orthogonal matrix, what BT-2 gets) or "identity".
    """

    def __init__(self, dim: int, orthogonal_map: str = "matrix_exp", init: str = "random") -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"dim: expected a positive integer, got {dim!r}")
        if orthogonal_map not in MAPS:
            raise ConfigError(f"orthogonal_map: expected one of {MAPS}, got {orthogonal_map!r}")
        if init not in INITS:
            raise ConfigError(f"init: expected one of {INITS}, got {init!r}")
        self.dim = dim
        self.orthogonal_map = orthogonal_map
        self.linear = nn.utils.parametrizations.orthogonal(
            nn.Linear(dim, dim, bias=False), orthogonal_map=orthogonal_map
        )
        if init == "identity":
            with torch.no_grad():
                self.linear.weight = torch.eye(dim)  # goes through the parametrization's right_inverse

    @property
    def weight(self) -> torch.Tensor:
        """The orthonormal matrix `Q: [dim, dim]` (recomputed from the parameters on each access)."""
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x: [batch, dim] -> [batch, dim]`, `x Q^T` (norms and inner products preserved)."""
        return self.linear(x)

    def freeze(self) -> None:
        """Replace the parametrization by its current matrix (for TorchScript export or plain inference)."""
        if parametrize.is_parametrized(self.linear, "weight"):
            parametrize.remove_parametrizations(self.linear, "weight", leave_parametrized=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, orthogonal_map={self.orthogonal_map!r}"
