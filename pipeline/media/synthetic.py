"""Synthetic videos whose classes are defined by motion alone, with their true optical flow.

Each video shows a textured disc moving over a static textured background; the class is the motion of the
disc (translation right/left/down/up, rotation counter-clockwise/clockwise, zoom in/out) with a random speed,
start position and textures. The background is tinted: with probability ``context`` in its class's colour,
otherwise in a random class's, a scene cue like those of real datasets (appearance streams can use it,
motion streams cannot, so static clips separate the two). Videos are real H.264 files at a frame rate other than 25 (30 by default), so the
decode stage resamples them. Because the motion is known, the true optical flow of every pair of consecutive
frames *after* resampling to 25 fps is saved too (``true_flow.h5``), for judging flow accuracy.

Output folder layout (file names from :data:`pipeline.core.paths.DEMO_FILES`)::

    classes.txt             one class name a line, in label-index order
    split.csv               path,label,split (paths relative to this folder)
    videos/<class>/<id>.mp4
    true_flow.h5            /<video_id>: (N-1, H, W, 2) float32, (dx, dy) in pixels, N = frames at 25 fps
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import h5py
import numpy as np

from ..core.atomic import atomic_path, write_text_atomic
from ..core.config import MakeDemoConfig
from ..core.paths import DEMO_FILES
from .video import resample_indices
from .videoio import write_h264

CLASSES = ("translate_right", "translate_left", "translate_down", "translate_up",
           "rotate_ccw", "rotate_cw", "zoom_in", "zoom_out")


@dataclass(frozen=True)
class Motion:
    """Pose of the disc at time t: centre ``c0 + v t``, angle ``w t`` (radians, y down), scale ``exp(k t)``."""

    c0: tuple[float, float]
    v: tuple[float, float] = (0.0, 0.0)
    w: float = 0.0
    k: float = 0.0

    def matrix(self, t: float) -> np.ndarray:
        """(2, 3) affine map from disc coordinates (origin at its centre) to image pixels at time t."""
        s = math.exp(self.k * t)
        a = self.w * t
        cx, cy = self.c0[0] + self.v[0] * t, self.c0[1] + self.v[1] * t
        return np.array([[s * math.cos(a), -s * math.sin(a), cx], [s * math.sin(a), s * math.cos(a), cy]])


def texture(rng: np.random.Generator, h: int, w: int, contrast: float = 1.0) -> np.ndarray:
    """A smooth random colour texture, (h, w, 3) uint8, with detail at several scales (good for flow)."""
    acc = np.zeros((h, w, 3), np.float32)
    for sigma, weight in ((1.0, 0.5), (2.5, 0.8), (6.0, 1.0)):
        noise = rng.standard_normal((h, w, 3)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
        acc += weight * blurred / (blurred.std() + 1e-6)
    acc = (acc - acc.mean()) / (acc.std() + 1e-6)
    return np.clip(128 + 45 * contrast * acc, 0, 255).astype(np.uint8)


#: background tint of each class (RGB), the scene cue of ``make_demo.context``
TINTS = ((220, 60, 60), (60, 200, 60), (60, 90, 230), (220, 200, 50), (200, 60, 210), (50, 200, 210),
         (240, 140, 40), (150, 150, 150))


def tint(image: np.ndarray, colour: tuple[int, int, int], amount: float = 0.35) -> np.ndarray:
    """Blend ``image`` (H, W, 3) uint8 toward ``colour`` by ``amount`` (texture kept), uint8."""
    out = image.astype(np.float32) * (1 - amount) + np.asarray(colour, np.float32) * amount
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def random_motion(cls: str, rng: np.random.Generator, width: int, height: int, duration: float) -> Motion:
    """Motion of class ``cls`` with random speed; the disc stays mostly inside the frame for ``duration`` s."""
    cx, cy = width / 2 + rng.uniform(-4, 4), height / 2 + rng.uniform(-4, 4)
    if cls.startswith("translate"):
        speed = rng.uniform(0.5, 0.8) * min(width, height) / max(duration, 1e-6)
        dx, dy = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}[cls.split("_")[1]]
        start = (cx - dx * speed * duration / 2, cy - dy * speed * duration / 2)
        return Motion(start, v=(dx * speed, dy * speed))
    if cls.startswith("rotate"):
        w = rng.uniform(2.5, 4.0) * (-1 if cls == "rotate_ccw" else 1)  # y points down: negative = ccw on screen
        return Motion((cx, cy), w=w)
    k = rng.uniform(1.0, 1.5) * (1 if cls == "zoom_in" else -1)
    return Motion((cx, cy), k=k)


def render(bg: np.ndarray, tex: np.ndarray, radius: float, motion: Motion, t: float) -> np.ndarray:
    """Frame at time t: the disc (texture ``tex`` centred at its middle) over the background, (H, W, 3) uint8."""
    h, w = bg.shape[:2]
    m = motion.matrix(t)
    th, tw = tex.shape[:2]
    to_tex = np.array([[1, 0, -tw / 2], [0, 1, -th / 2], [0, 0, 1]])
    fwd = m @ to_tex
    obj = cv2.warpAffine(tex, fwd, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
    disc = np.clip(radius + 0.5 - np.hypot(xx + 0.5 - tw / 2, yy + 0.5 - th / 2), 0, 1).astype(np.float32)
    alpha = cv2.warpAffine(disc, fwd, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    return np.clip(bg * (1 - alpha) + obj * alpha + 0.5, 0, 255).astype(np.uint8)


def true_flow(motion: Motion, radius: float, t1: float, t2: float, width: int, height: int) -> np.ndarray:
    """Flow from the frame at t1 to the frame at t2: (H, W, 2) float32 (dx, dy) pixels.

    Pixels of the disc at t1 move with the disc; background pixels do not move.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    m1 = np.vstack([motion.matrix(t1), [0, 0, 1]])
    m2 = np.vstack([motion.matrix(t2), [0, 0, 1]])
    rel = m2 @ np.linalg.inv(m1)
    inv1 = np.linalg.inv(m1)
    u = inv1[0, 0] * xx + inv1[0, 1] * yy + inv1[0, 2]
    v = inv1[1, 0] * xx + inv1[1, 1] * yy + inv1[1, 2]
    inside = np.hypot(u, v) <= radius
    nx = rel[0, 0] * xx + rel[0, 1] * yy + rel[0, 2]
    ny = rel[1, 0] * xx + rel[1, 1] * yy + rel[1, 2]
    flow = np.stack([nx - xx, ny - yy], axis=-1)
    flow[~inside] = 0
    return flow.astype(np.float32)


