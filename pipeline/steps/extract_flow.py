"""Stage ``extract_flow``: RGB shard -> TV-L1 flow shard (``prep-cli extract-flow``).

For every video of ``results/decode/<dataset>/shard-K.h5`` (same order), the N frames are converted to
grayscale and the N-1 flows ``frame i -> frame i+1`` are computed, clipped to ``±bound``, quantized to
uint8 (round half up, zero flow = 128) and stored as two grayscale JPEG streams ``x`` and ``y`` in
``results/extract_flow/<dataset>/shard-K.h5`` (modality "flow"). Videos that failed upstream stay in the
failure report (with the stage that refused them); a video with fewer than two frames, or with frames
smaller than 3x3, is recorded there too.

Backends: ``opencv`` spreads videos over worker processes (joblib, one OpenCV thread each); ``torch``
batches frame pairs (across videos of the same size) on one device (:mod:`pipeline.flow.torch_tvl1`). With ``--device
cuda`` and several GPUs, the shards of one command are split over the GPUs, one worker process each; a
single shard (a Snakemake job) runs on ``cuda:(K mod number of GPUs)``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..core.config import ExtractFlowConfig, key_of
from ..core.errors import InputError, StageError
from ..core.workers import in_worker
from .contract import Option, ShardJob, Stage, VideoFailure, VideoResult, guarded, input_errors, write_shard
from ..flow import DeviceError, quantization_attrs, quantize, resolve_device, tvl1_batch
from ..flow.params import PARAM_NAMES, tvl1_params_of
from ..media import jpeg
from ..shards import ShardReader, ShardWriter, Stream

log = logging.getLogger("motionprep")
NAME = "extract_flow"


def flow_streams(cfg: ExtractFlowConfig) -> list[Stream]:
    attrs = quantization_attrs(cfg.bound, cfg.jpeg_quality)
    return [Stream("x", kind="jpeg", color="gray", attrs={**attrs, "component": "x"}),
            Stream("y", kind="jpeg", color="gray", attrs={**attrs, "component": "y"})]


def gray_frames(reader: ShardReader, video: int) -> np.ndarray:
    """Frames of one video of an RGB shard as grayscale: (N, H, W) uint8 (ITU-R 601 luma, like cv2)."""
    rgb = reader.decode(video, "rgb")
    if len(rgb) == 0:
        return np.zeros((0, 0, 0), np.uint8)
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])


def encode_flows(flows: np.ndarray, bound: float, quality: int) -> dict[str, list[bytes]]:
    """(n, H, W, 2) float32 flows -> {"x": n JPEGs, "y": n JPEGs} of the quantized components."""
    q = quantize(flows, bound)
    return {"x": [jpeg.encode(np.ascontiguousarray(f[..., 0]), quality) for f in q],
            "y": [jpeg.encode(np.ascontiguousarray(f[..., 1]), quality) for f in q]}


@dataclass(frozen=True)
class FlowItem:
    """One work item: a video of the RGB shard (``video_id`` for the failure report)."""

    video_id: str
    index: int
    label: int
    split: str
    fps: float
    height: int
    width: int


def result(item: FlowItem, flows: np.ndarray, cfg: ExtractFlowConfig) -> VideoResult:
    return VideoResult(item.video_id, item.label, item.split, item.fps, item.height, item.width,
                       encode_flows(flows, cfg.bound, cfg.jpeg_quality))


#: the smallest frame side TV-L1 is computed for (the torch port's limit, held for both backends, so that
#: a shard has the same videos whichever computed it)
MIN_SIDE = 3


def check_frames(item: FlowItem, frames: np.ndarray) -> None:
    """An input error (recorded with the video and the stage, the others go on) for a video without a frame
    pair, with frames narrower or lower than :data:`MIN_SIDE`, or whose frames do not have the size its RGB
    shard records."""
    if len(frames) < 2:
        raise InputError(f"{item.video_id} has {len(frames)} frame(s); flow needs at least 2 (one pair)")
    if frames.shape[1:] != (item.height, item.width):
        raise InputError(f"{item.video_id}: frames are {frames.shape[2]}x{frames.shape[1]}, "
                         f"the RGB shard records {item.width}x{item.height}")
    if min(frames.shape[1:]) < MIN_SIDE:
        raise InputError(f"{item.video_id}: frames of {frames.shape[2]}x{frames.shape[1]} are too small for "
                         f"TV-L1 (at least {MIN_SIDE}x{MIN_SIDE}; decode.short_side or decode.size sets the size)")


_READERS: dict[str, ShardReader] = {}


def _reader(path: str) -> ShardReader:
    """A reader kept open per worker process (keyed by file identity, so a rewritten shard is reopened)."""
    st = os.stat(path)
    key = f"{path}:{st.st_ino}:{st.st_mtime_ns}"
    if key not in _READERS:
        for old in _READERS.values():
            old.close()
        _READERS.clear()
        _READERS[key] = ShardReader(path)
    return _READERS[key]


def opencv_video(item: FlowItem, rgb_path: str, cfg: ExtractFlowConfig) -> VideoResult:
    """All flows of one video with OpenCV (runs in a worker process, one OpenCV thread)."""
    cv2.setNumThreads(1)
    frames = gray_frames(_reader(rgb_path), item.index)
    check_frames(item, frames)
    flows = tvl1_batch(frames[:-1], frames[1:], backend="opencv", **tvl1_params_of(cfg))
    return result(item, flows, cfg)


def video_items(reader: ShardReader) -> list[FlowItem]:
    t = reader.table()
    return [FlowItem(str(t["video_id"][i]), i, int(t["label"][i]), str(t["split"][i]), float(t["fps"][i]),
                     int(t["height"][i]), int(t["width"][i])) for i in range(len(reader))]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def _opencv_results(items: Sequence[FlowItem], rgb_path: str, cfg: ExtractFlowConfig) -> Iterator:
    workers = cfg.workers or default_workers()
    fn = guarded(NAME, opencv_video)
    if workers > 1 and len(items) > 1:
        import joblib
        return joblib.Parallel(n_jobs=min(workers, len(items)), return_as="generator")(
            joblib.delayed(in_worker(fn))(it, rgb_path, cfg) for it in items)
    return (fn(it, rgb_path, cfg) for it in items)


class _TorchBatches:
    """Flows of a shard's videos with the torch backend, in video order. Frame pairs of consecutive
    videos of one size are solved in batches of ``cfg.batch_size``; two threads decode the next videos'
    JPEGs and encode finished flows (OpenCV releases the GIL) while the caller's thread feeds the device.
    A failing batch raises :class:`StageError` naming its videos and the device."""

    def __init__(self, reader: ShardReader, cfg: ExtractFlowConfig, device: str, compile: bool | None):
        self.reader, self.cfg, self.device, self.compile = reader, cfg, device, compile
        self.pending: deque = deque()   # [item, flows | failure, pairs still missing], in video order
        self.buf: list = []             # (slot, pair index, prev, next) waiting for the device
        self.out: deque = deque()       # VideoFailure or Future of the encoded result, in video order
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="flow-io")

    def load(self, item: FlowItem) -> np.ndarray:
        frames = gray_frames(self.reader, item.index)
        check_frames(item, frames)
        return frames

    def flush(self) -> None:
        """Solve the buffered pairs and put each flow into its video's slot."""
        if not self.buf:
            return
        prev = np.stack([b[2] for b in self.buf])
        nxt = np.stack([b[3] for b in self.buf])
        import torch
        try:
            flows = tvl1_batch(prev, nxt, backend="torch", device=self.device, batch_size=len(self.buf),
                               compile=self.compile, **tvl1_params_of(self.cfg))
        except torch.OutOfMemoryError as exc:       # anything else propagates with its traceback
            names = sorted({b[0][0].video_id for b in self.buf})
            raise StageError(f"{NAME}: torch TV-L1 failed on {self.device} for a batch of {len(self.buf)} "
                             f"pairs from video(s) {names[:5]}: {type(exc).__name__}: {exc} (try a smaller "
                             "--batch-size)") from exc
        for (slot, i, _, _), f in zip(self.buf, flows):
            slot[1][i] = f
            slot[2] -= 1
        self.buf.clear()

    def ready(self, final: bool = False) -> Iterator[VideoResult | VideoFailure]:
        """Hand finished videos to the encoder threads; yield the encoded ones, in order."""
        while self.pending and (isinstance(self.pending[0][1], VideoFailure) or self.pending[0][2] == 0):
            item, data, _ = self.pending.popleft()
            self.out.append(data if isinstance(data, VideoFailure)
                            else self.pool.submit(guarded(NAME, result), item, data, self.cfg))
        while self.out and (final or isinstance(self.out[0], VideoFailure) or self.out[0].done()):
            res = self.out.popleft()
            yield res if isinstance(res, VideoFailure) else res.result()

    def add(self, item: FlowItem, frames: np.ndarray) -> Iterator[VideoResult | VideoFailure]:
        """Queue one video's pairs, solving every full batch."""
        n, h, w = frames.shape
        slot = [item, np.empty((n - 1, h, w, 2), np.float32), n - 1]
        self.pending.append(slot)
        for i in range(n - 1):
            if self.buf and self.buf[0][2].shape != (h, w):
                self.flush()
            self.buf.append((slot, i, frames[i], frames[i + 1]))
            if len(self.buf) >= self.cfg.batch_size:
                self.flush()
                yield from self.ready()

    def __call__(self, items: Sequence[FlowItem]) -> Iterator[VideoResult | VideoFailure]:
        loads: deque = deque()
        todo = iter(items)

        def top_up() -> None:               # three videos decoding ahead
            while len(loads) < 3 and (item := next(todo, None)) is not None:
                loads.append((item, self.pool.submit(self.load, item)))

        try:
            top_up()
            while loads:
                item, fut = loads.popleft()
                top_up()
                try:
                    frames = fut.result()
                except input_errors() as exc:       # one unreadable video is recorded, the others go on
                    self.pending.append([item, VideoFailure.of(item.video_id, NAME, exc), 0])
                    yield from self.ready()
                    continue
                yield from self.add(item, frames)
            self.flush()
            yield from self.ready(final=True)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def torch_results(reader: ShardReader, items: Sequence[FlowItem], cfg: ExtractFlowConfig, device: str,
                  compile: bool | None = None) -> Iterator[VideoResult | VideoFailure]:
    """Results of the torch backend in video order (see :class:`_TorchBatches`)."""
    return _TorchBatches(reader, cfg, device, compile)(items)


