"""DMC-Net's training signals (Shou et al. 2019, §3.3 and supplementary §7.2), as pure functions of tensors,
and the classifier's learning-rate split.

Shapes: ``dmc`` (N, 2, H, W) float, the generator's output (:class:`pipeline.models.dmc.DMCGenerator`), in
pixels; ``flow`` (N, 2, H, W) float, the TV-L1 flow of the same P-frames in pixels, channels first, with the
motion vectors' sign convention (``src - dst``: the negated forward flow); ``logits`` (N, K) float and
``labels`` (N,) int64 of the classifier on the DMC; ``d_real_logits`` / ``d_fake_logits`` (M, 2) float, the
discriminator's scores of flow / of DMC, class 0 = fake (DMC), class 1 = real (flow)
(:data:`pipeline.models.dmc.REAL`).

* :func:`flow_mse`: eq. 1, ``mean((dmc - flow)^2)`` over every element;
* :func:`discriminator_loss`: eq. 2, ``CE(D(flow), real) + CE(D(dmc), fake)``, for the discriminator's step;
* :func:`generator_adversarial_loss`: eq. 3, ``CE(D(dmc), real)``;
* :func:`dmc_loss`: eq. 4, ``CE(logits, labels) + alpha * flow_mse + lam * adversarial`` for the generator
  and classifier's step (§7.2: alpha = 10, lambda = 1).

The squared error is in the authors' normalised flow units (9.04 px a unit), where alpha = 10 is their
weight; in the joint step the classifier sees the DMC detached (``DMCNet.detach_cue``: the cross-entropy
trains the classifier, the MSE the generator), as their first-stage code; the adversarial step has no
detach. The learning rates (the whole classifier at 1/100 in their code) are :mod:`.optim`'s.

The paper's schedule (§7.2; Adam, learning rate 0.01 divided by 10 on plateaus): one epoch of
:func:`flow_mse` alone with the classifier fixed; 49 epochs of ``CE + 10 * MSE`` (``dmc_loss`` with
``d_fake_logits=None``); then, from that model, all three terms, alternating with discriminator steps
(the generator and classifier fixed while the discriminator learns, and the discriminator fixed while they
learn).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.dmc import AUTHORS_FLOW_UNIT_PX, FAKE, REAL
from .losses import cross_entropy


def flow_mse(dmc: torch.Tensor, flow: torch.Tensor, unit: float = AUTHORS_FLOW_UNIT_PX) -> torch.Tensor:
    """Eq. 1: the mean over every element of ``((dmc - flow) / unit)^2``, a scalar. ``dmc`` and ``flow`` are
    (N, 2, H, W) in pixels of the same shape (a ValueError otherwise); ``unit``: pixels per unit of the
    squared error, by default the authors' normalised flow units (9.04 px: quantized flow ``q / 255 - 0.5``
    divided by 0.226, facebookresearch/dmc-net code/dmcnet_GAN/dataset.py:264), in which their weight
    alpha = 10 applies (1 for pixels squared). The flow is a target: it gets no gradient."""
    if dmc.shape != flow.shape:
        raise ValueError(f"DMC {tuple(dmc.shape)} and flow {tuple(flow.shape)} differ: the generator's "
                         "output and the TV-L1 flow must have the same (N, 2, H, W) shape")
    return F.mse_loss(dmc.float() / unit, flow.detach().float() / unit)


def _class_ce(logits: torch.Tensor, cls: int, name: str) -> torch.Tensor:
    """Mean cross-entropy of (M, 2) discriminator logits against the class ``cls`` for every row."""
    if logits.dim() != 2 or logits.shape[1] != 2:
        raise ValueError(f"{name} must be (M, 2) discriminator logits, got {tuple(logits.shape)}")
    target = torch.full((logits.shape[0],), cls, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target)


def discriminator_loss(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 2 as the authors' code computes it: the mean cross-entropy over every sample of the
    discriminator's batch, DMC labelled fake and flow real (facebookresearch/dmc-net
    code/dmcnet_GAN/train.py:252-256, 274: one ``CrossEntropyLoss`` over the concatenated batch), a scalar;
    with as many fakes as reals, half the paper's sum of the two means. ``d_real_logits`` (M, 2): on TV-L1
    flow; ``d_fake_logits`` (M', 2): on generated DMC, computed from ``dmc.detach()`` so that this step does
    not train the generator."""
    m, m2 = len(d_real_logits), len(d_fake_logits)
    return (_class_ce(d_real_logits, REAL, "d_real_logits") * m
            + _class_ce(d_fake_logits, FAKE, "d_fake_logits") * m2) / max(m + m2, 1)


def generator_adversarial_loss(d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``mean(-log P_D(real | DMC))``, a scalar: the generator wants the discriminator to call its DMC
    real. ``d_fake_logits`` (M, 2) is the discriminator on the DMC *with* its graph, the discriminator's
    parameters left out of the optimizer step (or frozen)."""
    return _class_ce(d_fake_logits, REAL, "d_fake_logits")


def dmc_loss(logits: torch.Tensor, labels: torch.Tensor, dmc: torch.Tensor, flow: torch.Tensor,
             d_fake_logits: torch.Tensor | None = None, alpha: float = 10.0,
             lam: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 4: ``CE(logits, labels) + alpha * flow_mse(dmc, flow) + lam * generator_adversarial_loss(
    d_fake_logits)``, a scalar, and its parts as floats (``ce``, ``mse`` and, with the adversarial term,
    ``adv``; unweighted). With ``d_fake_logits=None`` the adversarial term is omitted (and ``adv`` absent):
    the stage trained with the classification and reconstruction losses only. Defaults: §7.2's alpha = 10,
    lambda = 1."""
    ce = cross_entropy(logits, labels)
    mse = flow_mse(dmc, flow)
    total = ce + alpha * mse
    parts = {"ce": ce.detach().item(), "mse": mse.detach().item()}
    if d_fake_logits is not None:
        adv = generator_adversarial_loss(d_fake_logits)
        total = total + lam * adv
        parts["adv"] = adv.detach().item()
    return total, parts


__all__ = ["discriminator_loss", "dmc_loss", "flow_mse", "generator_adversarial_loss"]
