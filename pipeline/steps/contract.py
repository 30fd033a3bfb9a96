"""The stage contract: what every stage declares, what it is given, and the one failure policy.

A stage is a :class:`Stage` value in its module beside this one, with one name everywhere: the rule file
``stages/<name>.smk``, the module ``pipeline/steps/<name>.py``, the command ``prep-cli <name with dashes>``
and the folder ``results/<name>/<dataset>/``. It declares

* what it **reads**: ``"manifest"`` (the dataset's videos), the name of an upstream stage (whose
  per-shard outputs it reads, shard K from shard K), or nothing (``None``: it makes its own input);
* what it **writes**: output kinds of :data:`pipeline.core.paths.OUTPUT_PATTERNS` per shard;
* its **parameters**: the config parts it ``uses`` (a section, or ``section.key``), the first being its
  own section, which its command-line options may override;
* its **provenance**: every output records the parameters of the stage and of everything upstream of it
  (:meth:`ShardJob.params`);
* a ``run`` function doing one unit of work: one shard (:class:`ShardJob`) for per-shard stages, the
  whole dataset (:class:`DatasetJob`) for ``make_demo`` and ``manifest``.

The command line is generated from the declaration (:mod:`pipeline.cli.stage_commands`). Per-video work
goes through :func:`guarded` and :func:`run_videos`: an :class:`InputError` (or a decoder or file-system
error) of one video is recorded in the failure report and the others go on; strict mode stops at the first;
any other exception is a bug and propagates with its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from tqdm import tqdm

from ..core import paths
from ..core.atomic import write_text_atomic
from ..core.config import Settings, section_values
from ..core.errors import InputError, ManifestError, ShardError, StageError
from ..core.manifest import Entry, Manifest, is_unsafe_relpath, num_shards, shard_entries
from ..shards import ShardReader

log = logging.getLogger("motionprep")


@dataclass(frozen=True)
class Option:
    """A stage-specific command-line option. ``key``: the key of the stage's own config section it
    overrides (type and help from the schema), or, with ``config=False``, the name of a run option
    (``job.options[key]``) with its ``type``, ``default`` and ``help`` given here."""

    flag: str
    key: str
    config: bool = True
    type: Any = None
    default: Any = None
    help: str | None = None
    is_flag: bool = False


@dataclass(frozen=True)
class Stage:
    """The declaration every stage makes (see the module docstring)."""

    name: str
    summary: str
    reads: str | None
    writes: tuple[str, ...]
    uses: tuple[str, ...]
    run: Callable[..., dict]
    #: several shards of one command at once (``fn(jobs) -> iterator of summaries``); default: in turn
    run_many: Callable[..., Iterable[dict]] | None = None
    options: tuple[Option, ...] = ()
    per_shard: bool = True
    #: the upstream shards alone are enough (no manifest needed; with one, they are checked against it)
    manifest_optional: bool = False
    #: ``prep-cli <stage> SRC DST``: process one file outside any dataset (``fn(src, dst, settings, section)``)
    single_file: Callable[..., dict] | None = None
    #: the per-shard outputs lie one folder deeper, ``<stage dir>/<value>/``, the value given by the run
    #: option of this name (extract_features: ``set``, the feature set); the workflow makes it a wildcard
    wildcard: str | None = None

    @property
    def command(self) -> str:
        return self.name.replace("_", "-")

    @property
    def section(self) -> str | None:
        return self.uses[0] if self.uses else None

    @property
    def upstream(self) -> str | None:
        """The stage whose outputs this one reads, or None (manifest or nothing)."""
        return self.reads if self.reads not in (None, "manifest") else None


#: keys that say how a stage runs, not what it computes (the outputs are the same bytes for any value), so
#: they are not recorded: a shard made with 8 workers equals one made with 1
EXECUTION_KEYS = frozenset({"workers", "threads"})


def used_params(settings: Settings, uses: Sequence[str], own: Any = None) -> dict:
    """``{section: {key: value}}`` of the config parts in ``uses`` (without :data:`EXECUTION_KEYS`);
    ``own`` (the effective dataclass of the first, after command-line overrides) replaces that section's
    values."""
    out: dict = {}
    for i, part in enumerate(uses):
        section, _, key = part.partition(".")
        values = section_values(own) if (i == 0 and own is not None) else settings.section_dict(section)
        out.setdefault(section, {})
        if key:
            out[section][key] = values[key]
        else:
            out[section].update({k: v for k, v in values.items() if k not in EXECUTION_KEYS})
    return out


def dataset_params(settings: Settings) -> dict:
    """The dataset entry as recorded by the stages that read the manifest (no manifest path)."""
    return {k: v for k, v in asdict(settings.dataset).items() if k != "manifest"}


def rule_params(settings: Settings, stage: "Stage") -> dict:
    """What a stage's outputs depend on in the configuration: the parts it ``uses`` (without
    :data:`EXECUTION_KEYS`), the dataset entry and ``videos_per_shard``. The workflow names each rule's
    config file by these (``stages/common.smk``), so editing one stage's settings reruns that stage and what
    reads its outputs, not every rule."""
    return {**used_params(settings, stage.uses), "dataset": dataset_params(settings),
            "videos_per_shard": settings.videos_per_shard}


@dataclass
class DatasetJob:
    """A stage run over a whole dataset (``make_demo``, ``manifest``)."""

    stage: Stage
    settings: Settings
    config: Any                     # the stage's own section (dataclass), command-line overrides applied
    out: Path | None                # --out as given (a folder or a file), None for the default
    options: dict = field(default_factory=dict)


@dataclass
class ShardJob:
    """One shard of one per-shard stage: everything its ``run`` needs."""

    stage: Stage
    settings: Settings
    config: Any                     # the stage's own section (dataclass), command-line overrides applied
    manifest: Manifest | None       # None only for a ``manifest_optional`` stage run on upstream shards alone
    shard: int
    input_dir: Path | None          # folder of the upstream stage's outputs (None: reads the manifest)
    out_dir: Path
    strict: bool
    root: str = ""                  # where manifest paths resolve: --root, else the manifest's root
    progress: bool = True
    options: dict = field(default_factory=dict)
    upstream_attrs: dict | None = None   # root attributes of the upstream shard, once opened
    _entries: list[Entry] | None = field(default=None, repr=False)     # this shard's, once checked

    @property
    def num_shards(self) -> int:
        if self.manifest is None:
            return int(self._upstream()["num_shards"])
        return num_shards(len(self.manifest), self.settings.videos_per_shard)

    def _upstream(self) -> dict:
        if self.upstream_attrs is None:
            raise StageError(f"{self.stage.name}: shard {self.shard}: no manifest, and the upstream shard "
                             "is not open yet")
        return self.upstream_attrs

    def entries(self) -> list[Entry]:
        """The manifest entries of this shard, in storage order. An entry whose path is absolute or leaves
        the root with ``..`` is refused (:class:`ManifestError`): :func:`read_manifest` refuses such a
        manifest already, this holds for a :class:`Manifest` built any other way too."""
        if self.manifest is None:
            raise StageError(f"{self.stage.name}: needs the dataset's manifest (--manifest)")
        if self._entries is None:
            entries = shard_entries(self.manifest, self.shard, self.settings.videos_per_shard)
            for e in entries:
                if is_unsafe_relpath(e.path):
                    raise ManifestError(f"{self.stage.name}: video {e.video_id!r} of {self.manifest.dataset} has "
                                        f"the unsafe path {e.path!r} (absolute or escaping the dataset root); "
                                        "refused, nothing was read or written")
            self._entries = entries
        return list(self._entries)

    def output(self, kind: str = "shard") -> Path:
        return self.out_dir / paths.output_name(kind, self.shard)

    def input(self, kind: str = "shard") -> Path:
        """This shard's output of kind ``kind`` of the upstream stage; a missing one names the command."""
        if self.input_dir is None:
            raise StageError(f"{self.stage.name}: reads the manifest, not an upstream stage")
        p = self.input_dir / paths.output_name(kind, self.shard)
        if not p.exists():
            raise StageError(f"{self.stage.name}: shard {self.shard}: {p} is missing; run "
                             f"`prep-cli {self.stage.upstream.replace('_', '-')}` first")
        return p

    def open_input(self, modality: str, stream: str):
        """The upstream shard as a :class:`pipeline.shards.ShardReader`, refused unless it is a
        ``modality`` shard with ``stream`` that belongs to this shard of the manifest (when there is one)."""
        path = self.input("shard")
        reader = ShardReader(path)
        try:
            attrs = reader.attrs
            if attrs.get("modality") != modality or stream not in reader.streams:
                raise ShardError(f"{self.stage.name}: {path} is not an {modality!r} shard with a {stream!r} stream "
                                 f"(modality {attrs.get('modality')!r}, streams {reader.streams})")
            if self.manifest is not None:
                self.check_upstream(attrs, path)
            self.upstream_attrs = {**attrs, "classes": reader.classes}
        except BaseException:
            reader.close()
            raise
        return reader

    def upstream_failures(self) -> list[dict]:
        """The videos that never reach this stage: the upstream shard's ``failures`` attribute once it is
        open (:meth:`open_input`; a shard carries its own report), else the upstream failure report file."""
        if self.input_dir is None:
            return []
        if self.upstream_attrs is not None and "failures" in self.upstream_attrs:
            return json.loads(self.upstream_attrs["failures"])
        return json.loads(self.input("failures").read_text())

    def params(self, upstream: Mapping | None = None) -> dict:
        """Provenance recorded in every output: for a stage that reads the manifest, its parameters, the
        dataset entry and ``videos_per_shard``; downstream, the upstream output's recorded parameters
        followed by this stage's (sections present in both are merged)."""
        own = used_params(self.settings, self.stage.uses, self.config)
        if upstream is None:
            return {**own, "dataset": dataset_params(self.settings),
                    "videos_per_shard": self.settings.videos_per_shard}
        out = json.loads(json.dumps(dict(upstream)))
        for section, values in own.items():
            out[section] = {**out.get(section, {}), **values}
        return out

    def check_upstream(self, attrs: Mapping, what: Path) -> None:
        """Refuse an upstream output written from another manifest, or for another shard."""
        want = {"manifest_sha256": self.manifest.sha256, "shard": self.shard, "num_shards": self.num_shards,
                "dataset": self.manifest.dataset}
        bad = {k: (attrs.get(k), v) for k, v in want.items() if attrs.get(k) != v}
        if bad:
            detail = ", ".join(f"{k} {got!r} (expected {exp!r})" for k, (got, exp) in bad.items())
            raise ShardError(f"{self.stage.name}: {what} does not belong to shard {self.shard} of manifest "
                             f"{self.manifest.dataset}: {detail}; rerun "
                             f"`prep-cli {self.stage.upstream.replace('_', '-')}`")

    def shard_attrs(self) -> dict:
        """The keyword arguments every :class:`pipeline.shards.ShardWriter` of this job takes: from the
        manifest, or from the upstream shard when there is none."""
        if self.manifest is None:
            a = self._upstream()
            return {"dataset": a["dataset"], "shard": int(a["shard"]), "num_shards": int(a["num_shards"]),
                    "classes": a["classes"], "manifest_sha256": a["manifest_sha256"]}
        m = self.manifest
        return {"dataset": m.dataset, "shard": self.shard, "num_shards": self.num_shards,
                "classes": m.classes, "manifest_sha256": m.sha256}


