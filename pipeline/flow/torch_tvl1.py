"""TV-L1 optical flow in PyTorch, batched over frame pairs, following OpenCV's ``DualTVL1OpticalFlow``.

The steps are those of OpenCV's CPU implementation (opencv_contrib ``optflow``), re-expressed as tensor
operations over a batch ``(B, H, W)`` so one call solves many pairs on a GPU (or the CPU):

* frames as float32 on the 0-255 scale (uint8 as is, float input multiplied by 255, like OpenCV);
* pyramid: repeated bilinear resize by ``scale_step`` (size rounded to nearest, source coordinate
  ``(d + 0.5) / scale_step - 0.5`` clamped to the image), stopping before a side would drop below 16 px;
* coarse-to-fine: flow starts at zero on the coarsest scale, is resized bilinearly to the next finer
  size and divided by ``scale_step``; the dual variables restart at zero on every scale;
* per warp: I1 and its centred gradient (one-sided half differences at the border) are sampled at
  ``x + u`` with bicubic interpolation (a = -0.75, float coordinates, zero outside the image);
* per outer iteration: a median filter (``median_filtering`` x same, replicated border) on the flow;
* per inner iteration: the thresholding step for ``v``, ``u = v + theta * div(p)`` with backward
  differences, the dual step ``p = (p + tau/theta * grad u) / (1 + tau/theta * |grad u|)`` with forward
  differences; the squared change of ``u`` summed over the image is the stopping measure, compared with
  ``epsilon^2 * area``; a pair that has converged stops (inner and outer loops) until the next warp.

Each pair keeps its own stopping state: converged pairs are frozen with masks, so a batch gives the same
flow as solving the pairs one by one.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .params import Params

_FLT_EPS = 1.1920928955078125e-07  # FLT_EPSILON, the "gradient is zero" test of the thresholding step


def pyramid_sizes(height: int, width: int, nscales: int, scale_step: float) -> list[tuple[int, int]]:
    """(h, w) of every pyramid level, finest first, as OpenCV sizes them (round to nearest, >= 16)."""
    sizes = [(height, width)]
    for _ in range(1, nscales):
        h, w = sizes[-1]
        nh, nw = round(h * scale_step), round(w * scale_step)
        if nh < 16 or nw < 16:
            break
        sizes.append((nh, nw))
    return sizes


def _linear_axis(n_out: int, n_in: int, scale: float, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices (i0, i1) and weight of i1 for a bilinear resize along one axis (OpenCV's rule)."""
    d = torch.arange(n_out, dtype=torch.float64, device=device)
    f = ((d + 0.5) * scale - 0.5).to(torch.float32)
    i0 = torch.floor(f)
    w = f - i0
    i0 = i0.to(torch.int64)
    low = i0 < 0
    high = i0 >= n_in - 1
    w = torch.where(low | high, torch.zeros_like(w), w)
    i0 = torch.where(low, torch.zeros_like(i0), i0)
    i0 = torch.where(high, torch.full_like(i0, n_in - 1), i0)
    i1 = torch.clamp(i0 + 1, max=n_in - 1)
    return i0, i1, w


def resize_linear(x: torch.Tensor, size: tuple[int, int], scale: tuple[float, float] | None = None) -> torch.Tensor:
    """Bilinear resize of (..., H, W) float32 to (..., h, w), horizontal pass then vertical like OpenCV.

    ``scale`` = (sy, sx) source pixels per destination pixel; default ``H / h`` and ``W / w``.
    """
    H, W = x.shape[-2:]
    h, w = size
    sy, sx = scale if scale is not None else (H / h, W / w)
    x0, x1, wx = _linear_axis(w, W, sx, x.device)
    y0, y1, wy = _linear_axis(h, H, sy, x.device)
    t = x.index_select(-1, x0) * (1 - wx) + x.index_select(-1, x1) * wx
    wy = wy[:, None]
    return t.index_select(-2, y0) * (1 - wy) + t.index_select(-2, y1) * wy


