"""MotionNet's unsupervised losses (Zhu et al. 2018, "Hidden Two-Stream Convolutional Networks for Action
Recognition", §3.1 eq. 1-6), as pure functions of tensors.

Shapes: ``image`` (N, C, H, W) float in [0, 1]; ``flow`` (N, 2, H, W) float in pixels of the grid it lies on
(channel 0 = x, right positive; 1 = y, down positive), or stacked (N, 2K, H, W) with channels ``2k, 2k+1``
the x and y of flow ``k``; ``frames`` (N, C F, H, W), MotionNet's stacked input (frame ``k`` on channels
``C k .. C k + C - 1``); ``flows`` MotionNet's output, a list coarse to fine of (N, 2 (F-1), H/s, W/s) in
**input** pixels (:mod:`pipeline.models.motionnet`).

Sign convention: the package's TV-L1 flow (:mod:`pipeline.flow`): flow ``k`` goes from frame ``k`` to frame
``k + 1``, ``frame_k(p) ~ frame_{k+1}(p + flow_k(p))``. The reconstruction of frame ``k`` is therefore the
next frame sampled at ``p + flow_k(p)``, ``backward_warp(frame_{k+1}, flow_k)``, and the photometric and SSIM
terms compare it with frame ``k`` (eq. 1: ``I_1(i, j) - I_2(i + V^x, j + V^y)``, the inverse warping of the
paper's §3.1). A MotionNet trained with these losses predicts flow in the same convention as the stored TV-L1
flow, so the end-point error between the two is meaningful.

* :func:`charbonnier`: the generalized Charbonnier penalty ``((beta x)^2 + eps^2)^alpha - eps^(2 alpha)``;
* :func:`photometric_loss`: eq. 1, the mean penalty of ``image - reconstruction`` (alpha 0.4, beta 255);
* :func:`smoothness_loss`: eq. 2, the penalty of the flow's x and y forward differences (alpha 0.3);
* :func:`ssim_loss`: eq. 3-4, ``mean(1 - SSIM)`` over 8x8 patches at stride 8 (c1 1e-4, c2 1e-3);
* :func:`border_mask` / :func:`crop_border`: the pixels within 10% of the border are left out of the
  photometric and SSIM terms (their reconstruction samples outside the image);
* :func:`motionnet_loss`: eq. 5-6 over the five scales, weights 0.16, 0.08, 0.04, 0.02, 0.01 coarse to fine;
* :func:`end_point_error`: the mean Euclidean distance of two flows in pixels.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: the Charbonnier parameters of the original training files: photometric (on 0-255 intensities) ...
PHOTOMETRIC_ALPHA, PHOTOMETRIC_BETA = 0.4, 255.0
#: ... and smoothness, beta per scale coarse to fine (flow6 at 1/32 .. flow2 at 1/2), applied to flow / 20
SMOOTH_ALPHA = 0.3
SMOOTH_BETAS = (0.625, 1.25, 2.5, 5.0, 10.0)
#: the unit of the networks' raw flow: 20 input pixels (FlowNet's scaling). Our reading of the betas: they
#: are 20 / s for s = 32 .. 2, so ``SMOOTH_BETAS[i] * flow / FLOW_UNIT`` is the flow in pixels of the scale's
#: own grid, and the smoothness penalty sees flow gradients in those pixels at every scale
FLOW_UNIT = 20.0
#: eq. 6's weights of the five scales, coarse to fine
SCALE_WEIGHTS = (0.16, 0.08, 0.04, 0.02, 0.01)
#: eq. 5's weights of the pixel, smoothness and SSIM terms (the paper's values are in its supplementary
#: material; these are ours)
TERM_WEIGHTS = (1.0, 1.0, 1.0)
#: SSIM (§3.1): K x K patches at this stride, the constants for [0, 1] images
SSIM_PATCH, SSIM_STRIDE, SSIM_C1, SSIM_C2 = 8, 8, 1e-4, 1e-3
#: the fraction of each side left out of the photometric and SSIM terms
BORDER_FRACTION = 0.1
CHARBONNIER_EPS = 1e-3


def _check_4d(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{what} must be (N, C, H, W), got {tuple(x.shape)}")


# -- warping and penalties ----------------------------------------------------------------------------------
def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` sampled at ``p + flow(p)``: (N, C, H, W) and (N, 2, H, W) flow in pixels of that grid ->
    (N, C, H, W), bilinear (the spatial transformer of §3.1), differentiable in both.

    Pixel ``(x, y)`` is the centre of column x, row y (so the values are those of ``F.grid_sample`` with
    ``align_corners=True``). Border: a sample outside the image takes the value of the nearest border pixel
    (its coordinates are clamped to ``[0, W-1] x [0, H-1]``) and gives its flow no gradient; those pixels lie
    in the border that :func:`border_mask` leaves out. Unlike ``grid_sample``'s ``"border"`` mode, a sample
    exactly on the first or last row or column interpolates from the cell inside the image, so the flow there
    still gets the one-sided image gradient (``grid_sample`` gives it none, which freezes zero flow on a
    2 x 2 grid, MotionNet's coarsest at 64 x 64). An integer flow moves pixels exactly.
    """
    _check_4d(image, "image")
    _check_4d(flow, "flow")
    n, c, h, w = image.shape
    if flow.shape[0] != n or flow.shape[1] != 2 or flow.shape[2:] != image.shape[2:]:
        raise ValueError(f"flow must be (N, 2, H, W) = ({n}, 2, {h}, {w}), got {tuple(flow.shape)}")
    flow = flow.to(image.dtype)
    ys = torch.arange(h, dtype=image.dtype, device=image.device).view(1, h, 1)
    xs = torch.arange(w, dtype=image.dtype, device=image.device).view(1, 1, w)
    x = (xs + flow[:, 0]).clamp(0, w - 1)
    y = (ys + flow[:, 1]).clamp(0, h - 1)
    x0 = x.detach().floor().clamp(0, max(w - 2, 0))          # the cell's left column, inside the image
    y0 = y.detach().floor().clamp(0, max(h - 2, 0))
    wx, wy = (x - x0).unsqueeze(1), (y - y0).unsqueeze(1)    # (N, 1, H, W) in [0, 1]
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = image.reshape(n, c, h * w)

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        index = (yy * w + xx).reshape(n, 1, h * w).expand(n, c, h * w)
        return flat.gather(2, index).reshape(n, c, h, w)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def charbonnier(x: torch.Tensor, alpha: float, beta: float = 1.0, eps: float = CHARBONNIER_EPS,
                zero_at_zero: bool = True) -> torch.Tensor:
    """The generalized Charbonnier penalty, elementwise: ``((beta x)^2 + eps^2)^alpha - eps^(2 alpha)``.

    §3.1 gives ``rho(x) = (x^2 + eps^2)^alpha``; the original training files scale the argument by ``beta``
    first (255 for [0, 1] intensities, so the photometric penalty sees 0-255 differences; 20 / s for flow in
    units of 20 px, so the smoothness penalty sees gradients in pixels of scale s), with eps 0.001. We
    subtract the constant ``eps^(2 alpha)`` (``zero_at_zero``, the default) so that a perfect fit costs 0:
    the gradient, hence the training, is the same as the paper's. alpha < 0.5 (0.4, 0.3) is robust but not
    convex. Same shape and dtype as ``x``.
    """
    out = ((x * beta) ** 2 + eps * eps) ** alpha
    return (out - eps ** (2.0 * alpha)).clamp_min(0.0) if zero_at_zero else out