def option_defaults(stage: Stage) -> dict:
    """The run options (``config=False``) of a stage with their defaults."""
    return {o.key: (False if o.is_flag else o.default) for o in stage.options if not o.config}


def shard_job(stage: Stage, settings: Settings, shard: int, *, manifest: Manifest | None = None,
              input_dir: str | Path | None = None, out_dir: str | Path | None = None, config: Any = None,
              strict: bool | None = None, root: str | None = None, progress: bool = True,
              options: Mapping | None = None) -> ShardJob:
    """The job of one shard with the defaults filled in: upstream and output folders under
    ``<results>``, the stage's section from ``settings``, the config's strictness, the options' defaults."""
    if not stage.per_shard:
        raise StageError(f"{stage.name}: runs once per dataset, not per shard")
    if manifest is None and not stage.manifest_optional:
        raise StageError(f"{stage.name}: needs the dataset's manifest")
    if manifest is not None and not 0 <= shard < num_shards(len(manifest), settings.videos_per_shard):
        raise StageError(f"{stage.name}: shard {shard} is out of range: {manifest.dataset} has "
                         f"{num_shards(len(manifest), settings.videos_per_shard)} shards of "
                         f"{settings.videos_per_shard} videos")
    up = stage.upstream
    job = ShardJob(
        stage=stage, settings=settings, config=config if config is not None else getattr(settings, stage.section),
        manifest=manifest, shard=shard,
        input_dir=Path(input_dir) if input_dir else (settings.stage_dir(up) if up else None),
        out_dir=Path(out_dir) if out_dir else settings.stage_dir(stage.name),
        strict=settings.strict if strict is None else strict,
        root=root or (manifest.root if manifest is not None else ""), progress=progress,
        options={**option_defaults(stage), **(options or {})})
    if manifest is not None:
        job.entries()                   # an unsafe entry is refused before the stage creates anything
    return job