def centered_gradient(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) -> dx, dy: half central differences, one-sided half differences on the border."""
    p = F.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    dx = 0.5 * (p[:, 1:-1, 2:] - p[:, 1:-1, :-2])
    dy = 0.5 * (p[:, 2:, 1:-1] - p[:, :-2, 1:-1])
    return dx, dy


def forward_gradient(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., H, W) -> forward differences dx, dy, zero in the last column / row."""
    dx = torch.zeros_like(u)
    dy = torch.zeros_like(u)
    dx[..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    dy[..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    return dx, dy


def divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence of (px, py), (..., H, W), with zero outside the image."""
    div = px.clone()
    div[..., :, 1:] -= px[..., :, :-1]
    div += py
    div[..., 1:, :] -= py[..., :-1, :]
    return div


def batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sorting network on n (a power of two) wires."""
    out: list[tuple[int, int]] = []

    def merge(lo: int, length: int, r: int) -> None:
        step = 2 * r
        if step < length:
            merge(lo, length, step)
            merge(lo + r, length, step)
            out.extend((i, i + r) for i in range(lo + r, lo + length - r, step))
        else:
            out.append((lo, lo + r))

    def sort(lo: int, length: int) -> None:
        if length > 1:
            sort(lo, length // 2)
            sort(lo + length // 2, length // 2)
            merge(lo, length, 1)

    sort(0, n)
    return out


@functools.lru_cache(maxsize=None)
def median_plan(n: int) -> tuple[tuple[str, int, int, bool, bool], ...]:
    """A selection network for the median of n values: Batcher's network on the next power of two with
    +inf padding, comparators against padding turned into relabelings, and every comparator whose outputs
    cannot reach the middle wire removed. Items: (kind, i, j, need_min, need_max), kind "cmp" or "swap"."""
    size = 1 << (n - 1).bit_length()
    inf = [False] * n + [True] * (size - n)
    ops = []
    for i, j in batcher_pairs(size):
        if inf[j]:
            continue                      # max side is +inf: nothing moves
        if inf[i]:
            ops.append(("swap", i, j))    # min side is +inf: the value moves down, +inf up
            inf[i], inf[j] = False, True
            continue
        ops.append(("cmp", i, j))
    needed = {n // 2}
    kept = []
    for kind, i, j in reversed(ops):
        ni, nj = i in needed, j in needed
        if not (ni or nj):
            continue
        if kind == "swap":
            needed -= {i, j}
            needed |= ({j} if ni else set()) | ({i} if nj else set())
        else:
            needed |= {i, j}
        kept.append((kind, i, j, ni, nj))
    return tuple(reversed(kept))


def median_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median of (N, H, W) float32 with replicated border, equal to cv2.medianBlur (k = 3 or 5).

    A selection network of elementwise min/max over the k*k shifted views (113 operations for 5x5): much
    faster than a sort per pixel on the CPU, and plain elementwise kernels on a GPU.
    """
    r = k // 2
    n, h, w = x.shape
    p = F.pad(x[:, None], (r, r, r, r), mode="replicate")[:, 0]
    wires = [p[:, a:a + h, b:b + w] for a in range(k) for b in range(k)]
    for kind, i, j, need_min, need_max in median_plan(k * k):
        if kind == "swap":
            wires[i], wires[j] = wires[j], wires[i]
            continue
        a, b = wires[i], wires[j]
        if need_min:
            wires[i] = torch.minimum(a, b)
        if need_max:
            wires[j] = torch.maximum(a, b)
    return wires[(k * k) // 2].contiguous()


def _cubic_weights(t: torch.Tensor) -> list[torch.Tensor]:
    """Keys' cubic convolution weights (a = -0.75) of the taps at -1, 0, 1, 2 for fractions t in [0, 1)."""
    A = -0.75
    w0 = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A
    w1 = ((A + 2) * t - (A + 3)) * t * t + 1
    s = 1 - t
    w2 = ((A + 2) * s - (A + 3)) * s * s + 1
    return [w0, w1, w2, 1 - w0 - w1 - w2]


def remap_cubic(imgs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Sample (B, C, H, W) at (x + u_x, y + u_y): bicubic (a = -0.75), zero outside the image.

    Written with gathers on integer + fractional coordinates (not grid_sample) so that a whole-pixel
    displacement returns the pixel values exactly, as OpenCV's remap does: grid_sample's coordinate
    normalization is off by ~1e-3 grey levels at zero flow, which identical frames turn into spurious flow
    at the border. OpenCV 5 samples at the float coordinate itself (OpenCV 4 rounded to 1/32 px).
    """
    b, c, h, w = imgs.shape
    ys = torch.arange(h, device=imgs.device, dtype=torch.float32)[:, None]
    xs = torch.arange(w, device=imgs.device, dtype=torch.float32)[None, :]
    x = xs + u[:, 0]
    y = ys + u[:, 1]
    x0 = torch.floor(x)
    y0 = torch.floor(y)
    wx = _cubic_weights(x - x0)
    wy = _cubic_weights(y - y0)
    x0 = x0.clamp(-4, w + 4).to(torch.int64)  # far outside: every tap is outside anyway
    y0 = y0.clamp(-4, h + 4).to(torch.int64)
    flat = imgs.reshape(b, c, h * w)
    out = torch.zeros_like(imgs)
    cols = [(x0 + (i - 1)) for i in range(4)]
    col_ok = [(cx >= 0) & (cx < w) for cx in cols]
    cols = [cx.clamp(0, w - 1) for cx in cols]
    for j in range(4):
        ry = y0 + (j - 1)
        row_ok = (ry >= 0) & (ry < h)
        base = ry.clamp(0, h - 1) * w
        acc = torch.zeros_like(imgs)
        for i in range(4):
            idx = (base + cols[i]).view(b, 1, h * w).expand(b, c, h * w)
            v = flat.gather(2, idx).view(b, c, h, w)
            weight = torch.where(row_ok & col_ok[i], wx[i], torch.zeros_like(wx[i]))
            acc = acc + weight[:, None] * v
        out = out + wy[j][:, None] * acc
    return out


def _inner_step(u: torch.Tensor, pd: torch.Tensor, rho_c: torch.Tensor, I1wx: torch.Tensor, I1wy: torch.Tensor,
                neg_inv_grad: torch.Tensor, gvec: torch.Tensor, l_t: float, theta: float, taut: float,
                gamma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One inner iteration for the whole batch (pure; torch.compile fuses it into a few kernels).

    u (B, C, H, W), pd (B, C, 2, H, W) -> new u, new pd and the per-pair summed squared change of u (B,).
    """
    rho = rho_c + (I1wx * u[:, 0] + I1wy * u[:, 1])
    if u.shape[1] == 3:
        rho = rho + gamma * u[:, 2]
    coef = torch.clamp(rho * neg_inv_grad, -l_t, l_t)
    px, py = pd[:, :, 0], pd[:, :, 1]
    div = (px - F.pad(px[..., :, :-1], (1, 0))) + (py - F.pad(py[..., :-1, :], (0, 0, 1, 0)))
    u_new = (u + coef[:, None] * gvec) + theta * div
    diff = u_new - u
    err = (diff * diff).sum(dim=(1, 2, 3))
    ux = F.pad(u_new[..., :, 1:] - u_new[..., :, :-1], (0, 1))
    uy = F.pad(u_new[..., 1:, :] - u_new[..., :-1, :], (0, 0, 0, 1))
    ng = 1.0 + taut * torch.hypot(ux, uy)
    pd_new = torch.stack(((px + taut * ux) / ng, (py + taut * uy) / ng), dim=2)
    return u_new, pd_new, err


_COMPILED: dict = {}


def compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "torch.compile cannot build this" (no C compiler, no Triton, an unsupported
    graph), after which the eager step gives the same result. Anything else (out of memory, a device
    error, a bug) is not one of them and propagates."""
    errors: list[type[BaseException]] = []
    try:            # a backend (inductor: a C compiler, Triton) that cannot build the graph; not an error
        from torch._dynamo.exc import BackendCompilerFailed   # raised while tracing our own code
        errors.append(BackendCompilerFailed)
    except ImportError:  # pragma: no cover (older torch)
        pass
    try:
        from torch._inductor.exc import InductorError
        errors.append(InductorError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _step_fn(compile: bool):
    """The inner step, compiled with torch.compile when asked. If compiling fails (a compiler error, see
    :func:`compile_errors`), a warning says so and the process runs the step eagerly from then on."""
    if not compile:
        return _inner_step
    if "fn" not in _COMPILED:
        _COMPILED["fn"] = torch.compile(_inner_step, dynamic=True)  # batch shrinks, levels differ: one graph
    compiled = _COMPILED["fn"]

    def run(*args):
        if _COMPILED.get("broken"):
            return _inner_step(*args)
        try:
            return compiled(*args)
        except compile_errors() as exc:
            import logging
            logging.getLogger("motionprep").warning("torch.compile of the TV-L1 step failed (%s: %s); "
                                                    "running eagerly", type(exc).__name__, exc)
            _COMPILED["broken"] = f"{type(exc).__name__}: {exc}"
            return _inner_step(*args)
    return run


def _warp_terms(stack: torch.Tensor, u: torch.Tensor, I0: torch.Tensor, p: Params, use_gamma: bool):
    """One warp: ``I1`` and its gradients sampled at ``x + u`` (bicubic), the linearised data term ``rho_c``,
    the gradient vector (with the constant gamma channel) and ``-1 / |grad|^2`` (0 where the gradient is
    below float epsilon)."""
    warped = remap_cubic(stack, u)
    I1w, I1wx, I1wy = warped[:, 0], warped[:, 1], warped[:, 2]
    grad = I1wx * I1wx + I1wy * I1wy
    rho_c = I1w - I1wx * u[:, 0] - I1wy * u[:, 1] - I0
    gvec = [I1wx, I1wy] + ([torch.full_like(I1wx, p.gamma)] if use_gamma else [])
    gvec = torch.stack(gvec, dim=1)
    # thresholding step as one clamp: -rho/|grad|^2 limited to [-l_t, l_t] equals OpenCV's three cases
    # (below float epsilon OpenCV takes no step, or a step of l_t times a gradient below 4e-4: no step here)
    ok = grad > _FLT_EPS
    neg_inv_grad = torch.where(ok, -1.0 / torch.where(ok, grad, torch.ones_like(grad)), torch.zeros_like(grad))
    return rho_c, I1wx, I1wy, gvec, neg_inv_grad


class _Iterates:
    """The pairs of a batch still iterating at one warp. They are compacted out of the batch as they
    converge (at every check), so a batch costs the sum of its pairs' iterations rather than its slowest
    pair's times its size. ``rows``: the per-pair tensors (u, p, rho_c, I1wx, I1wy, gvec, -1/|grad|^2)."""

    def __init__(self, u: torch.Tensor, pd: torch.Tensor, terms: tuple):
        self.cu, self.cp = u, pd
        self.cr, self.cx, self.cy, self.cg, self.cn = terms
        self.idx = None                 # batch indices of the compacted rows (None: all, in order)
        self.full_u = self.full_p = None
        self.active = torch.ones(u.shape[0], dtype=torch.bool, device=u.device)
        self.all_active = True          # known on the host: every row still iterates

    def median(self, k: int, use_gamma: bool) -> None:
        m, _, H, W = self.cu.shape
        med = median_blur(self.cu[:, :2].reshape(m * 2, H, W), k).view(m, 2, H, W)
        if not self.all_active:
            med = torch.where(self.active[:, None, None, None], med, self.cu[:, :2])
        self.cu = torch.cat((med, self.cu[:, 2:]), dim=1) if use_gamma else med

    def step(self, step, consts: tuple, scaled_eps: float, work: torch.Tensor | None) -> None:
        """One inner iteration of the rows still active; ``work`` counts their pixel-iterations."""
        u_new, p_new, err = step(self.cu, self.cp, self.cr, self.cx, self.cy, self.cn, self.cg, *consts)
        if self.all_active:
            self.cu, self.cp = u_new, p_new
        else:
            a4 = self.active[:, None, None, None]
            self.cu = torch.where(a4, u_new, self.cu)
            self.cp = torch.where(a4[..., None], p_new, self.cp)
        if work is not None:
            inc = self.active * float(self.cu.shape[2] * self.cu.shape[3])
            if self.idx is None:
                work += inc
            else:
                work.index_add_(0, self.idx, inc.to(work.dtype))
        self.active = self.active & (err > scaled_eps)

    def check(self, check_every: int) -> bool:
        """Look at the host copy of the active flags; compact the converged rows out. True: none is left."""
        left = int(self.active.sum())
        if left == 0:
            return True
        self.all_active = left == self.active.shape[0]
        if not self.all_active and (check_every == 1 or left <= 0.75 * self.active.shape[0]):
            if self.idx is None:
                self.full_u, self.full_p = self.cu, self.cp
                self.idx = torch.arange(self.cu.shape[0], device=self.cu.device)
            else:
                self.full_u[self.idx] = self.cu
                self.full_p[self.idx] = self.cp
            keep = self.active.nonzero().squeeze(1)
            self.idx = self.idx[keep]
            rows = (self.cu, self.cp, self.cr, self.cx, self.cy, self.cg, self.cn)
            self.cu, self.cp, self.cr, self.cx, self.cy, self.cg, self.cn = (t[keep] for t in rows)
            self.active = self.active[keep]
            self.all_active = True
        return False

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.idx is None:
            return self.cu, self.cp
        self.full_u[self.idx] = self.cu
        self.full_p[self.idx] = self.cp
        return self.full_u, self.full_p


def _one_scale(I0: torch.Tensor, I1: torch.Tensor, u: torch.Tensor, p: Params, check_every: int,
               work: torch.Tensor | None = None, compile: bool = False) -> torch.Tensor:
    """Refine flow ``u`` (B, C, H, W), C = 2 (+1 for the gamma term) at one pyramid level; returns u.

    ``work`` (B,) float64, if given, accumulates the pixel-iterations each pair really ran."""
    B, C, H, W = u.shape
    use_gamma = C == 3
    consts = (float(p.lambda_ * p.theta), float(p.theta), float(p.tau / p.theta), float(p.gamma))
    scaled_eps = float(torch.tensor(p.epsilon * p.epsilon * H * W, dtype=torch.float32))
    I1x, I1y = centered_gradient(I1)
    stack = torch.stack((I1, I1x, I1y), dim=1)
    pd = torch.zeros((B, C, 2, H, W), dtype=u.dtype, device=u.device)  # dual variables (p_c1, p_c2)
    step = _step_fn(compile)
    for _ in range(p.warps):
        it = _Iterates(u, pd, _warp_terms(stack, u, I0, p, use_gamma))
        n = 0
        for _outer in range(p.outer_iterations):
            if p.median_filtering > 1:
                it.median(p.median_filtering, use_gamma)
            done = False
            for _inner in range(p.inner_iterations):
                it.step(step, consts, scaled_eps, work)
                n += 1
                if n % check_every != 0:
                    it.all_active = False
                    continue
                if done := it.check(check_every):
                    break
            if done or not bool(it.active.any()):
                break
        u, pd = it.result()
    return u


def tvl1_torch(I0: torch.Tensor, I1: torch.Tensor, params: Params | None = None,
               check_every: int | None = None, work: torch.Tensor | None = None,
               compile: bool = False) -> torch.Tensor:
    """Flow from I0 to I1 for a batch: (B, H, W) float32 on the 0-255 scale -> (B, H, W, 2) float32 pixels.

    ``check_every``: how often (inner iterations) to test whether every pair has converged; the result does
    not depend on it (converged pairs are frozen), only the wasted work and the host syncs do.
    ``work``: optional (B,) float64 tensor on the device; the pixel-iterations each pair ran are added to it
    (compare with :func:`cost_model`'s worst case).
    ``compile``: fuse the inner iteration with ``torch.compile`` (Triton on CUDA, C++ on the CPU): several
    times faster after a one-off compilation of tens of seconds; results differ from eager mode only by
    float rounding (fused multiply-adds).
    """
    p = params or Params()
    if I0.shape != I1.shape or I0.dim() != 3:
        raise ValueError(f"expected two (B, H, W) batches of equal shape, got {tuple(I0.shape)} and {tuple(I1.shape)}")
    B, H, W = I0.shape
    if H < 3 or W < 3:
        raise ValueError(f"frames of {W}x{H} are too small for TV-L1 (at least 3x3)")
    if check_every is None:
        check_every = 1 if I0.device.type == "cpu" else 10
    sizes = pyramid_sizes(H, W, p.nscales, p.scale_step)
    I0s, I1s = [I0.float()], [I1.float()]
    inv = 1.0 / p.scale_step
    for size in sizes[1:]:
        I0s.append(resize_linear(I0s[-1], size, (inv, inv)))
        I1s.append(resize_linear(I1s[-1], size, (inv, inv)))
    C = 3 if p.gamma != 0 else 2
    h, w = sizes[-1]
    u = torch.zeros((B, C, h, w), dtype=torch.float32, device=I0.device)
    for s in range(len(sizes) - 1, -1, -1):
        u = _one_scale(I0s[s], I1s[s], u, p, check_every, work, compile)
        if s == 0:
            break
        u = resize_linear(u, sizes[s - 1])
        u[:, :2] *= inv
    return u[:, :2].permute(0, 2, 3, 1).contiguous()


def cost_model(height: int, width: int, params: Params | None = None) -> dict:
    """Worst-case arithmetic of one pair (every inner iteration runs) for the GPU bound in BENCHMARKS.md.

    ``fused_bytes``: float32 traffic of one pixel-iteration when the whole inner step is one kernel (read u 2,
    p 4, I1wx, I1wy, rho_c, 1/|grad|^2; write u 2, p 4: 16 values). ``eager_bytes``: the same counted over
    the ~30 separate kernels of the eager step (each reads its inputs and writes its output: about 170
    values, masking with ``where`` included).
    """
    p = params or Params()
    sizes = pyramid_sizes(height, width, p.nscales, p.scale_step)
    area = sum(h * w for h, w in sizes)
    iters = p.warps * p.outer_iterations * p.inner_iterations
    return {"pyramid_pixels": area, "inner_iterations_per_level": iters, "levels": len(sizes),
            "pixel_iterations": area * iters, "fused_bytes_per_pixel_iteration": 4 * 16,
            "eager_bytes_per_pixel_iteration": 4 * 170}


__all__ = ["Params", "tvl1_torch", "pyramid_sizes", "resize_linear", "centered_gradient", "forward_gradient",
           "divergence", "median_blur", "median_plan", "batcher_pairs", "remap_cubic", "cost_model"]

