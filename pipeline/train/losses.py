"""The training signals of the methods, as pure functions of tensors.

Shapes: ``logits`` (N, K) float, ``labels`` (N,) int64 in ``0..K-1``, ``features`` (N, D) float (the pooled
vector after the last residual block, before the classifier: :meth:`forward_features` of every model).
Teacher tensors come from the frozen flow teacher and carry no gradient (the callers compute them under
``torch.no_grad()``; the functions also ``detach`` them, so a teacher tensor with a graph gets no gradient).

* cross-entropy: the flow teacher, RGB, the residual-frame and appearance paths, MERS step 2;
* :func:`feature_mse`: MERS step 1 (MARS §3.1): ``mean((f_s - f_t)^2)`` over every element;
* :func:`mars_loss`: ``CE + alpha * feature_mse`` (MARS §3.2, alpha = 50);
* :func:`d3d_loss`: ``CE + lambda * sum_k (z_s - z_t)^2`` on the logits, averaged over the batch (D3D eq. 1-2,
  lambda = 1; ``reduction="mean"`` averages over the K logits too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (N, K) scores against (N,) labels (a scalar)."""
    return F.cross_entropy(logits.float(), labels)


def feature_mse(features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference over every element of two (N, D) feature batches (MARS' ``nn.MSELoss``)."""
    if features.shape != teacher_features.shape:
        raise ValueError(f"student features {tuple(features.shape)} and teacher features "
                         f"{tuple(teacher_features.shape)} differ: the two networks need the same feature size")
    return F.mse_loss(features.float(), teacher_features.detach().float())


def mars_loss(logits: torch.Tensor, features: torch.Tensor, teacher_features: torch.Tensor,
              labels: torch.Tensor, alpha: float) -> tuple[torch.Tensor, dict[str, float]]:
    """MARS: ``CE(logits, labels) + alpha * feature_mse(features, teacher_features)``; also the two parts."""
    ce = cross_entropy(logits, labels)
    mse = feature_mse(features, teacher_features)
    return ce + alpha * mse, {"ce": ce.detach().item(), "mse": mse.detach().item()}


def d3d_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             lam: float, reduction: str = "sum") -> tuple[torch.Tensor, dict[str, float]]:
    """D3D: ``CE(logits, labels) + lam * L_d``; also the two parts. ``reduction``: ``sum`` (D3D eq. 2: the
    squared error summed over the K logits of a sample, averaged over the batch) or ``mean`` (averaged over
    the logits too, which weighs ``lam`` 1/K as much)."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    ce = cross_entropy(logits, labels)
    sq = (logits.float() - teacher_logits.detach().float()) ** 2
    mse = sq.sum(dim=1).mean() if reduction == "sum" else sq.mean()
    return ce + lam * mse, {"ce": ce.detach().item(), "mse": mse.detach().item()}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose highest score is the label."""
    return float((logits.argmax(dim=1) == labels).float().mean()) if len(labels) else 0.0
