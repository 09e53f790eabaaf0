"""Exact learning of permutations by NTK ensembles of two-layer networks (arXiv 2502.16763).

Implemented: the NNGP/NTK kernels (`kernels`), the infinite-width GP after gradient descent (`gp`), its (k, m)
closed form (`closed_form`), rounding, permutation recovery and exhaustive evaluation (`exhaustive`), ensemble
sizes (`complexity`), the Monte-Carlo joint probability P_all(M) (`montecarlo`), finite-width ensembles trained by
gradient descent in JAX or torch (`training`, `evaluation`) and the Figure 1 / scaling experiments (`experiments`).
"""

from ntk_permute.__about__ import __version__

__all__ = ["PAPER", "__version__"]

#: The paper this distribution implements.
PAPER = "arXiv:2502.16763"
