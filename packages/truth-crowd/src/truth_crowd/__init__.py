"""Crowdsourced truthfulness judgments on seven dimensions: quality control, aggregation and agreement (arXiv 2108.01222).

This is the package skeleton: the paper's implementation lands with issue #5.
"""

from truth_crowd.__about__ import __version__

__all__ = ["__version__", "PAPER"]

#: The paper this distribution implements.
PAPER = "arXiv:2108.01222"
