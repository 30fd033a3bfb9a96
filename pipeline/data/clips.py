"""Clip sampling and per-clip transforms: pure functions on numpy arrays, no I/O, no torch.

Conventions used throughout:

* A video has ``n`` frames in a stream, indexed ``0 .. n-1``.
* A clip is ``length`` frame indices. A video shorter than ``length`` is **looped**: indices wrap around
  (``i % n``), so a 5-frame video gives ``0 1 2 3 4 0 1 2 ...`` for a 16-frame clip. Looping keeps real
  motion in every position (padding with a repeated last frame would put zero motion in the tail).
* Spatial crop positions are chosen as fractions ``(fy, fx)`` in ``[0, 1]`` and turned into pixel boxes per
  stream, so streams of different sizes (RGB 340x256, residual frames 170x128, motion vectors) get the same
  relative window, and streams of equal size get exactly the same pixels.
* Quantized flow is uint8 with zero motion at 127.5 (``q = round(255 (v + 20) / 40)``); mirroring the image
  negates the x component, which on the quantized value is ``q -> 255 - q``. Motion vectors stored as
  ``v * 127.5 / 20 + 128`` mirror as ``q -> 256 - q`` (clipped to 255).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..core.config import ClipsConfig
from ..flow.quantize import flip_x

# MARS input normalization (ActivityNet mean on the 0-255 scale, std 1) and flow centre: the config's
# ``clips`` defaults (the schema holds the numbers).
RGB_MEAN = ClipsConfig().rgb_mean
FLOW_MEAN = ClipsConfig().flow_mean


def train_clip_start(num_frames: int, length: int, rng: np.random.Generator) -> int:
    """A uniformly random start so that ``start .. start+length-1`` lies inside the video.

    ``num_frames >= 1``. Returns an int in ``[0, max(0, num_frames - length)]`` (0 for short videos,
    which are looped by :func:`clip_indices`).
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    return int(rng.integers(0, max(0, num_frames - length) + 1))


def test_clip_starts(num_frames: int, length: int) -> list[int]:
    """Starts of every non-overlapping clip: ``0, length, 2*length, ...`` while the clip fits.

    A video shorter than one clip gives the single start 0 (looped); the tail that does not fill a whole
    clip is dropped, so a video of ``n >= length`` frames gives ``n // length`` clips.
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    return list(range(0, max(num_frames - length, 0) + 1, length))


def strided_clip_starts(num_frames: int, length: int, stride: int) -> list[int]:
    """Starts ``0, stride, 2*stride, ...`` of every clip of ``length`` frames that fits in the video (feature
    extraction: 16/16 non-overlapping, 16/8 half-overlapping). A video shorter than one clip gives the single
    start 0 (its clip looped, :func:`clip_indices`); the tail that does not fill a clip is dropped, as
    video_features and mmaction2 do."""
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return list(range(0, max(num_frames - length, 0) + 1, stride))


def strided_anchored_starts(num_frames: int, length: int, anchor: str, gop: int, stride: int) -> list[int]:
    """The anchored starts (:func:`anchored_starts`) at least ``stride`` frames apart, from the first; ``[0]``
    when the video has none (looped)."""
    out: list[int] = []
    for s in anchored_starts(num_frames, length, anchor, gop):
        if not out or s - out[-1] >= stride:
            out.append(s)
    return out or [0]


def spaced_clip_starts(num_frames: int, length: int, count: int = 0) -> list[int]:
    """Test clip starts: ``count`` = 0 gives every non-overlapping clip (:func:`test_clip_starts`, MARS);
    ``count`` > 0 gives ``count`` starts spread evenly as TSN's test sampling does: the ``n - length + 1``
    possible starts cut into ``count`` equal parts and the middle of each taken, ``int(t / 2 + t * k)`` with
    ``t = (n - length + 1) / count`` (starts repeat when the video has fewer than ``count``; a video shorter
    than one clip gives 0, looped)."""
    if count <= 0:
        return test_clip_starts(num_frames, length)
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    t = max(num_frames - length + 1, 1) / count
    return [int(t / 2 + t * k) for k in range(count)]


#: test frames per video of the single-frame methods (CoViAR and DMC-Net test on 25 frames a video)
ANCHORED_TEST_FRAMES = 25


def anchored_starts(num_frames: int, length: int, anchor: str, gop: int) -> list[int]:
    """Starts of the clips of ``length`` frames inside the video whose last frame is an I-frame
    (``anchor="i"``: frame index a multiple of ``gop``) or a P-frame (``"p"``), for the re-encoded video's
    picture structure (I-frames exactly every ``gop`` frames: ``reencode`` checks it). May be empty."""
    if anchor not in ("i", "p"):
        raise ValueError(f"anchor must be 'i' or 'p', got {anchor!r}")
    last = np.arange(length - 1, num_frames)
    keep = (last % gop == 0) if anchor == "i" else (last % gop != 0)
    return (last[keep] - (length - 1)).tolist()


def anchored_test_starts(num_frames: int, length: int, anchor: str, gop: int,
                         count: int = ANCHORED_TEST_FRAMES) -> list[int]:
    """Up to ``count`` anchored starts spread evenly over the video (all of them when there are fewer);
    ``[0]`` when the video has none (too short: its clip is looped)."""
    starts = anchored_starts(num_frames, length, anchor, gop)
    if not starts:
        return [0]
    if len(starts) <= count:
        return starts
    pick = np.linspace(0, len(starts) - 1, count).round().astype(int)
    return [starts[i] for i in pick]


def clip_indices(start: int, length: int, num_frames: int) -> np.ndarray:
    """Frame indices ``start .. start+length-1``, wrapped modulo ``num_frames`` (int64, shape (length,))."""
    return (start + np.arange(length, dtype=np.int64)) % num_frames


def random_crop_fraction(rng: np.random.Generator) -> tuple[float, float]:
    """A random crop position ``(fy, fx)`` in ``[0, 1]^2``; see :func:`crop_box`."""
    return float(rng.random()), float(rng.random())


def crop_box(height: int, width: int, size: int, fy: float = 0.5, fx: float = 0.5) -> tuple[int, int]:
    """Top-left corner ``(y0, x0)`` of a ``size x size`` window at relative position ``(fy, fx)``.

    ``(0.5, 0.5)`` is the centre crop. ``y0`` is in ``[0, height - size]`` (0 when the frame is smaller
    than ``size``; :func:`crop` then pads).
    """
    y0 = int(round(fy * max(height - size, 0)))
    x0 = int(round(fx * max(width - size, 0)))
    return y0, x0


def crop(frames: np.ndarray, size: int, y0: int, x0: int) -> np.ndarray:
    """Crop ``(T, H, W[, C])`` frames to ``(T, size, size[, C])``; smaller frames are edge-padded
    (centred) up to ``size`` first. Returns a view when no padding is needed."""
    t, h, w = frames.shape[:3]
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        pad = [(0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)] + [(0, 0)] * (frames.ndim - 3)
        frames = np.pad(frames, pad, mode="edge")
        h, w = frames.shape[1:3]
        y0, x0 = min(y0, h - size), min(x0, w - size)
    return frames[:, y0:y0 + size, x0:x0 + size]


def hflip(frames: np.ndarray) -> np.ndarray:
    """Mirror ``(T, H, W[, C])`` frames left-right (a view)."""
    return frames[:, :, ::-1]


def flip_flow_x(q: np.ndarray) -> np.ndarray:
    """Negate quantized x-flow: uint8 ``q -> 255 - q`` (same shape and dtype); the flow stage's own rule."""
    return flip_x(q)