def make_demo(out: str | Path, cfg: MakeDemoConfig, output_fps: float | None) -> dict:
    """Generate the dataset into ``out``; return a summary. Deterministic for a given ``cfg.seed``.

    ``output_fps``: the rate the decode stage resamples to (``decode.fps``; None keeps the source rate),
    at which the true flows are computed."""
    output_fps = output_fps or cfg.fps
    out = Path(out)
    classes = CLASSES[:cfg.classes]
    rng = np.random.default_rng(cfg.seed)
    fps = Fraction(cfg.fps).limit_denominator(1001)
    duration = cfg.frames / float(fps)
    times = [Fraction(j) / fps for j in range(cfg.frames)]
    shown = resample_indices(times, Fraction(cfg.frames) / fps, output_fps)
    radius = 0.3 * min(cfg.width, cfg.height)
    rows = []
    with atomic_path(out / DEMO_FILES["true_flow"]) as tmp, h5py.File(tmp, "w") as flows:
        flows.attrs["description"] = ("true optical flow (dx, dy) in pixels between consecutive frames after "
                                      "resampling to the decode rate (attribute fps); flow i is frame i -> frame i+1")
        flows.attrs["fps"] = output_fps
        for ci, cls in enumerate(classes):
            for k in range(cfg.train_per_class + cfg.test_per_class):
                vid = f"{cls}_{k:02d}"
                split = "train" if k < cfg.train_per_class else "test"
                bg = texture(rng, cfg.height, cfg.width, contrast=0.7)
                cue = ci if rng.random() < cfg.context else int(rng.integers(len(classes)))
                bg = tint(bg, TINTS[cue])
                side = int(2 * radius * 1.6) + 4
                tex = texture(rng, side, side, contrast=1.2)
                motion = random_motion(cls, rng, cfg.width, cfg.height, duration)
                frames = [render(bg, tex, radius, motion, float(t)) for t in times]
                rel = f"videos/{cls}/{vid}.mp4"
                write_h264(out / rel, frames, fps, crf=12)
                gt = np.stack([true_flow(motion, radius, float(times[a]), float(times[b]), cfg.width, cfg.height)
                               for a, b in zip(shown, shown[1:])]) if len(shown) > 1 else \
                    np.zeros((0, cfg.height, cfg.width, 2), np.float32)
                flows.create_dataset(vid, data=gt, compression="gzip", compression_opts=4, shuffle=True)
                rows.append((rel, cls, split))
    write_text_atomic(out / DEMO_FILES["classes"], "".join(c + "\n" for c in classes))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "split"])
    writer.writerows(rows)
    write_text_atomic(out / DEMO_FILES["split"], buf.getvalue())
    return {"videos": len(rows), "classes": len(classes), "frames": len(shown), "fps": output_fps, "out": str(out)}
