"""PyTorch datasets of training / test clips read straight from vidshard files.

One sample is one clip of one video, every requested modality cut at the same frames and the same relative
window, mirrored together. ``ShardClips(shards, "rgb+flow", mode="train")[i]`` returns::

    {"rgb":   float32 (3, T, S, S)   RGB minus the ActivityNet mean (0-255 scale, std 1)
     "flow":  float32 (2, T, S, S)   quantized flow minus 127.5, channels (x, y)
     "mv":    float32 (2, T, S, S)   stored motion vectors minus 128, channels (x, y)
     "residual": float32 (C, T, S, S) stored residuals minus 128
     "resframe": float32 (C, T, S, S) residual frames minus their zero level (0 unsigned, 128 signed)
     "frame": float32 (3, S, S)      the clip's middle RGB frame (two-path network), RGB mean removed
     "label": int64 (), "video": int64 () index into ``dataset.videos``, "start": int64 () first frame}

Only the requested modalities appear. ``T`` is ``length`` (16 by default; 11 for MotionNet windows) and ``S``
is ``crop`` (112). Frames are aligned by index: RGB frame ``i``, motion vectors and residuals ``i`` (of the
re-encoded video, whose frames are the decode stage's: one resampling rule) and flow ``i`` (frame i -> i+1)
start the same clip. A video of N frames has N in ``rgb`` and ``mv`` shards and N-1 in ``flow`` and
``resframe`` shards (pairs ``i -> i+1``); a video whose shards disagree on N is an error naming it and the
counts (:class:`~pipeline.core.errors.ShardError`), never truncated to the shortest: frame ``i`` would not be
the same instant in every modality. Its usable length is the shortest of its modalities (N-1 with flow).

Train mode: a random clip, random crop, random mirror (flow x -> 255 - q). Test mode: centre crop and every
non-overlapping clip of every video, one item per clip; ``item_video`` / :func:`clips.group_scores` gather
clip scores per video. Videos shorter than one clip are looped (see :mod:`pipeline.data.clips`).

HDF5 files are opened lazily on first access in each process (a fork- or spawn-started DataLoader worker
opens its own handles); the dataset pickles without open files.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Sequence

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from ..compressed.encoding import dense_mv
from .mv_source import MvShard
from ..flow.quantize import quantize
from ..core.config import ClipsConfig, RecipeConfig, ReencodeConfig, effective_recipe, recipe_defaults
from ..core.errors import ShardError
from ..shards import MODALITIES as SHARD_MODALITIES
from ..shards import ShardReader
from . import clips as C
from . import views as V

# The inputs a sample can hold (sample keys) and where each comes from: (shard modality, streams). The mv shard of ``extract_mv`` holds both
# motion vectors and residuals (plus their accumulated variants ``mv_acc`` / ``residual_acc``).
SOURCE = {"rgb": ("rgb", ("rgb",)), "frame": ("rgb", ("rgb",)), "flow": ("flow", ("x", "y")),
          "mv": ("mv", ("mv",)), "residual": ("mv", ("residual",)), "resframe": ("resframe", ("resframe",))}
INPUTS = tuple(SOURCE)
_CLIPS = ClipsConfig()       # means and mirroring: the config's clips defaults
_MARS = recipe_defaults()["mars"]   # clip length, views and test clips: MARS's recipe, the reference
_GOP = ReencodeConfig().gop  # I-frames every 12 frames in the re-encoded videos
# Frames of a video of N (RGB) frames in each shard modality, as N - PAIRED[modality]: flow and residual
# frames are pairs i -> i+1 (docs/shard-format.md); rgb and mv (the re-encoded frames) have N.
PAIRED = {"rgb": 0, "mv": 0, "flow": 1, "resframe": 1}
assert {src for src, _ in SOURCE.values()} <= set(SHARD_MODALITIES)
# Zero level subtracted per modality (RGB uses a per-channel mean; resframe: 128 when the stream is signed).
DEFAULT_MEANS = {"flow": C.FLOW_MEAN, "mv": 128.0, "residual": 128.0, "resframe": 0.0}
# Method presets: the modalities each training recipe reads, and its clip length.
PRESETS = {
    "flow_teacher": ("flow", 16), "rgb": ("rgb", 16),
    "mars": ("rgb+flow", 16), "mers": ("rgb+flow", 16), "d3d": ("rgb+flow", 16),
    "dmcnet": ("mv+residual+flow", 16), "motionnet": ("rgb", 11), "twopath": ("frame+resframe", 16),
}


def parse_modalities(modalities: str | Sequence[str]) -> tuple[str, ...]:
    """``"rgb+flow"`` or ``["rgb", "flow"]`` -> ``("rgb", "flow")``; unknown names raise ValueError."""
    mods = tuple(modalities.split("+")) if isinstance(modalities, str) else tuple(modalities)
    bad = [m for m in mods if m not in INPUTS]
    if bad or not mods:
        raise ValueError(f"unknown modalities {bad}; allowed: {INPUTS} joined with '+'")
    return mods


@dataclass(frozen=True)
class _StreamInfo:
    name: str
    kind: str          # "jpeg" or "array"
    gray: bool
    signed: bool = False
    grid: int = 0                      # array stored per grid x grid cells (mv of extract_mv), 0: per pixel
    dense_hw: tuple = ()               # (H, W) of the dense map when ``grid``
    pixels: float = 0.0                # pixels per stored unit of a motion stream (flow, mv), 0: not motion


@dataclass(frozen=True)
class VideoEntry:
    """One video usable by every requested modality. ``offsets[src]``: its first frame in shard ``shard``
    of that source; ``frames[src]``: its frame count there (N or N-1, see ``PAIRED``: the sources agree on
    N); ``num_frames``: the shortest of those."""
    shard: int
    video_id: str
    label: int
    split: str
    num_frames: int
    offsets: Mapping[str, int]
    frames: Mapping[str, int]
    rows: Mapping[str, int] = None     # its row in each source's shard
    sizes: Mapping[str, tuple[int, int]] = None    # (height, width) of its frames in each source's shard


def _mv_stream_infos(shard: MvShard, names: Sequence[str]) -> list[_StreamInfo]:
    """The streams of an mv shard of any storage (:mod:`.mv_source`): stored or decoded on read."""
    out = []
    for n in names:
        attrs = shard.stream_attrs(n)
        grid = int(attrs.get("grid", 0))
        dense_hw = tuple(int(x) for x in attrs["dense_shape"][-2:]) if grid > 1 else ()
        pixels = float(attrs["bound"]) / 127.5 if "bound" in attrs else 0.0      # CoViAR: (q - 128) * bound / 127.5
        out.append(_StreamInfo(n, "array", False, False, grid, dense_hw, pixels))
    return out


def _stream_infos(group: h5py.Group, names: Sequence[str], path) -> list[_StreamInfo]:
    out = []
    for n in names:
        if n not in group:
            raise ValueError(f"{path} has no stream {n!r} (streams: {sorted(group)})")
        ds = group[n]
        kind = "jpeg" if ds.attrs.get("encoding") == "jpeg" else "array"
        grid = int(ds.attrs.get("grid", 0))
        dense_hw = tuple(int(x) for x in ds.attrs["dense_shape"][-2:]) if grid > 1 else ()
        pixels = 2 * float(ds.attrs["bound"]) / 255 if ds.attrs.get("quantization") == "linear_clip" else 0.0
        out.append(_StreamInfo(n, kind, ds.attrs.get("color") == "gray", bool(ds.attrs.get("signed", False)),
                               grid, dense_hw, pixels))
    return out


_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)   # OpenCV >= 4.10: libjpeg writes RGB directly


#: libjpeg's DCT-domain reductions: decoding flag bits of 1/2, 1/4, 1/8 (OpenCV's IMREAD_REDUCED_GRAYSCALE_r)
_REDUCED = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def _decode_jpeg(buf: np.ndarray, gray: bool, reduce: int = 1) -> np.ndarray:
    """JPEG bytes -> (H, W) gray or (H, W, 3) **RGB** uint8 (BGR only on OpenCV < 4.10; see ``_BGR``),
    decoded at ``1/reduce`` of its size (``ceil(H / reduce) x ceil(W / reduce)``) when ``reduce`` > 1."""
    if gray:
        flag = _REDUCED[reduce] if reduce > 1 else cv2.IMREAD_GRAYSCALE
    elif _IMREAD_RGB is not None:
        flag = _REDUCED[reduce] | _IMREAD_RGB if reduce > 1 else _IMREAD_RGB
    else:
        flag = _REDUCED[reduce] | cv2.IMREAD_COLOR if reduce > 1 else cv2.IMREAD_COLOR
    img = cv2.imdecode(buf, flag)
    if img is None:
        raise ShardError("JPEG data does not decode")      # a ValueError too
    return img


_BGR = _IMREAD_RGB is None     # colour frames come out of _decode_jpeg in BGR order


def _as_hwc(frames: np.ndarray) -> np.ndarray:
    """Array-stream frames (T, H, W), (T, H, W, C) or (T, C, H, W) with C <= 4 -> (T, H, W[, C])."""
    if frames.ndim == 4 and frames.shape[1] <= 4 < frames.shape[3]:
        return np.ascontiguousarray(frames.transpose(0, 2, 3, 1))
    return frames


class ShardClips(Dataset):
    """Clips from aligned vidshard files.

    ``shards``: ``{shard modality: [shard paths]}`` (``rgb``, ``flow``, ``mv``, ``resframe``; ``mv`` and
    ``residual`` both come from the ``mv`` shard of ``extract_mv``) where position k of every list is shard k
    of that modality (same videos, same order; a video missing from one modality is skipped), or a plain list
    of paths for a single-source request. ``modalities``: e.g. ``"rgb"``, ``"rgb+flow"``,
    ``"mv+residual+flow"``, ``"frame+resframe"``. ``split``: keep only videos of that split (None: all).
    ``seed``: None draws from torch's per-worker RNG (different every epoch and worker); an int makes sample
    ``i`` deterministic. ``streams``: other stream names per modality, e.g. ``{"mv": ["mv_acc"], "residual":
    ["residual_acc"]}`` for CoViAR's accumulated representation. ``means``: other zero levels per modality.
    ``flip``: random mirroring in train mode (off where a mirror changes the class). ``ids``: keep only these
    video ids (a validation part of the train split, for instance). ``static``: MARS' "static clip" test (§5.4):
    every clip becomes its middle frame repeated, so appearance streams see one frame ``length`` times and
    motion streams the zero motion of such a clip (flow of quantized 0, vectors 0, residuals 0).
    ``anchor``: clips end on an I-frame (``"i"``) or a P-frame (``"p"``) of the re-encoded video (I-frames
    every ``gop`` frames), for the single-frame methods (CoViAR, DMC-Net); in test mode up to 25 such clips a
    video, spread evenly (:func:`clips.anchored_test_starts`).
    """

    def __init__(self, shards: Mapping[str, Sequence[str | Path]] | Sequence[str | Path],
                 modalities: str | Sequence[str] = "rgb", mode: str = "train", length: int = _MARS.length,
                 crop: int = _MARS.size, split: str | None = None, rgb_mean: Sequence[float] = _CLIPS.rgb_mean,
                 means: Mapping[str, float] | None = None, seed: int | None = None,
                 streams: Mapping[str, Sequence[str]] | None = None, flip: bool = _CLIPS.flip,
                 ids: Collection[str] | None = None, static: bool = False, anchor: str | None = None,
                 gop: int = _GOP, train_view: str = _MARS.train_view, scales: Sequence[float] = _MARS.scales,
                 max_distort: int = _MARS.max_distort, crop_positions: str = _MARS.crop_positions,
                 test_view: str = _MARS.test_view,
                 test_resize: float = _MARS.test_resize, test_clips: int = _MARS.test_clips,
                 reduced: bool = True, test_stride: int | None = None, color_jitter: Sequence[float] = ()):
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        self.modalities = parse_modalities(modalities)
        self.sources = tuple(dict.fromkeys(SOURCE[m][0] for m in self.modalities))
        self.stream_names = {m: tuple((streams or {}).get(m, SOURCE[m][1])) for m in self.modalities}
        if not isinstance(shards, Mapping):
            if len(self.sources) != 1:
                raise ValueError(f"modalities {self.modalities} need a mapping {{modality: [paths]}}")
            shards = {self.sources[0]: list(shards)}
        missing = [s for s in self.sources if s not in shards]
        if missing:
            raise ValueError(f"no shard paths given for {missing}")
        self.paths = {s: [Path(p) for p in shards[s]] for s in self.sources}
        counts = {len(v) for v in self.paths.values()}
        if len(counts) != 1:
            raise ValueError(f"every modality needs the same number of shards, got "
                             f"{ {s: len(v) for s, v in self.paths.items()} }")
        self.mode, self.length, self.crop, self.seed, self.flip = mode, int(length), int(crop), seed, bool(flip)
        self._ids = None if ids is None else frozenset(ids)
        self.static = bool(static)
        self.rgb_mean = tuple(float(x) for x in rgb_mean)
        self.means = {**DEFAULT_MEANS, **(means or {})}
        self.streams: dict[str, list[_StreamInfo]] = {}     # per requested modality
        self._mv: dict[int, MvShard] = {}                   # mv shards (any storage), by shard index
        self.classes: list[str] = []
        self.videos: list[VideoEntry] = self._index(split)
        if "resframe" in self.streams and not (means or {}).get("resframe") \
                and any(st.signed for st in self.streams["resframe"]):
            self.means["resframe"] = 128.0                   # signed residual frames are stored around 128
        self.anchor, self.gop = anchor, int(gop)
        if train_view not in V.TRAIN_VIEWS:
            raise ValueError(f"train_view must be one of {V.TRAIN_VIEWS}, got {train_view!r}")
        self.train_view, self.scales, self.max_distort = train_view, tuple(float(x) for x in scales), int(max_distort)
        self.crop_positions = crop_positions
        self.test_view, self.test_clips, self.reduced = test_view, int(test_clips), bool(reduced)
        resize = int(round(float(test_resize) * self.crop))
        self.test_view_list = V.test_views(test_view, self.crop, (resize, resize) if test_view in (
            "squash_center", "squash_ten_crop") else resize)
        self.test_stride = None if test_stride is None else int(test_stride)
        self.color_jitter = tuple(float(x) for x in color_jitter)
        if self.color_jitter and len(self.color_jitter) != 3:
            raise ValueError(f"color_jitter takes 3 amplitudes (hue, lightness, saturation), got {color_jitter!r}")
        if mode == "train":
            self.items = [(v, 0, 0) for v in range(len(self.videos))]
        else:       # every test clip (frame) in every test view: the view is the fastest-varying index
            self.items = [(v, s, k) for v, e in enumerate(self.videos) for s in self.test_starts(e.num_frames)
                          for k in range(len(self.test_view_list))]
        self.item_video = np.array([v for v, _, _ in self.items], dtype=np.int64)
        self._handles: dict = {}
        self._pid = os.getpid()

    def test_starts(self, num_frames: int) -> list[int]:
        """The first frames of a video's test clips: every ``test_stride`` frames when given (feature
        extraction), else the recipe's test clips (anchored ones for single-frame methods)."""
        if self.test_stride is not None:
            return (C.strided_anchored_starts(num_frames, self.length, self.anchor, self.gop, self.test_stride)
                    if self.anchor is not None else C.strided_clip_starts(num_frames, self.length, self.test_stride))
        count = self.test_clips or (C.ANCHORED_TEST_FRAMES if self.anchor is not None else 0)
        return (C.anchored_test_starts(num_frames, self.length, self.anchor, self.gop, count)
                if self.anchor is not None else C.spaced_clip_starts(num_frames, self.length, count))

    @classmethod
    def from_config(cls, shards, modalities: str | Sequence[str], clips: ClipsConfig,
                    recipe: RecipeConfig | None = None, **kwargs) -> "ShardClips":
        """A dataset with the means and mirroring of a ``clips`` config section and the views, clip length
        and test clips of a method's ``recipe`` (:meth:`Settings.recipe`; None: MARS's, with ``clips``'
        non-null length and crop); ``kwargs``: the other parameters (mode, split, ids, seed, static, a
        single-frame method's length, ...)."""
        if recipe is None:
            recipe = effective_recipe(_MARS, clips=clips)
        length = kwargs.pop("length", None) or recipe.length
        if recipe.accumulated and "streams" not in kwargs:     # CoViAR: traced back to the GOP's I-frame
            kwargs["streams"] = {"mv": ["mv_acc"], "residual": ["residual_acc"]}
        return cls(shards, modalities, length=length, crop=recipe.size, rgb_mean=clips.rgb_mean,
                   means={"flow": clips.flow_mean}, flip=clips.flip, train_view=recipe.train_view,
                   scales=recipe.scales, max_distort=recipe.max_distort, crop_positions=recipe.crop_positions,
                   test_view=recipe.test_view, test_resize=recipe.test_resize, test_clips=recipe.test_clips,
                   color_jitter=recipe.color_jitter, **kwargs)

    # -- index --------------------------------------------------------------------------------------------
    def _index(self, split: str | None) -> list[VideoEntry]:
        entries: list[VideoEntry] = []
        mismatched: list[str] = []
        num_shards = len(self.paths[self.sources[0]])
        for k in range(num_shards):
            tables = {}
            for src in self.sources:
                with ShardReader(self.paths[src][k]) as reader:      # format and version checked
                    f = reader.file
                    if src == "mv":
                        self._mv[k] = MvShard(self.paths[src][k])
                    for mod in self.modalities:
                        if SOURCE[mod][0] == src and mod not in self.streams:
                            self.streams[mod] = (_mv_stream_infos(self._mv[k], self.stream_names[mod]) if src == "mv"
                                                 else _stream_infos(f["frames"], self.stream_names[mod],
                                                                    self.paths[src][k]))
                    if not self.classes:
                        self.classes = [c.decode() if isinstance(c, bytes) else c for c in f["classes"][()]]
                    v = f["videos"]
                    ids = [x.decode() if isinstance(x, bytes) else x for x in v["video_id"][()]]
                    tables[src] = {vid: i for i, vid in enumerate(ids)}
                    tables[src + "/offset"] = reader.offsets          # read and checked on open
                    tables[src + "/size"] = (v["height"][()], v["width"][()])
                    if src == self.sources[0]:
                        order, labels = ids, v["label"][()]
                        splits = [x.decode() if isinstance(x, bytes) else x for x in v["split"][()]]
            for i, vid in enumerate(order):
                if split is not None and splits[i] != split:
                    continue
                if self._ids is not None and vid not in self._ids:
                    continue
                if not all(vid in tables[s] for s in self.sources):
                    continue
                offsets, frames, rows, sizes = {}, {}, {}, {}
                for s in self.sources:
                    j = tables[s][vid]
                    off = tables[s + "/offset"]
                    offsets[s], frames[s], rows[s] = int(off[j]), int(off[j + 1] - off[j]), j
                    sizes[s] = (int(tables[s + "/size"][0][j]), int(tables[s + "/size"][1][j]))
                if len({frames[s] + PAIRED[s] for s in self.sources}) > 1:
                    mismatched.append(self._mismatch(k, vid, frames))
                    continue
                n = min(frames.values())
                if n < 1:
                    continue
                entries.append(VideoEntry(k, vid, int(labels[i]), splits[i], n, offsets, frames, rows, sizes))
        if mismatched:
            more = f"; and {len(mismatched) - 5} more videos" if len(mismatched) > 5 else ""
            raise ShardError(
                f"{len(mismatched)} video(s) have different frame counts in their modalities, so frame i would "
                f"not be the same instant in each: {'; '.join(mismatched[:5])}{more}. Every modality must come "
                "from the same frames: decode.fps must equal reencode.fps, and MPEG-4 files re-encoded before "
                "reencode took the decode stage's frames (ffmpeg's fps filter) must be re-encoded (`prep-cli "
                "reencode`, then `prep-cli extract-mv`)")
        return entries

    def _mismatch(self, shard: int, video_id: str, frames: Mapping[str, int]) -> str:
        """One video's disagreement, for the error: its id, and each source's count and shard file."""
        def one(s: str) -> str:
            n = f"{frames[s]} pairs, so {frames[s] + PAIRED[s]} frames" if PAIRED[s] else \
                f"{frames[s]} frames"
            return f"{s} {n} ({self.paths[s][shard]})"
        return f"video {video_id!r}: " + ", ".join(one(s) for s in self.sources)

    # -- pickling / lazy open -----------------------------------------------------------------------------
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pid = os.getpid()

    def _dataset(self, src: str, shard: int, stream: str) -> h5py.Dataset:
        if self._pid != os.getpid():          # forked after files were opened: never share HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        key = (src, shard, stream)
        ds = self._handles.get(key)
        if ds is None:
            fkey = (src, shard)
            f = self._handles.get(fkey)
            if f is None:
                f = self._handles[fkey] = ShardReader(self.paths[src][shard]).file
            ds = self._handles[key] = f["frames"][stream]
        return ds

    def close(self) -> None:
        for m in self._mv.values():
            m.close()
        for key, h in list(self._handles.items()):
            if isinstance(h, h5py.File):
                h.close()
        self._handles = {}

    # -- sampling -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([self.seed, index])
        return np.random.default_rng(int(torch.randint(0, 2 ** 62, ()).item()))

    def _stored(self, src: str, entry: VideoEntry, stream: str, lo: int, hi: int):
        """Frames ``lo:hi`` of one video's stream as stored: JPEG byte arrays or a uint8 array (for an mv shard
        of any storage, the arrays a ``coviar-uint8`` shard stores)."""
        if src == "mv":
            return self._mv[entry.shard].arrays(entry.rows[src], lo, hi, (stream,))[stream]
        a = entry.offsets[src]
        ds = self._dataset(src, entry.shard, stream)
        if h5py.check_vlen_dtype(ds.dtype) is None:
            return ds[a + lo:a + hi]
        # JPEG streams: HDF5's own read into an object array, skipping h5py's selection machinery (~20% of
        # the read time; the bytes are the same as ds[a + lo:a + hi]).
        out = np.empty(hi - lo, dtype=ds.dtype)
        space = ds.id.get_space()
        space.select_hyperslab((a + lo,), (hi - lo,))
        ds.id.read(h5py.h5s.create_simple((hi - lo,)), space, out)
        return out

    def _read(self, mod: str, entry: VideoEntry, idx: np.ndarray, view: V.View) -> list[np.ndarray]:
        """Frames ``idx`` of every stream of modality ``mod`` in ``view`` (:mod:`.views`; mirrored when the
        view is): a list (one per stream) of (T, S, S[, C]) uint8, colour JPEGs as RGB.

        Each JPEG is decoded at the smallest scale the view allows (libjpeg's DCT scaling at 1/2, 1/4, 1/8:
        :func:`views.reduction`) and its view written straight into a preallocated clip buffer, so only one
        decoded frame is alive at a time."""
        lo, hi = int(idx.min()), int(idx.max()) + 1
        size = self.crop
        src = SOURCE[mod][0]
        out = []
        for st in self.streams[mod]:
            data = self._stored(src, entry, st.name, lo, hi)
            if st.kind == "jpeg":
                h, w = entry.sizes[src]
                g = V.geometry(view, h, w)
                r = V.reduction(g) if self.reduced else 1
                buf = None
                first: dict[int, int] = {}
                for k, i in enumerate(idx):
                    j = int(i) - lo
                    if j in first:                       # looped short video: copy the decoded view
                        buf[k] = buf[first[j]]
                        continue
                    img = _decode_jpeg(data[j], st.gray, r)
                    if img.shape[:2] != (-(-h // r), -(-w // r)):
                        raise ShardError(f"video {entry.video_id!r}: a {mod} frame is {img.shape[1] * r}x"
                                         f"{img.shape[0] * r}, its shard's table says {w}x{h} "
                                         f"({self.paths[src][entry.shard]})")
                    if _BGR and not st.gray:
                        img = img[..., ::-1]             # BGR -> RGB (old OpenCV only)
                    if buf is None:
                        buf = np.empty((len(idx), size, size, *img.shape[2:]), np.uint8)
                    V.apply(img, g, r, dst=buf[k])
                    first[j] = k
                out.append(buf)
            else:
                frames = np.asarray(data)[idx - lo]
                if st.grid > 1:                          # per-cell vectors -> the dense (T, 2, H, W) maps
                    frames = dense_mv(frames, st.grid, *st.dense_hw)
                frames = _as_hwc(frames)
                g = V.geometry(view, *frames.shape[1:3])
                buf = np.empty((len(frames), size, size, *frames.shape[3:]), np.uint8)
                for k in range(len(frames)):
                    V.apply(frames[k], g, 1, dst=buf[k])
                out.append(buf)
        return out

    def draw(self, index: int) -> tuple[int, V.View]:
        """The first frame and the spatial view of item ``index``. Train mode: a random clip (of the anchored
        ones for single-frame methods), a view drawn from the train view and a mirror for half the clips
        (when ``flip``), all from the item's generator (:meth:`_rng`: the same for the same seed and index);
        test mode: the item's clip and test view."""
        v, start, k = self.items[index]
        if self.mode != "train":
            return start, self.test_view_list[k]
        entry = self.videos[v]
        rng = self._rng(index)
        starts = (C.anchored_starts(entry.num_frames, self.length, self.anchor, self.gop)
                  if self.anchor is not None else None)
        start = (starts[int(rng.integers(len(starts)))] if starts
                 else C.train_clip_start(entry.num_frames, self.length, rng))
        flip = bool(rng.random() < 0.5) and self.flip
        return start, V.train_view(self.train_view, rng, self.crop, self.scales, self.max_distort, flip,
                                   self.crop_positions)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        v = self.items[index][0]
        entry = self.videos[v]
        start, view = self.draw(index)
        idx = C.clip_indices(start, self.length, entry.num_frames)
        if self.static:
            idx = np.full_like(idx, idx[len(idx) // 2])
        sample: dict[str, torch.Tensor] = {}
        raw: dict[str, list[np.ndarray]] = {}
        jitter = self.colour_offsets(index)
        for mod in sorted(self.modalities, key=lambda m: m == "frame"):      # "frame" reuses rgb's views
            if mod == "frame":
                m = len(idx) // 2
                streams = ([s[m:m + 1] for s in raw["rgb"]] if "rgb" in raw
                           else self._read(mod, entry, idx[m:m + 1], view))
            else:
                streams = raw[mod] = self._read(mod, entry, idx, view)
            if jitter is not None and mod in ("rgb", "frame"):               # one draw for the whole clip
                streams = [C.hls_jitter(f, jitter) for f in streams]
            x = self._transform(mod, streams, view.flip)
            if self.static and mod not in ("rgb", "frame"):   # appearance: the middle frame either way
                x.fill(self._zero_motion(mod))
            sample[mod] = torch.from_numpy(x)
        sample["label"] = torch.tensor(entry.label, dtype=torch.int64)
        sample["video"] = torch.tensor(v, dtype=torch.int64)
        sample["start"] = torch.tensor(start, dtype=torch.int64)
        return sample

    def colour_offsets(self, index: int) -> tuple[float, float, float] | None:
        """The HLS offsets of item ``index`` in train mode with ``color_jitter`` (CoViAR's I-frame colour
        augmentation, :func:`clips.hls_jitter`), from its own generator; None otherwise (and at test, where
        CoViAR's code also jitters: deliberately not done)."""
        if self.mode != "train" or not self.color_jitter:
            return None
        rng = np.random.default_rng([self.seed, index, 1]) if self.seed is not None else self._rng(index)
        return C.draw_hls_jitter(rng, self.color_jitter)

    def pixels_per_unit(self, mod: str) -> float:
        """Pixels per unit of a motion modality's sample values (``flow``: 2 * bound / 255, the stored
        quantization; ``mv``: bound / 127.5, CoViAR's): a sample times this is motion in pixels."""
        if mod not in self.streams or not self.streams[mod][0].pixels:
            raise ValueError(f"{mod!r} is not a motion modality of this dataset ({list(self.streams)})")
        return self.streams[mod][0].pixels

    def _zero_motion(self, mod: str) -> float:
        """The normalized value of a motion modality when nothing moves: the stored value of zero motion
        (quantized flow 0, vector 0, residual 0, residual frame 0) minus the modality's mean."""
        zero = {"flow": float(quantize(np.zeros(1, np.float32))[0]), "mv": 128.0, "residual": 128.0,
                "resframe": 128.0 if any(st.signed for st in self.streams[mod]) else 0.0}[mod]
        return zero - self.means[mod]

    def _transform(self, mod: str, streams: list[np.ndarray], flip: bool) -> np.ndarray:
        """Normalize one modality's cropped (already mirrored) streams -> float32 (C, T, S, S) ((C, S, S) for
        frame); on a mirrored clip the x channel of flow / motion vectors is negated as well."""
        parts = [f if f.ndim == 4 else f[..., None] for f in streams]
        frames = np.concatenate(parts, axis=3) if len(parts) > 1 else parts[0]
        if flip and mod == "flow":
            frames = frames.copy()
            frames[..., 0] = C.flip_flow_x(frames[..., 0])
        elif flip and mod == "mv":
            frames = frames.copy()
            frames[..., 0] = C.flip_mv_x(frames[..., 0])
        mean = self.rgb_mean if mod in ("rgb", "frame") else self.means[mod]
        out = C.to_cthw(frames, mean)
        return out[:, 0] if mod == "frame" else out


def validation_views(recipe: RecipeConfig) -> RecipeConfig:
    """The recipe's test protocol made cheap for validation after every epoch: the centre view alone
    (:data:`views.CENTRE_VIEW`) and 3 clips (frames) spread over each video (MARS's validation draws one
    clip a video, CoViAR's three segments)."""
    return dataclasses.replace(recipe, test_view=V.CENTRE_VIEW[recipe.test_view], test_clips=3)


def pixel_views(recipe: RecipeConfig) -> RecipeConfig:
    """``recipe`` with ``window`` views in training and at test (``size`` pixels of the frame as stored, no
    resizing) and every non-overlapping test clip: for measuring motion in the frame's own pixels (D3D's
    probe, DMC-Net's cue and MotionNet's flow against TV-L1 and true flow), where a resized view would change
    the pixel scale of the motion it shows but not its values."""
    return dataclasses.replace(recipe, train_view="window", test_view="window", test_clips=0)


def preset(method: str) -> tuple[str, int]:
    """``(modalities, clip length)`` of a training recipe, e.g. ``preset("dmcnet")``."""
    if method not in PRESETS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(PRESETS)}")
    return PRESETS[method]


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one decode thread per worker (OpenCV and torch)."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _keep_opencv_fork_safe() -> None:
    """Thread pools do not survive ``fork``: a child that touches one waits forever for threads that only
    exist in the parent. OpenCV's pool (``cv2.setNumThreads``, any parallel loop): the parent drops to one
    thread just before forking, so the child inherits a pool with no workers, and restores it after.
    FFmpeg's (a PyAV frame or reformatter left in a reference cycle, freed by the child's garbage
    collector): the parent collects its cyclic garbage before forking."""
    saved: list[int] = []

    def before() -> None:
        gc.collect()
        saved.append(cv2.getNumThreads())
        cv2.setNumThreads(1)

    def after_in_parent() -> None:
        if saved:
            cv2.setNumThreads(saved.pop())

    os.register_at_fork(before=before, after_in_parent=after_in_parent)


_keep_opencv_fork_safe()
