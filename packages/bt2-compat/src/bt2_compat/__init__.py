"""BT^2: backward-compatible embedding training with an orthonormal basis transformation (arXiv 2211.03989).

This is the package skeleton: the paper's implementation lands with issue #6.
"""

from bt2_compat.__about__ import __version__

__all__ = ["__version__", "PAPER"]

#: The paper this distribution implements.
PAPER = "arXiv:2211.03989"
