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

The paper's schedule (§7.2; Adam, learning rate 0.01 divided by 10 on plateaus): one epoch of
:func:`flow_mse` alone with the classifier fixed; 49 epochs of ``CE + 10 * MSE`` (``dmc_loss`` with
``d_fake_logits=None``); then, from that model, all three terms, alternating with discriminator steps
(the generator and classifier fixed while the discriminator learns, and the discriminator fixed while they
learn).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.dmc import FAKE, REAL
from .losses import cross_entropy


def flow_mse(dmc: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Eq. 1: the mean over every element of ``(dmc - flow)^2``, a scalar (pixels squared); ``dmc`` and
    ``flow`` are (N, 2, H, W) of the same shape (a ValueError otherwise). The flow is a target: it gets no
    gradient."""
    if dmc.shape != flow.shape:
        raise ValueError(f"DMC {tuple(dmc.shape)} and flow {tuple(flow.shape)} differ: the generator's "
                         "output and the TV-L1 flow must have the same (N, 2, H, W) shape")
    return F.mse_loss(dmc.float(), flow.detach().float())


def _class_ce(logits: torch.Tensor, cls: int, name: str) -> torch.Tensor:
    """Mean cross-entropy of (M, 2) discriminator logits against the class ``cls`` for every row."""
    if logits.dim() != 2 or logits.shape[1] != 2:
        raise ValueError(f"{name} must be (M, 2) discriminator logits, got {tuple(logits.shape)}")
    target = torch.full((logits.shape[0],), cls, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target)


def discriminator_loss(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``mean(-log P_D(real | flow)) + mean(-log P_D(fake | DMC))``, a scalar (the sum of the two
    batch means, as in the paper, not their average). ``d_real_logits`` (M, 2): the discriminator on TV-L1
    flow; ``d_fake_logits`` (M', 2): on generated DMC, which the caller computes from ``dmc.detach()`` so
    that this step does not train the generator."""
    return _class_ce(d_real_logits, REAL, "d_real_logits") + _class_ce(d_fake_logits, FAKE, "d_fake_logits")


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


def param_groups(generator: nn.Module, classifier: nn.Module, lr: float,
                 classifier_lr_factor: float = 0.01) -> list[dict]:
    """Optimizer parameter groups for the generator and the classifier (§7.2: "all layers in the
    classification network except its last layer have the learning rate set to be 100x smaller"):

    * ``"generator"``: every parameter of ``generator``, at ``lr``;
    * ``"classifier.fc"``: the classifier's last linear layer ``classifier.fc``, at ``lr``;
    * ``"classifier"``: every other classifier parameter, at ``lr * classifier_lr_factor``.

    Each dict has ``params`` (a list), ``lr`` and ``name`` (which ``torch.optim.Adam`` keeps); a group with no
    parameters is left out. Every parameter is in exactly one group, whether it requires grad or not. The
    discriminator has an optimizer of its own (it is stepped apart). A ValueError when the classifier has
    no ``fc`` or the two modules share a parameter.
    """
    fc = getattr(classifier, "fc", None)
    if not isinstance(fc, nn.Module):
        raise ValueError(f"the classifier ({type(classifier).__name__}) has no last linear layer 'fc'")
    gen = list(generator.parameters())
    head = list(fc.parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in classifier.parameters() if id(p) not in head_ids]
    if {id(p) for p in gen} & {id(p) for p in classifier.parameters()}:
        raise ValueError("the generator and the classifier share parameters: each must be in one group")
    groups = [{"params": gen, "lr": lr, "name": "generator"},
              {"params": head, "lr": lr, "name": "classifier.fc"},
              {"params": body, "lr": lr * classifier_lr_factor, "name": "classifier"}]
    return [g for g in groups if g["params"]]


__all__ = ["discriminator_loss", "dmc_loss", "flow_mse", "generator_adversarial_loss", "param_groups"]
