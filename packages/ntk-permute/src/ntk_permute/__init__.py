"""Exact learning of permutations by NTK ensembles of two-layer networks (arXiv 2502.16763).

Implemented: the NNGP/NTK kernels (`kernels`), the infinite-width GP after gradient descent (`gp`), its (k, m)
closed form (`closed_form`), rounding, permutation recovery and exhaustive evaluation (`exhaustive`), and ensemble
sizes (`complexity`). Finite-width training and the Figure 1 experiments are not implemented yet (issue #3).
"""

from ntk_permute.__about__ import __version__

__all__ = ["__version__", "PAPER"]

#: The paper this distribution implements.
PAPER = "arXiv:2502.16763"