# -- the border ---------------------------------------------------------------------------------------------
def border_width(size: int, fraction: float = BORDER_FRACTION) -> int:
    """Pixels left out at each end of a side of ``size`` pixels: ``floor(fraction * size)``, at most
    ``(size - 1) // 2`` so that one pixel remains (64 -> 6, 32 -> 3, 8 -> 0)."""
    if not 0 <= fraction < 0.5:
        raise ValueError(f"the border fraction must be in [0, 0.5), got {fraction!r}")
    return min(int(fraction * size), (size - 1) // 2)


def border_mask(height: int, width: int, fraction: float = BORDER_FRACTION,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(1, 1, H, W): 1 inside, 0 within :func:`border_width` pixels of each side."""
    mask = torch.zeros(1, 1, height, width, device=device, dtype=dtype)
    bh, bw = border_width(height, fraction), border_width(width, fraction)
    mask[..., bh:height - bh, bw:width - bw] = 1
    return mask


def crop_border(x: torch.Tensor, fraction: float = BORDER_FRACTION) -> torch.Tensor:
    """(N, C, H, W) -> the interior that :func:`border_mask` keeps (a view)."""
    h, w = x.shape[-2:]
    bh, bw = border_width(h, fraction), border_width(w, fraction)
    return x[..., bh:h - bh, bw:w - bw]


# -- the three terms ----------------------------------------------------------------------------------------
def photometric_loss(image: torch.Tensor, reconstruction: torch.Tensor, mask: torch.Tensor | None = None,
                     alpha: float = PHOTOMETRIC_ALPHA, beta: float = PHOTOMETRIC_BETA,
                     eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """Eq. 1: the mean of ``charbonnier(image - reconstruction)`` over the batch, the channels and the
    pixels where ``mask`` (broadcastable to (N, 1, H, W), 1 = counted) is set, a scalar. ``image`` and
    ``reconstruction`` (N, C, H, W) in [0, 1]; the reconstruction is ``backward_warp(next_frame, flow)``.
    ``mask`` None counts every pixel; :func:`motionnet_loss` passes :func:`border_mask`."""
    if image.shape != reconstruction.shape:
        raise ValueError(f"image {tuple(image.shape)} and reconstruction {tuple(reconstruction.shape)} "
                         "differ")
    _check_4d(image, "image")
    penalty = charbonnier(image.float() - reconstruction.float(), alpha, beta, eps)
    if mask is None:
        return penalty.mean()
    mask = mask.to(penalty.dtype).expand(image.shape[0], 1, *image.shape[2:])
    return (penalty * mask).sum() / (mask.sum() * image.shape[1]).clamp_min(1.0)


def smoothness_loss(flow: torch.Tensor, alpha: float = SMOOTH_ALPHA, beta: float = 1.0,
                    eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """Eq. 2: ``rho(dV^x/dx) + rho(dV^x/dy) + rho(dV^y/dx) + rho(dV^y/dy)`` with forward differences between
    neighbouring pixels, each term averaged over its pixels, summed over the four, averaged over the flows
    and the batch; a scalar. ``flow`` (N, 2K, H, W) (K flows stacked, x and y each). 0 for a constant flow.
    A side of one pixel has no differences and adds 0."""
    _check_4d(flow, "flow")
    if flow.shape[1] % 2:
        raise ValueError(f"flow must have 2K channels (x, y per flow), got {tuple(flow.shape)}")
    flow = flow.float()
    pairs = flow.shape[1] // 2
    total = flow.new_zeros(())
    for diff in (flow[..., :, 1:] - flow[..., :, :-1], flow[..., 1:, :] - flow[..., :-1, :]):
        if diff.numel():                       # per channel: the mean over the pixels, then summed
            total = total + charbonnier(diff, alpha, beta, eps).mean(dim=(0, 2, 3)).sum()
    return total / pairs


def ssim(image: torch.Tensor, other: torch.Tensor, patch: int = SSIM_PATCH, stride: int = SSIM_STRIDE,
         c1: float = SSIM_C1, c2: float = SSIM_C2) -> torch.Tensor:
    """Eq. 3 on every ``patch`` x ``patch`` window at ``stride`` (8 and 8): (N, C, H, W) twice ->
    (N, C, H', W') per-channel SSIM of each patch, with the patch's mean, (population) variances and
    covariance. Patches that do not fit whole at the right or bottom are dropped; an image smaller than a
    patch is one patch of its own size."""
    if image.shape != other.shape:
        raise ValueError(f"images {tuple(image.shape)} and {tuple(other.shape)} differ")
    _check_4d(image, "image")
    h, w = image.shape[-2:]
    kh, kw = min(patch, h), min(patch, w)
    sh, sw = min(stride, kh), min(stride, kw)
    a, b = image.float(), other.float()

    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, (kh, kw), stride=(sh, sw))

    mu_a, mu_b = pool(a), pool(b)
    var_a = pool(a * a) - mu_a ** 2
    var_b = pool(b * b) - mu_b ** 2
    cov = pool(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def ssim_loss(image: torch.Tensor, reconstruction: torch.Tensor, fraction: float = BORDER_FRACTION,
              patch: int = SSIM_PATCH, stride: int = SSIM_STRIDE, c1: float = SSIM_C1,
              c2: float = SSIM_C2) -> torch.Tensor:
    """Eq. 4: ``mean(1 - SSIM)`` over the patches of the interior (:func:`crop_border` with ``fraction``;
    0 keeps everything) and over the channels and the batch, a scalar in [0, 2]: 0 for identical images.
    (Eq. 4 is ``1 - SSIM``, not ``(1 - SSIM) / 2``.)"""
    return (1.0 - ssim(crop_border(image, fraction), crop_border(reconstruction, fraction),
                       patch, stride, c1, c2)).mean()


# -- all scales ---------------------------------------------------------------------------------------------
def downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/f, W/f) by averaging f x f blocks (H and W multiples of f)."""
    return images if factor == 1 else F.avg_pool2d(images, factor)


def frame_pairs(frames: torch.Tensor, flow: torch.Tensor, channels: int = 3
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each flow with its two frames, flattened into the batch: ``frames`` (N, C (K+1), h, w) and ``flow``
    (N, 2K, h, w) -> (first frames, next frames, flows): (N K, C, h, w), (N K, C, h, w), (N K, 2, h, w), row
    ``n K + k`` holding frame ``k``, frame ``k + 1`` and flow ``k`` of sample ``n``."""
    n, c, h, w = frames.shape
    k = flow.shape[1] // 2
    if (c != channels * (k + 1) or flow.shape[1] != 2 * k or flow.shape[0] != n
            or flow.shape[2:] != frames.shape[2:]):
        raise ValueError(f"{k} flows (N, 2K, h, w) = {tuple(flow.shape)} need {k + 1} frames of {channels} "
                         f"channels (N, {channels * (k + 1)}, h, w), got {tuple(frames.shape)}")
    stack = frames.reshape(n, k + 1, channels, h, w)
    first = stack[:, :-1].reshape(n * k, channels, h, w)
    after = stack[:, 1:].reshape(n * k, channels, h, w)
    return first, after, flow.reshape(n * k, 2, h, w)


def motionnet_loss(frames: torch.Tensor, flows: Sequence[torch.Tensor],
                   weights: Sequence[float] = SCALE_WEIGHTS, smooth_betas: Sequence[float] | None = None,
                   terms: Sequence[float] = TERM_WEIGHTS, channels: int = 3,
                   border: float = BORDER_FRACTION) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6: ``sum_s weights[s] * L_s`` with eq. 5's ``L_s = terms[0] L_pixel + terms[1] L_smooth + terms[2]
    L_ssim`` at every scale; returns (the total, a scalar tensor, and its parts as floats).

    ``frames``: MotionNet's input (N, channels F, H, W) in [0, 1]. ``flows``: its output, coarse to fine,
    (N, 2 (F-1), H/s, W/s) in input pixels; ``weights`` and ``smooth_betas`` are coarse to fine and as many
    as ``flows`` (the defaults: five scales, s = 32 .. 2). At scale s the frames are averaged over s x s
    blocks and each flow divided by s (pixels of that grid); frame ``k + 1`` warped by flow ``k``
    (:func:`backward_warp`) reconstructs frame ``k``, compared by :func:`photometric_loss` on the pixels of
    :func:`border_mask` and by :func:`ssim_loss` on the same interior. The smoothness term is
    :func:`smoothness_loss` of ``flow / FLOW_UNIT`` with beta ``smooth_betas[s]`` (alpha 0.3), the original
    parametrization; None takes ``FLOW_UNIT / s`` for each scale (= :data:`SMOOTH_BETAS` for s = 32 .. 2),
    under which it is the penalty of flow gradients in pixels of the scale's own grid.

    Parts: ``pixel``, ``smooth``, ``ssim`` (each ``sum_s weights[s] * L_term_s``, before ``terms``), the
    finest scale's ``pixel_fine`` and ``ssim_fine``, and ``total``.
    """
    _check_4d(frames, "frames")
    flows = list(flows)
    if not flows:
        raise ValueError("motionnet_loss needs at least one scale of flow")
    if len(weights) != len(flows):
        raise ValueError(f"{len(flows)} scales of flow but {len(weights)} scale weights")
    if smooth_betas is not None and len(smooth_betas) != len(flows):
        raise ValueError(f"{len(flows)} scales of flow but {len(smooth_betas)} smoothness betas")
    if len(terms) != 3:
        raise ValueError(f"terms are the weights of (pixel, smooth, ssim), got {tuple(terms)}")
    height, width = frames.shape[-2:]
    total = frames.new_zeros((), dtype=torch.float32)
    sums = {"pixel": 0.0, "smooth": 0.0, "ssim": 0.0}
    last: dict[str, float] = {}
    for i, (flow, weight) in enumerate(zip(flows, weights)):
        _check_4d(flow, "flow")
        h, w = flow.shape[-2:]
        factor = height // h
        if h * factor != height or w * factor != width:
            raise ValueError(f"flow of {h} x {w} is not an integer downsampling of the {height} x {width} "
                             "frames")
        first, after, pair_flow = frame_pairs(downsample(frames, factor), flow, channels)
        reconstruction = backward_warp(after, pair_flow / factor)
        mask = border_mask(h, w, border, device=frames.device)
        pixel = photometric_loss(first, reconstruction, mask)
        structure = ssim_loss(first, reconstruction, border)
        beta = FLOW_UNIT / factor if smooth_betas is None else float(smooth_betas[i])
        smooth = smoothness_loss(flow / FLOW_UNIT, SMOOTH_ALPHA, beta)
        total = total + weight * (terms[0] * pixel + terms[1] * smooth + terms[2] * structure)
        last = {"pixel": pixel.detach().item(), "ssim": structure.detach().item()}
        for name, value in (("pixel", pixel), ("smooth", smooth), ("ssim", structure)):
            sums[name] += weight * value.detach().item()
    parts = {**sums, "pixel_fine": last["pixel"], "ssim_fine": last["ssim"], "total": total.detach().item()}
    return total, parts


# -- evaluation ---------------------------------------------------------------------------------------------
def _vectors(flow: torch.Tensor) -> torch.Tensor:
    """(N, 2K, H, W) -> (N, K, 2, H, W); (N, 2, T, H, W) -> (N, T, 2, H, W)."""
    if flow.dim() == 4 and flow.shape[1] % 2 == 0:
        n, c, h, w = flow.shape
        return flow.reshape(n, c // 2, 2, h, w)
    if flow.dim() == 5 and flow.shape[1] == 2:
        return flow.transpose(1, 2)
    raise ValueError(f"flow must be stacked (N, 2K, H, W) or a clip (N, 2, T, H, W), got {tuple(flow.shape)}")


def end_point_error(flow: torch.Tensor, reference: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean end-point error in pixels, a scalar tensor: the Euclidean distance between the vectors of
    ``flow`` and ``reference`` (same shape: stacked (N, 2K, H, W), channels ``2k, 2k+1`` = x, y, or a clip
    (N, 2, T, H, W)), averaged over every position of every flow, or over those where ``mask`` is set
    (broadcastable to (N, K, H, W), resp. (N, T, H, W); 1 = counted)."""
    if flow.shape != reference.shape:
        raise ValueError(f"flows {tuple(flow.shape)} and {tuple(reference.shape)} differ")
    d = _vectors(flow.float()) - _vectors(reference.float())
    dist = torch.sqrt(d[:, :, 0] ** 2 + d[:, :, 1] ** 2)
    if mask is None:
        return dist.mean()
    mask = mask.to(dist.dtype).expand_as(dist)
    return (dist * mask).sum() / mask.sum().clamp_min(1.0)


__all__ = ["backward_warp", "charbonnier", "border_width", "border_mask", "crop_border", "photometric_loss",
           "smoothness_loss", "ssim", "ssim_loss", "downsample", "frame_pairs", "motionnet_loss",
           "end_point_error", "PHOTOMETRIC_ALPHA", "PHOTOMETRIC_BETA", "SMOOTH_ALPHA", "SMOOTH_BETAS",
           "FLOW_UNIT", "SCALE_WEIGHTS", "TERM_WEIGHTS", "SSIM_PATCH", "SSIM_STRIDE", "SSIM_C1", "SSIM_C2",
           "BORDER_FRACTION", "CHARBONNIER_EPS"]
