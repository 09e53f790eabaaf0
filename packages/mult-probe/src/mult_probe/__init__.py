"""Why transformers fail at multiplication: implicit chain of thought, a running-sum auxiliary loss and linear
probes (arXiv 2510.00184).

Modules: `mult_probe.data` (Deng et al.'s line format, running sums, seeded splits, character vocabulary),
`mult_probe.model` (a small transformer with TransformerLens hook names), `mult_probe.train` (standard fine-tuning,
the running-sum auxiliary loss, evaluation, resumable checkpoints, torchrun data parallelism), `mult_probe.icot`
(stepwise internalisation of the chain of thought), `mult_probe.probes` (ridge probes for the running sums) and
`mult_probe.analysis` (logit attribution, attention graph, Fourier fits, PCA and Minkowski sums). Only
`mult_probe.data` imports without torch.
"""

from mult_probe.__about__ import __version__

__all__ = ["PAPER", "__version__"]

#: The paper this distribution implements.
PAPER = "arXiv:2510.00184"
