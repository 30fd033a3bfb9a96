"""What every network of :mod:`pipeline.models` shares: the classifier interface, the weight initialisation.

A model is a feature extractor followed by a classifier head::

    forward(x) == classify(forward_features(x))
    forward_features: (N, C, T, H, W) float32 (3D models) or (N, C, H, W) (2D models) -> (N, feature_dim)
    classify:         (N, feature_dim) -> (N, num_classes) logits (dropout, then the linear layer ``fc``)

``forward_features`` is the globally averaged output of the last residual stage (``last_block``), taken
before dropout: the feature MARS and MERS match to the flow stream's (Crasto et al. 2019, §3.1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: the activations a config may name, as module factories
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "elu": lambda: nn.ELU(inplace=True)}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (``"relu"`` or ``"elu"``, both in place)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: allowed are {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Classifier(nn.Module):
    """The interface of every model (the trainer depends on it).

    Subclasses build the stem (``conv1``, ``bn1``, ``act``, ``maxpool``) and the stages ``layer1`` ..
    ``layer4``, store ``self.config`` and end with :meth:`_head` (pool, dropout, ``fc``, ``feature_dim``). ``input_dims`` is 3 for models taking (N, C, T, H, W) clips, 2 for (N, C, H, W)
    images.
    """

    input_dims: int = 3
    config: Any
    fc: nn.Linear
    dropout: nn.Module
    feature_dim: int
    #: D3D's motion probe (:mod:`.probe`): probe layer name -> the module path whose output it reads. ResNets:
    #: the stem's max pool and the four residual stages; other layouts override it (S3D-G: Inception endpoints)
    PROBE_LAYERS: dict[str, str] = {"stem": "maxpool", "layer1": "layer1", "layer2": "layer2",
                                    "layer3": "layer3", "layer4": "layer4"}

    @property
    def last_block(self) -> nn.Module:
        """The last residual stage (``layer4``); a property, so its parameters are not registered twice."""
        return self.layer4

    @property
    def first_layer(self) -> nn.Module:
        """The first layer, the one that reads the input channels: ``conv1`` and its batch norm ``bn1``
        (a container built on each call, not registered, so nothing is counted twice). The recipes' first-layer
        rate (``first_lr_mult``, :mod:`pipeline.train.optim`) applies to its parameters."""
        return nn.ModuleList([m for m in (getattr(self, "conv1", None), getattr(self, "bn1", None))
                              if isinstance(m, nn.Module)])

    def _head(self, features: int, num_classes: int, dropout: float) -> None:
        """The part every network ends with: global average pool, dropout, the linear classifier ``fc``;
        then the weights of the whole network are initialised (:func:`init_weights`)."""
        self.feature_dim = features
        self.avgpool = (nn.AdaptiveAvgPool3d if self.input_dims == 3 else nn.AdaptiveAvgPool2d)(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature after the last residual stage, (N, feature_dim), before dropout: the stem
        (``conv1``, ``bn1``, ``act``, ``maxpool``), stages ``layer1`` .. ``layer4``, global average pool."""
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) from pooled features (N, feature_dim): dropout, then ``fc``."""
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) of a batch; equals ``classify(forward_features(x))``."""
        return self.classify(self.forward_features(x))


def init_weights(model: nn.Module) -> None:
    """Hara et al.'s initialisation: convolutions Kaiming-normal (fan out, ReLU gain), batch norms weight 1
    and bias 0; linear layers keep PyTorch's default. Deterministic given ``torch.manual_seed``."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_layers(layers: Any, stages: int = 4) -> tuple[int, ...] | None:
    """``layers`` as a tuple of ``stages`` positive block counts (None stays None); a ValueError otherwise."""
    if layers is None:
        return None
    try:
        out = tuple(int(n) for n in layers)
    except (TypeError, ValueError):
        raise ValueError(f"layers must be {stages} block counts, got {layers!r}") from None
    if len(out) != stages or min(out) < 1:
        raise ValueError(f"layers must be {stages} block counts >= 1, got {layers!r}")
    return out


def check_common(cfg: Any) -> None:
    """The checks every config shares: channel, class and width counts positive, dropout in [0, 1)."""
    for name in ("in_channels", "num_classes", "width"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0.0 <= float(cfg.dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout!r}")
