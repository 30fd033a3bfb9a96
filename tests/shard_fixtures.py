"""Small synthetic vidshard files for the data and layout tests (not a test module itself).

RGB frame ``i`` of video ``v``: channel 0 is a horizontal ramp (x * 2), channel 1 is the constant
``7 * i + 5`` (frame index), channel 2 the constant ``20 * v + 5`` (video index). Flow x is the constant 200,
flow y the constant 60, so mirroring shows up as x = 55.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.media import jpeg
from pipeline.shards import ShardWriter, Stream


def tagged(data: bytes, i: int) -> bytes:
    """JPEG bytes with a comment segment of varying length, so that no video has all frames of one size
    (ShardWriter.add_video cannot store a video whose JPEGs are all the same length; see the report)."""
    com = b"f" * (i % 7 + 1)
    return data[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + data[2:]


def rgb_frame(v: int, i: int, h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (np.arange(w) * 2 % 256)[None, :]
    img[..., 1] = (7 * i + 5) % 256
    img[..., 2] = (20 * v + 5) % 256
    return img


def write_shards(root: Path, lengths: list[int], *, h: int = 48, w: int = 64, flow: bool = True,
                 skip_flow: tuple[str, ...] = (), shard: int = 0, prefix: str = "v") -> dict[str, Path]:
    """Write ``root/rgb/shard-0000k.h5`` (and the aligned flow shard); returns {modality: path}."""
    classes = ["a", "b", "c"]
    paths = {"rgb": root / "rgb" / f"shard-{shard:05d}.h5"}
    with ShardWriter(paths["rgb"], dataset="toy", modality="rgb", encoding="jpeg", shard=shard, num_shards=1,
                     classes=classes, manifest_sha256="0" * 64, params={}, streams=[Stream("rgb")]) as wr:
        for v, n in enumerate(lengths):
            frames = [tagged(jpeg.encode(rgb_frame(v, i, h, w), 95), i) for i in range(n)]
            split = "train" if v % 2 == 0 else "test"
            wr.add_video(f"{prefix}{v}", v % 3, split, 25.0, h, w, {"rgb": frames})
    if flow:
        paths["flow"] = root / "flow" / f"shard-{shard:05d}.h5"
        with ShardWriter(paths["flow"], dataset="toy", modality="flow", encoding="jpeg", shard=shard,
                         num_shards=1, classes=classes, manifest_sha256="0" * 64, params={},
                         streams=[Stream("x", color="gray"), Stream("y", color="gray")]) as wr:
            for v, n in enumerate(lengths):
                if f"{prefix}{v}" in skip_flow:
                    continue
                fx = [tagged(jpeg.encode(np.full((h, w), 200, np.uint8)), i) for i in range(n - 1)]
                fy = [tagged(jpeg.encode(np.full((h, w), 60, np.uint8)), i) for i in range(n - 1)]
                wr.add_video(f"{prefix}{v}", v % 3, "train" if v % 2 == 0 else "test", 25.0, h, w,
                             {"x": fx, "y": fy})
    return paths


def write_mv_and_resframes(root: Path, lengths: list[int], *, h: int = 48, w: int = 64,
                           prefix: str = "v") -> dict[str, Path]:
    """An ``extract_mv``-style shard (streams frame_type, gop_index, gop_pos, mv (2, H, W), mv_acc, residual
    (H, W, 3), residual_acc; N entries per video) and a signed ``resframe`` shard at half size (N - 1
    entries).

    mv: x = 160, y = 100 everywhere. residual: channel 0 a ramp ``x * 2``, channel 1 ``7 * i + 5``.
    resframe: channel 0 a ramp ``x * 4`` (same relative ramp at half size), channel 1 ``7 * i + 5``."""
    classes = ["a", "b", "c"]
    paths = {"mv": root / "mv" / "shard-00000.h5", "resframe": root / "resframe" / "shard-00000.h5"}
    streams = [Stream("frame_type", kind="array", shape=(), dtype="uint8"),
               Stream("gop_index", kind="array", shape=(), dtype="int32"),
               Stream("gop_pos", kind="array", shape=(), dtype="int32"),
               Stream("mv", kind="array", shape=(2, h, w)), Stream("mv_acc", kind="array", shape=(2, h, w)),
               Stream("residual", kind="array", shape=(h, w, 3)),
               Stream("residual_acc", kind="array", shape=(h, w, 3))]
    common = dict(dataset="toy", shard=0, num_shards=1, classes=classes, manifest_sha256="0" * 64, params={})
    with ShardWriter(paths["mv"], modality="mv", encoding="coviar-uint8", streams=streams, **common) as wr:
        for v, n in enumerate(lengths):
            mv = np.empty((n, 2, h, w), np.uint8)
            mv[:, 0], mv[:, 1] = 160, 100
            res = np.zeros((n, h, w, 3), np.uint8)
            res[..., 0] = (np.arange(w) * 2 % 256)[None, None, :]
            res[..., 1] = ((7 * np.arange(n) + 5) % 256)[:, None, None]
            frames = {"frame_type": np.ones(n, np.uint8), "gop_index": np.arange(n) // 12,
                      "gop_pos": np.arange(n) % 12, "mv": mv, "mv_acc": mv,
                      "residual": res, "residual_acc": res}
            wr.add_video(f"{prefix}{v}", v % 3, "train", 25.0, h, w, frames)
    rs = Stream("resframe", kind="array", shape=(h // 2, w // 2, 3), attrs={"signed": True})
    with ShardWriter(paths["resframe"], modality="resframe", encoding="raw", streams=[rs], **common) as wr:
        for v, n in enumerate(lengths):
            rf = np.full((n - 1, h // 2, w // 2, 3), 128, np.uint8)
            rf[..., 0] = (np.arange(w // 2) * 4 % 256)[None, None, :]
            rf[..., 1] = ((7 * np.arange(n - 1) + 5) % 256)[:, None, None]
            wr.add_video(f"{prefix}{v}", v % 3, "train", 25.0, h // 2, w // 2, {"resframe": rf})
    return paths