# ----------------------------------------------------------------------------------------------------------
# Per-video results and the failure policy


@dataclass
class VideoResult:
    """One processed video: ``frames`` for the main shard, ``side`` for other outputs of the same job
    (``{output kind: {stream: frames}}``, e.g. extract_mv's I-frames), ``fields`` per-video columns."""

    video_id: str
    label: int
    split: str
    fps: float
    height: int
    width: int
    frames: Mapping[str, Sequence[Any]]
    fields: Mapping[str, Any] = field(default_factory=dict)
    side: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(next(iter(self.frames.values()))) if self.frames else 0


@dataclass
class VideoFailure:
    """One video that a stage could not process: its id, the stage, and the error (``Type: message``)."""

    video_id: str
    stage: str
    error: str

    @classmethod
    def of(cls, video_id: str, stage: str, exc: BaseException) -> "VideoFailure":
        return cls(video_id, stage, error_text(exc))

    def record(self) -> dict:
        return {"video_id": self.video_id, "stage": self.stage, "error": self.error}


#: FFmpeg's log prefixes carry the address of the object that logged (``[in#0 @ 0x55d06fbae040]``): a
#: different text on every run. Removed, so that the same inputs give the same failure reports and shards.
_ADDRESS = re.compile(r"(\[[^\[\]@]*) @ 0x[0-9a-fA-F]+\]")


