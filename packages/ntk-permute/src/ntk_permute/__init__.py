"""Exact learning of permutations by NTK ensembles of two-layer networks (arXiv 2502.16763).

This is the package skeleton: the paper's implementation lands with issue #3.
"""

from ntk_permute.__about__ import __version__

__all__ = ["__version__", "PAPER"]

#: The paper this distribution implements.
PAPER = "arXiv:2502.16763"