def _torch_device(job: ShardJob, cfg: ExtractFlowConfig) -> tuple[str, str]:
    """(device for torch, description for the log) of this shard; CUDA asked for but absent is refused."""
    device = cfg.device
    if cfg.backend == "torch" and device == "cuda":
        import torch
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n > 1:                       # one shard per job (Snakemake): spread shards over the GPUs
            device = f"cuda:{job.shard % n}"
    try:
        dev = resolve_device(device)
    except DeviceError as exc:
        raise StageError(f"{NAME}: shard {job.shard}: {exc}") from None
    text = str(dev)
    if dev.type == "cuda":
        import torch
        text += f" ({torch.cuda.get_device_name(dev)})"
    return str(dev), text


def run(job: ShardJob) -> dict:
    """Compute the flow shard of one RGB shard; returns write_shard's summary plus the device used."""
    cfg: ExtractFlowConfig = job.config
    compile_ = job.options.get("compile")
    reader = job.open_input("rgb", "rgb")
    try:
        items = video_items(reader)
        params = job.params(reader.params)
        if cfg.backend == "torch":
            device, text = _torch_device(job, cfg)
            params[NAME]["torch_compile"] = device.startswith("cuda") if compile_ is None else bool(compile_)
            if device == "cpu" and cfg.workers:
                import torch
                torch.set_num_threads(cfg.workers)
            results = torch_results(reader, items, cfg, device, compile_)
        else:
            text = "cpu (OpenCV)"
            results = _opencv_results(items, str(reader.path), cfg)
        log.info("%s: %s -> %s on %s", NAME, reader.path, job.output(), text)
        writer = ShardWriter(job.output(), modality="flow", encoding="jpeg", params=params,
                             streams=flow_streams(cfg), **job.shard_attrs())
        summary = write_shard({"shard": writer}, results, stage=NAME, strict=job.strict, total=len(items),
                              upstream_failures=job.upstream_failures(), progress=job.progress)
    finally:
        reader.close()
    summary["message"] = f"on {text} ({cfg.backend} backend)"
    return summary


