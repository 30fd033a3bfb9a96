"""Stage ``extract_flow``: RGB shard -> TV-L1 flow shard (``prep-cli extract-flow``).

For every video of ``results/decode/<dataset>/shard-K.h5`` (same order), the N frames are converted to
grayscale and the N-1 flows ``frame i -> frame i+1`` are computed, clipped to ``±bound``, quantized to
uint8 (round half up, zero flow = 128) and stored as two grayscale JPEG streams ``x`` and ``y`` in
``results/extract_flow/<dataset>/shard-K.h5`` (modality "flow"). Videos that failed upstream stay in the
failure report; a video with fewer than two frames is recorded there too.

Backends: ``opencv`` spreads videos over worker processes (joblib, one OpenCV thread each); ``torch``
batches frame pairs (across videos of the same size) on one device. With ``--device cuda`` and several
GPUs, the shards are split over the GPUs, one worker process each.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import click
import cv2
import numpy as np

from . import jpeg
from .cli_common import stage_context, stage_options
from .config import ConfigError, FlowConfig, validate
from .flow import quantization_attrs, quantize, tvl1_batch
from .shards import ShardError, ShardReader, ShardWriter, Stream, shard_name
from .stage import StageError, VideoFailure, VideoResult, guarded, write_shard

STAGE = "extract_flow"
log = logging.getLogger("motionprep")


def flow_section(cfg: FlowConfig) -> dict:
    """The stage parameters as recorded in the shard (YAML key names, ``lambda`` not ``lambda_``)."""
    return {("lambda" if k == "lambda_" else k): v for k, v in dataclasses.asdict(cfg).items()}


def flow_streams(cfg: FlowConfig) -> list[Stream]:
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
class _Video:
    """One work item: a video of the RGB shard (``video_id`` for the failure report)."""

    video_id: str
    index: int
    label: int
    split: str
    fps: float
    height: int
    width: int


def _result(item: _Video, flows: np.ndarray, cfg: FlowConfig) -> VideoResult:
    return VideoResult(item.video_id, item.label, item.split, item.fps, item.height, item.width,
                       encode_flows(flows, cfg.bound, cfg.jpeg_quality))


def _check_frames(item: _Video, frames: np.ndarray) -> None:
    if len(frames) < 2:
        raise StageError(f"{STAGE}: video {item.video_id} has {len(frames)} frame(s); flow needs at least 2")
    if frames.shape[1:] != (item.height, item.width):
        raise StageError(f"{STAGE}: video {item.video_id}: frames are {frames.shape[2]}x{frames.shape[1]}, "
                         f"the RGB shard records {item.width}x{item.height}")


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


def opencv_video(item: _Video, rgb_path: str, cfg: FlowConfig) -> VideoResult:
    """All flows of one video with OpenCV (runs in a worker process, one OpenCV thread)."""
    cv2.setNumThreads(1)
    frames = gray_frames(_reader(rgb_path), item.index)
    _check_frames(item, frames)
    flows = tvl1_batch(frames[:-1], frames[1:], backend="opencv", **cfg.tvl1_params())
    return _result(item, flows, cfg)


def torch_results(reader: ShardReader, items: Sequence[_Video], cfg: FlowConfig, device: str,
                  compile: bool | None = None) -> Iterator[VideoResult | VideoFailure]:
    """Results in video order; frame pairs of consecutive videos of one size are solved in batches of
    ``cfg.batch_size``. A failing batch raises :class:`StageError` naming its videos and the device."""
    pending: deque = deque()   # [item, flows | failure, pairs still missing]
    buf: list = []             # (slot, pair index, prev, next)

    def flush() -> None:
        if not buf:
            return
        prev = np.stack([b[2] for b in buf])
        nxt = np.stack([b[3] for b in buf])
        try:
            flows = tvl1_batch(prev, nxt, backend="torch", device=device, batch_size=len(buf), compile=compile,
                               **cfg.tvl1_params())
        except Exception as exc:
            names = sorted({b[0][0].video_id for b in buf})
            raise StageError(f"{STAGE}: torch TV-L1 failed on {device} for a batch of {len(buf)} pairs from "
                             f"video(s) {names[:5]}: {type(exc).__name__}: {exc} (try a smaller --batch-size)"
                             ) from exc
        for (slot, i, _, _), f in zip(buf, flows):
            slot[1][i] = f
            slot[2] -= 1
        buf.clear()

    # Host work overlaps the solver: two threads decode the next videos' JPEGs and encode finished flows
    # (OpenCV releases the GIL), while this thread feeds the device.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="flow-io")
    out: deque = deque()       # VideoFailure or Future of a VideoResult | VideoFailure, in video order

    def ready(final: bool = False) -> Iterator[VideoResult | VideoFailure]:
        while pending and (isinstance(pending[0][1], VideoFailure) or pending[0][2] == 0):
            item, data, _ = pending.popleft()
            out.append(data if isinstance(data, VideoFailure) else pool.submit(guarded(STAGE, _result), item, data, cfg))
        while out and (final or isinstance(out[0], VideoFailure) or out[0].done()):
            res = out.popleft()
            yield res if isinstance(res, VideoFailure) else res.result()

    def load(item: _Video) -> np.ndarray:
        frames = gray_frames(reader, item.index)
        _check_frames(item, frames)
        return frames

    loads: deque = deque()
    todo = iter(items)

    def top_up() -> None:
        while len(loads) < 3:
            item = next(todo, None)
            if item is None:
                return
            loads.append((item, pool.submit(load, item)))

    try:
        top_up()
        while loads:
            item, fut = loads.popleft()
            top_up()
            try:
                frames = fut.result()
            except Exception as exc:  # one unreadable video is recorded, the others go on
                pending.append([item, VideoFailure(item.video_id, STAGE, f"{type(exc).__name__}: {exc}"), 0])
                yield from ready()
                continue
            n, h, w = frames.shape
            slot = [item, np.empty((n - 1, h, w, 2), np.float32), n - 1]
            pending.append(slot)
            for i in range(n - 1):
                if buf and buf[0][2].shape != (h, w):
                    flush()
                buf.append((slot, i, frames[i], frames[i + 1]))
                if len(buf) >= cfg.batch_size:
                    flush()
                    yield from ready()
        flush()
        yield from ready(final=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def video_items(reader: ShardReader) -> list[_Video]:
    t = reader.table()
    return [_Video(str(t["video_id"][i]), i, int(t["label"][i]), str(t["split"][i]), float(t["fps"][i]),
                   int(t["height"][i]), int(t["width"][i])) for i in range(len(reader))]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def run_extract_flow(rgb_path: str | Path, out_path: str | Path, cfg: FlowConfig, *, strict: bool = False,
                     progress: bool = True, extra_params: dict | None = None, compile: bool | None = None) -> dict:
    """Compute the flow shard ``out_path`` of the RGB shard ``rgb_path``; returns write_shard's summary
    plus the device used. ``compile``: torch.compile for the torch backend (default: on CUDA only)."""
    rgb_path, out_path = Path(rgb_path), Path(out_path)
    if not rgb_path.exists():
        raise ShardError(f"{STAGE}: RGB shard {rgb_path} does not exist (run the decode stage first)")
    reader = ShardReader(rgb_path)
    try:
        attrs = reader.attrs
        if attrs.get("modality") != "rgb" or "rgb" not in reader.streams:
            raise ShardError(f"{STAGE}: {rgb_path} is not an RGB shard (modality {attrs.get('modality')!r}, "
                             f"streams {reader.streams})")
        items = video_items(reader)
        section = flow_section(cfg)
        if cfg.backend == "torch":
            section["torch_compile"] = (cfg.device.startswith("cuda") if compile is None else bool(compile))
        params = {**reader.params, **(extra_params or {}), STAGE: section}
        upstream = reader.failures
        if cfg.backend == "opencv":
            device = "cpu (OpenCV)"
            workers = cfg.workers or default_workers()
            fn = guarded(STAGE, opencv_video)
            if workers > 1 and len(items) > 1:
                import joblib
                results = joblib.Parallel(n_jobs=min(workers, len(items)), return_as="generator")(
                    joblib.delayed(fn)(it, str(rgb_path), cfg) for it in items)
            else:
                results = (fn(it, str(rgb_path), cfg) for it in items)
        elif cfg.backend == "torch":
            from .flow import resolve_device
            try:
                dev = resolve_device(cfg.device)
            except (RuntimeError, ValueError) as exc:
                raise StageError(f"{STAGE}: shard {rgb_path.name}: {exc}") from None
            device = str(dev)
            if dev.type == "cuda":
                import torch
                device += f" ({torch.cuda.get_device_name(dev)})"
            elif cfg.workers:
                import torch
                torch.set_num_threads(cfg.workers)
            results = torch_results(reader, items, cfg, str(dev), compile)
        else:
            raise ConfigError(f"{STAGE}: unknown backend {cfg.backend!r}; allowed: ['opencv', 'torch']")
        log.info("%s: %s -> %s on %s", STAGE, rgb_path, out_path, device)
        writer = ShardWriter(out_path, dataset=attrs["dataset"], modality="flow", encoding="jpeg",
                             shard=int(attrs["shard"]), num_shards=int(attrs["num_shards"]), classes=reader.classes,
                             manifest_sha256=attrs["manifest_sha256"], params=params, streams=flow_streams(cfg))
        summary = write_shard(writer, results, stage=STAGE, strict=strict, total=len(items),
                              upstream_failures=upstream, progress=progress)
    finally:
        reader.close()
    summary["device"] = device
    return summary


def split_shards(shards: Sequence[int], n_devices: int) -> list[list[int]]:
    """Round-robin assignment of shards to devices: device d gets shards[d::n_devices]."""
    n = max(1, n_devices)
    return [list(shards[d::n]) for d in range(n) if shards[d::n]]


def _gpu_worker(device: str, jobs: list[tuple[str, str]], cfg: FlowConfig, strict: bool,
                extra: dict, compile: bool | None) -> list[dict]:
    cfg = dataclasses.replace(cfg, device=device)
    return [run_extract_flow(src, dst, cfg, strict=strict, progress=False, extra_params=extra, compile=compile)
            for src, dst in jobs]


def run_shards(jobs: Sequence[tuple[str, str]], cfg: FlowConfig, *, strict: bool, progress: bool,
               extra_params: dict | None = None, compile: bool | None = None) -> Iterator[dict]:
    """Run (rgb shard, flow shard) jobs; on several GPUs (torch, ``cuda`` without index) one process per GPU."""
    n_gpu = 0
    if cfg.backend == "torch" and cfg.device == "cuda" and len(jobs) > 1:
        import torch
        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpu > 1:
        import multiprocessing as mp
        idx = split_shards(list(range(len(jobs))), n_gpu)
        ctx = mp.get_context("spawn")
        with ctx.Pool(len(idx)) as pool:
            asyncs = [pool.apply_async(_gpu_worker, (f"cuda:{d}", [jobs[i] for i in part], cfg, strict,
                                                     extra_params or {}, compile)) for d, part in enumerate(idx)]
            for a in asyncs:
                yield from a.get()
        return
    for src, dst in jobs:
        yield run_extract_flow(src, dst, job_config(cfg, src), strict=strict, progress=progress,
                               extra_params=extra_params, compile=compile)


def job_config(cfg: FlowConfig, rgb_path: str) -> FlowConfig:
    """One shard on ``cuda`` with several GPUs visible (a Snakemake job): shard K runs on cuda:(K mod GPUs)."""
    if cfg.backend != "torch" or cfg.device != "cuda":
        return cfg
    import torch
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n <= 1:
        return cfg
    try:
        k = int(Path(rgb_path).name.split("-")[1].split(".")[0])
    except (IndexError, ValueError):
        return cfg
    return dataclasses.replace(cfg, device=f"cuda:{k % n}")


_PARAM_OPTIONS = [
    ("tau", float, 0.25), ("lambda_", float, 0.15), ("theta", float, 0.3), ("nscales", int, 5),
    ("warps", int, 5), ("epsilon", float, 0.01), ("inner_iterations", int, 30), ("outer_iterations", int, 10),
    ("scale_step", float, 0.8), ("gamma", float, 0.0), ("median_filtering", int, 5),
]


def _param_options(f):
    for name, typ, default in reversed(_PARAM_OPTIONS):
        flag = "--lambda" if name == "lambda_" else "--" + name.replace("_", "-")
        f = click.option(flag, name, type=typ, default=None,
                         help=f"TV-L1 {name.rstrip('_')} (default: config; OpenCV's default {default}).")(f)
    return f


def override_config(cfg: FlowConfig, raw: dict, **values) -> FlowConfig:
    """``cfg`` with the given (non-None) values, validated against the config schema."""
    given = {k: v for k, v in values.items() if v is not None}
    new = dataclasses.replace(cfg, **given)
    merged = dict(raw)
    merged[STAGE] = flow_section(new)
    validate(merged)
    return new


@click.command("extract-flow")
@stage_options
@click.option("--rgb-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the RGB shards (default: <results>/decode/<dataset>).")
@click.option("--backend", type=click.Choice(["opencv", "torch"]), default=None,
              help="opencv (cv2.optflow.DualTVL1OpticalFlow) or torch (batched PyTorch TV-L1). Default: config.")
@click.option("--device", default=None, help="cpu | cuda | cuda:N for the torch backend (default: config).")
@click.option("--batch-size", type=int, default=None, help="Frame pairs per torch batch (default: config).")
@click.option("--workers", type=int, default=None,
              help="opencv: worker processes; torch on CPU: threads (0 = all granted cores). Default: config.")
@_param_options
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch backend: fuse the inner iteration with torch.compile (default: on for CUDA, off on CPU).")
@click.option("--bound", type=float, default=None, help="Clip flow to ±bound px before quantizing (default 20).")
@click.option("--jpeg-quality", type=int, default=None, help="JPEG quality of the flow images (default 95).")
def extract_flow_cmd(config_path, dataset, manifest_path, shard, out_dir, strict, progress, rgb_dir, backend,
                     device, batch_size, workers, compile_, bound, jpeg_quality, **tvl1) -> None:
    """TV-L1 optical flow of the RGB shards, quantized to x/y JPEG flow shards (one shard, or all)."""
    ctx = stage_context(STAGE, config_path, dataset, manifest_path, shard, out_dir, strict, progress)
    s = ctx.settings
    cfg = override_config(s.extract_flow, dict(s.raw), backend=backend, device=device, batch_size=batch_size,
                          workers=workers, bound=bound, jpeg_quality=jpeg_quality, **tvl1)
    src_dir = Path(rgb_dir) if rgb_dir else s.stage_dir("decode")
    jobs = [(str(src_dir / shard_name(k)), str(ctx.out_dir / shard_name(k))) for k in ctx.shards]
    for summary in run_shards(jobs, cfg, strict=ctx.strict, progress=ctx.progress, compile=compile_):
        click.echo(f"{STAGE}: {summary['shard']}: {summary['videos']} videos, {summary['frames']} flows, "
                   f"{summary['failures']} failed, on {summary['device']} ({cfg.backend} backend)")


commands = [extract_flow_cmd]

__all__ = ["run_extract_flow", "run_shards", "split_shards", "torch_results", "opencv_video", "gray_frames",
           "encode_flows", "flow_streams", "flow_section", "override_config", "STAGE"]
