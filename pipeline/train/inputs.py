"""What a method's network sees, made from a batch of :class:`pipeline.data.ShardClips` samples.

Most methods take one modality as the dataset gives it: (N, C, T, H, W) clips for 3D networks, (N, 3, H, W)
for ``frame``. The single-frame methods of the compressed domain (:mod:`.methods`: clips of ``length``
frames ending on their ``anchor`` frame) take that last frame:

* ``mv``: the P-frame's vectors in pixels, (N, 2, H, W) (the stored CoViAR units times
  ``bound / 127.5``: the dataset's ``pixels_per_unit("mv")``);
* ``residual``: the P-frame's residual divided by 128, (N, 3, H, W), in [-1, 1);
* ``dmc``: both stacked, (N, 5, H, W), the DMC generator's input (DMC-Net Table 2);

and DMC-Net's target (:func:`dmc_target`) is the TV-L1 flow in pixels that matches the anchor's vectors.
Vectors here are ``src - dst`` (where pixel p of frame t was predicted from in frame t-1) and TV-L1 flow
``t-1 -> t`` is where pixel q of frame t-1 goes, so for content moving by d the vectors are -d and the flow
+d: the target is the negated flow from the frame before the anchor (the clip's first flow).
"""

from __future__ import annotations

from typing import Mapping

import torch

from .methods import Method

RESIDUAL_SCALE = 128.0      # residuals are stored + 128 in [0, 255]: q - 128 in [-128, 127]


def scales_of(dataset) -> dict[str, float]:
    """Pixels per unit of the dataset's motion modalities (those it has)."""
    out = {}
    for mod in ("mv", "flow"):
        try:
            out[mod] = dataset.pixels_per_unit(mod)
        except (ValueError, KeyError):
            pass
    return out


def _last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, C, H, W) of the clip's last frame."""
    return x[:, :, -1]


def network_input(method: Method, batch: Mapping[str, torch.Tensor], scales: Mapping[str, float]) -> torch.Tensor:
    """The tensor ``method``'s network takes, from a collated batch."""
    if method.input == "dmc":
        return torch.cat([_last(batch["mv"]) * scales["mv"], _last(batch["residual"]) / RESIDUAL_SCALE], dim=1)
    x = batch[method.input]
    if method.length is not None and x.ndim == 5:          # single-frame methods: the anchor frame
        x = _last(x)
        if method.input == "mv":
            x = x * scales["mv"]
        elif method.input == "residual":
            x = x / RESIDUAL_SCALE
    return x


def dmc_target(batch: Mapping[str, torch.Tensor], scales: Mapping[str, float]) -> torch.Tensor:
    """(N, 2, H, W) TV-L1 flow in pixels matching the anchor frame's motion vectors: minus the flow from the
    frame before the anchor to the anchor (the first flow of the 2-frame clip)."""
    return -batch["flow"][:, :, 0] * scales["flow"]


__all__ = ["network_input", "dmc_target", "scales_of", "RESIDUAL_SCALE"]
