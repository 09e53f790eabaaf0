"""Losses of backward-compatible training: classification, BCT influence, L2 regression, cosine match, BT^2.

All operate on batches; embeddings are L2-normalised unless stated. Shapes: `[batch, dim]` embeddings,
`[batch]` int64 labels, `[num_classes, dim]` classifiers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bt2_compat.models import BT2Output

__all__ = ["bct_influence", "bt2_loss", "classification_loss", "cosine_match", "l2_regression", "pseudo_classifier"]


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy with label smoothing (the paper's backbones use 0.1); `logits: [batch, num_classes]`."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def pseudo_classifier(old_embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """BCT's synthesised old classifier: `[num_classes, d_old]` class means of the old model's embeddings.

    Computed over the NEW training set, so classes the old model never saw get a row too (BT-2's
    `pseudo_classifier` uses class means for all classes); rows are not re-normalised. A class absent from
    `labels` gets a zero row (its logit is then 0 for every sample).
    """
    sums = torch.zeros(num_classes, old_embeddings.shape[1], dtype=old_embeddings.dtype, device=old_embeddings.device)
    sums.index_add_(0, labels, old_embeddings)
    counts = torch.bincount(labels, minlength=num_classes).clamp_min(1).to(old_embeddings.dtype)
    return sums / counts[:, None]


def bct_influence(
    embedding: torch.Tensor,
    labels: torch.Tensor,
    classifier: torch.Tensor,
    scale: float = 1.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """BCT influence loss `CE(scale * embedding[:, :d_old] @ classifier^T, y)` with the old classifier frozen.

    `embedding: [batch, >= d_old]` (its first `d_old` dims are compared with the old space),
    `classifier: [num_classes, d_old]`.
    """
    d_old = classifier.shape[1]
    logits = scale * embedding[:, :d_old] @ classifier.detach().T
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def l2_regression(embedding: torch.Tensor, old_embedding: torch.Tensor) -> torch.Tensor:
    """BCT paper's L2 baseline: batch mean of `||embedding[:, :d_old] - old_embedding||^2`."""
    d_old = old_embedding.shape[1]
    return (embedding[:, :d_old] - old_embedding.detach()).pow(2).sum(dim=1).mean()


def cosine_match(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """`1 - mean_i <normalize(student_i), normalize(teacher_i)>`; both `[batch, dim]`, teacher detached."""
    return 1.0 - (F.normalize(student, dim=1) * F.normalize(teacher.detach(), dim=1)).sum(dim=1).mean()


def bt2_loss(
    output: BT2Output,
    labels: torch.Tensor,
    old_target: torch.Tensor,
    new_target: torch.Tensor,
    classifier: torch.Tensor,
    lambdas: tuple[float, float, float] = (1.0, 10.0, 5.0),
    influence_scale: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """BT^2 stage-2 loss (spec 2.4), returning `(total, parts)`:

        CE(logits, y)                                   plain CE (BT-2 ignores label smoothing here)
      + lambda1 * (1 - mean <phi'_new(x), f_bar>)        new' branch matched to the independent new model
      + lambda2 * CE(influence_scale * h_bar M^T, y)     BCT influence on the compatible block
      + lambda3 * (1 - mean <phi_old(x), h_bar>)         compatible block matched to the old model

    `old_target: [batch, d_old]` and `new_target: [batch, d_new]` are the frozen teachers' embeddings,
    `classifier: [num_classes, d_old]` (M) the old model's class means; `lambdas = (lambda1, lambda2, lambda3)`.
    """
    lam1, lam2, lam3 = lambdas
    h_bar = F.normalize(output.compat, dim=1)
    ce = F.cross_entropy(output.logits, labels)
    new_match = cosine_match(output.new_prime, new_target)
    old_match = cosine_match(h_bar, old_target)
    influence = bct_influence(h_bar, labels, classifier, scale=influence_scale)
    total = ce + lam1 * new_match + lam2 * influence + lam3 * old_match
    parts = {
        "ce": float(ce.detach()),
        "new_match": float(new_match.detach()),
        "influence": float(influence.detach()),
        "old_match": float(old_match.detach()),
    }
    return total, parts
