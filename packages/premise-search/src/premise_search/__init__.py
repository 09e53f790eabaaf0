"""LeanSearch v2: premise retrieval for Lean 4 in standard and reasoning modes (arXiv 2605.13137).

This is the package skeleton: the paper's implementation lands with issue #7.
"""

from premise_search.__about__ import __version__

__all__ = ["__version__", "PAPER"]

#: The paper this distribution implements.
PAPER = "arXiv:2605.13137"
