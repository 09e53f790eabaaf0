"""Why transformers fail at multiplication: implicit chain of thought, a running-sum auxiliary loss and linear probes (arXiv 2510.00184).

This is the package skeleton: the paper's implementation lands with issue #4.
"""

from mult_probe.__about__ import __version__

__all__ = ["__version__", "PAPER"]

#: The paper this distribution implements.
PAPER = "arXiv:2510.00184"