def error_text(exc: BaseException) -> str:
    """The failure report's text of an input error: ``Type: message``, on one line, without the memory
    addresses of FFmpeg's log prefixes."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return _ADDRESS.sub(r"\1]", re.sub(r"\s*[\r\n]+\s*", " ", text))


def input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this input cannot be processed": ours (:class:`InputError`, which the
    readers raise for a missing or unreadable source) and the decoder's (PyAV's ``FFmpegError``). An
    ``OSError`` is not one of them: a full disk or an unwritable output folder is not a video's fault."""
    import av
    return (InputError, av.FFmpegError)


def guarded(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn(item, ...)`` so an input error becomes a :class:`VideoFailure` naming the video and the
    stage. Any other exception (a bug) propagates. The item must have a ``video_id``; picklable (joblib)."""
    return functools.partial(_call_guarded, stage, fn)


def _call_guarded(stage: str, fn: Callable[..., Any], item: Any, *args, **kwargs):
    try:
        return fn(item, *args, **kwargs)
    except input_errors() as exc:
        return VideoFailure.of(getattr(item, "video_id", str(item)), stage, exc)


def run_videos(results: Iterable[VideoResult | VideoFailure | Any], *, stage: str, strict: bool,
               keep: Callable[[Any], int], upstream_failures: Iterable[Mapping] = (),
               total: int | None = None, progress: bool = True, name: str = "") -> dict:
    """The one failure policy. Successes go to ``keep(result)`` (which returns the frames it stored);
    failures are logged and collected after the upstream ones. Strict mode raises :class:`StageError` at
    the first failure; no success at all raises too. Returns ``{"videos", "frames", "failures"}``
    (``failures``: the list, for the caller's failure report, :func:`write_report`)."""
    failures = [dict(f) for f in upstream_failures]
    bar = tqdm(total=total, desc=f"{stage} {name}".strip(), unit="video", disable=not progress,
               dynamic_ncols=True, leave=False)
    videos = frames = 0
    try:
        for res in results:
            bar.update(1)
            if isinstance(res, VideoFailure):
                if strict:
                    raise StageError(f"{stage}: video {res.video_id}: {res.error}")
                log.warning("%s: video %s failed and is skipped: %s", stage, res.video_id, res.error)
                failures.append(res.record())
                continue
            frames += keep(res)
            videos += 1
            bar.set_postfix(frames=frames)
    finally:
        bar.close()
    if videos == 0:
        listed = "; ".join(f"{f['video_id']} ({f['stage']}): {f['error']}" for f in failures[:5])
        more = f"; and {len(failures) - 5} more (the log has each)" if len(failures) > 5 else ""
        raise StageError(f"{stage}: {name or 'shard'} has no video that could be processed "
                         f"({len(failures)} failed: {listed}{more})")
    return {"videos": videos, "frames": frames, "failures": failures}


def write_shard(writers: Mapping[str, Any], results: Iterable[VideoResult | VideoFailure], *, stage: str,
                strict: bool, total: int | None = None, upstream_failures: Iterable[Mapping] = (),
                progress: bool = True) -> dict:
    """Store ``results`` in the shard writers (``{"shard": main, <side kind>: writer, ...}``: every writer
    gets every video, the main one ``frames``, the others ``side[kind]``) and the failure report beside
    the main shard. Side outputs and the report are written before the main shard, so a finished main
    shard implies them. Nothing is left at a final path on any error."""
    main = writers["shard"]
    report = paths.failures_path_for(main.path)

    def keep(res: VideoResult) -> int:
        for kind, w in writers.items():
            frames = res.frames if kind == "shard" else res.side[kind]
            w.add_video(res.video_id, res.label, res.split, res.fps, res.height, res.width, frames, **res.fields)
        return res.num_frames

    replacing = False                   # True once this call started replacing the old outputs
    try:
        s = run_videos(results, stage=stage, strict=strict, keep=keep, upstream_failures=upstream_failures, total=total, progress=progress, name=main.path.name)
        for f in s["failures"]:
            for w in writers.values():
                w.add_failure(f["video_id"], f["stage"], f["error"])
        # the side outputs and the failure report are replaced now: an older main shard must not be left
        # beside them. The main shard is renamed last, so a finished main shard implies all of them.
        replacing = True
        main.path.unlink(missing_ok=True)
        for kind, w in writers.items():
            if kind != "shard":
                w.close()
        write_report(report, s["failures"])
        main.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        if not main.committed:          # side outputs already renamed belong to a main shard that failed
            for w in writers.values():
                if w.committed:
                    w.path.unlink(missing_ok=True)
            if replacing:               # the report is this call's (an earlier run's stays with its shard)
                report.unlink(missing_ok=True)
        raise
    return {"shard": str(main.path), "videos": s["videos"], "frames": s["frames"], "failures": len(s["failures"])}


def write_report(path: Path, failures: Sequence[Mapping]) -> None:
    """The failure report: a JSON list of ``{video_id, stage, error}``, written atomically."""
    write_text_atomic(path, json.dumps(list(failures), indent=1, ensure_ascii=False) + "\n")


__all__ = ["Stage", "Option", "ShardJob", "DatasetJob", "shard_job", "option_defaults", "VideoResult", "VideoFailure",
           "StageError", "InputError", "guarded", "run_videos", "write_shard", "write_report", "input_errors", "error_text",
           "used_params", "dataset_params"]