def split_shards(shards: Sequence[int], n_devices: int) -> list[list[int]]:
    """Round-robin assignment of shards to devices: device d gets shards[d::n_devices]."""
    n = max(1, n_devices)
    return [list(shards[d::n]) for d in range(n) if shards[d::n]]


def _gpu_worker(device: str, jobs: list[ShardJob]) -> list[dict]:
    for job in jobs:
        job.config = dataclasses.replace(job.config, device=device)
        job.progress = False
    return [run(job) for job in jobs]


def run_many(jobs: Sequence[ShardJob]) -> Iterator[dict]:
    """Several shards: on several GPUs (torch, ``cuda`` without index) one process per GPU, else in turn."""
    cfg = jobs[0].config if jobs else None
    n_gpu = 0
    if cfg is not None and cfg.backend == "torch" and cfg.device == "cuda" and len(jobs) > 1:
        import torch
        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpu > 1:
        import multiprocessing as mp
        parts = split_shards(list(range(len(jobs))), n_gpu)
        with mp.get_context("spawn").Pool(len(parts)) as pool:
            asyncs = [pool.apply_async(in_worker(_gpu_worker), (f"cuda:{d}", [jobs[i] for i in part]))
                      for d, part in enumerate(parts)]
            for a in asyncs:
                yield from a.get()
        return
    for job in jobs:
        yield run(job)


_CONFIG_OPTIONS = ("backend", "device", "batch_size", "workers", *PARAM_NAMES, "bound", "jpeg_quality")

STAGE = Stage(
    name=NAME,
    summary="TV-L1 optical flow of the RGB shards, quantized to x/y JPEG flow shards (one shard, or all).",
    reads="decode", writes=("shard", "failures"), uses=(NAME,), run=run, run_many=run_many,
    manifest_optional=True,
    options=(*(Option("--" + key_of(k).replace("_", "-"), k) for k in _CONFIG_OPTIONS),
             Option("--compile/--no-compile", "compile", config=False, default=None,
                    help="torch backend: fuse the inner iteration with torch.compile (default: on for CUDA, "
                         "off on the CPU).")),
)

__all__ = ["STAGE", "run", "run_many", "split_shards", "opencv_video", "gray_frames", "encode_flows",
           "flow_streams", "video_items", "FlowItem", "check_frames", "result", "torch_results", "MIN_SIDE"]