def flip_mv_x(q: np.ndarray) -> np.ndarray:
    """Negate stored motion-vector x (zero at 128): uint8 ``q -> min(256 - q, 255)``."""
    return np.minimum(256 - q.astype(np.int16), 255).astype(np.uint8)


def draw_hls_jitter(rng: np.random.Generator, amplitude: Sequence[float]) -> tuple[float, float, float]:
    """Offsets (dh, dl, ds), each uniform in ``[-a, a]`` for ``amplitude`` (a_h, a_l, a_s) (CoViAR's colour
    augmentation: 36, 50, 50 on OpenCV's 8-bit HLS scales, hue 0..180, lightness and saturation 0..255)."""
    a = np.asarray(amplitude, dtype=np.float64)
    return tuple(float(x) for x in (rng.random(3) * 2 - 1) * a)      # type: ignore[return-value]


def hls_jitter(frames: np.ndarray, offsets: Sequence[float]) -> np.ndarray:
    """CoViAR's colour augmentation of RGB frames: uint8 ``(T, H, W, 3)`` -> the same shape and dtype.

    Each frame to OpenCV's 8-bit HLS, ``offsets`` (dh, dl, ds) added, hue capped at 180 and lightness and
    saturation at 255, all floored at 0, truncated to uint8 and back to RGB (as CoViAR's ``color_aug``,
    which works on BGR: the HLS values are the same)."""
    dh, dl, ds = (float(x) for x in offsets)
    t, h, w, c = frames.shape
    flat = np.ascontiguousarray(frames).reshape(t * h, w, c)
    hls = cv2.cvtColor(flat, cv2.COLOR_RGB2HLS).astype(np.float32)
    hls += np.array([dh, dl, ds], np.float32)
    np.minimum(hls, np.array([180, 255, 255], np.float32), out=hls)
    np.maximum(hls, 0, out=hls)
    return cv2.cvtColor(hls.astype(np.uint8), cv2.COLOR_HLS2RGB).reshape(t, h, w, c)


def to_cthw(frames: np.ndarray, mean: float | Sequence[float]) -> np.ndarray:
    """uint8 ``(T, H, W, C)`` or ``(T, H, W)`` to float32 ``(C, T, H, W)`` minus a per-channel ``mean``.

    Values: ``q - mean`` with ``q`` in 0..255 (std 1, as MARS uses).
    """
    if frames.ndim == 3:
        frames = frames[..., None]
    t, h, w, c = frames.shape
    out = np.empty((c, t, h, w), dtype=np.float32)
    mean = np.broadcast_to(np.asarray(mean, dtype=np.float32), (c,))
    if c == 1:
        planes = [frames[..., 0]]
    else:   # OpenCV's SIMD de-interleave, then contiguous subtractions (faster than strided ones)
        planes = [p.reshape(t, h, w) for p in cv2.split(np.ascontiguousarray(frames).reshape(t * h, w, c))]
    for k in range(c):
        np.subtract(planes[k], mean[k], out=out[k], dtype=np.float32)
    return out


def group_scores(scores: np.ndarray, video: Sequence[int]) -> dict[int, np.ndarray]:
    """Average clip scores per video: ``scores`` (K, C) float, ``video`` (K,) ints -> {video: (C,) mean}."""
    scores = np.asarray(scores)
    video = np.asarray(video)
    return {int(v): scores[video == v].mean(axis=0) for v in np.unique(video)}
