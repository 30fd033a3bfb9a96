"""The canonical manifest every stage reads, its validation and the deterministic shard assignment.

A manifest is a UTF-8 TSV file with ``#`` header lines for the dataset-level facts::

    # motionprep manifest 1
    # dataset: ucf101
    # format: ucf101
    # kind: video                      (video: one file per entry; frames: one folder of JPEGs per entry)
    # root: /data/UCF101/UCF-101       (every path below is relative to it)
    # classes: ["ApplyEyeMakeup", ...] (JSON list; label_index is the position in it)
    video_id  path  label  label_index  split

``label`` is empty and ``label_index`` is -1 for unlabeled entries; ``split`` is train, test, val or unused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .atomic import write_text_atomic
from .errors import ManifestError

MANIFEST_VERSION = 1
COLUMNS = ("video_id", "path", "label", "label_index", "split")
SPLITS = ("train", "test", "val", "unused")


@dataclass(frozen=True)
class Entry:
    video_id: str
    path: str           # relative to the manifest root, POSIX separators
    label: str          # "" when unlabeled
    label_index: int    # -1 when unlabeled
    split: str


@dataclass(frozen=True)
class Manifest:
    dataset: str
    format: str
    root: str
    classes: tuple[str, ...]
    entries: tuple[Entry, ...]
    kind: str = "video"
    sha256: str = field(default="", compare=False)

    def __len__(self) -> int:
        return len(self.entries)

    def resolve(self, entry: Entry, root: str | Path | None = None) -> Path:
        """Absolute path of an entry's video file (or frame folder)."""
        return Path(root or self.root) / entry.path

    def to_text(self) -> str:
        head = [f"# motionprep manifest {MANIFEST_VERSION}", f"# dataset: {self.dataset}",
                f"# format: {self.format}", f"# kind: {self.kind}", f"# root: {self.root}",
                "# classes: " + json.dumps(list(self.classes), ensure_ascii=False), "\t".join(COLUMNS)]
        rows = ["\t".join((e.video_id, e.path, e.label, str(e.label_index), e.split)) for e in self.entries]
        return "\n".join(head + rows) + "\n"

    def write(self, path: str | Path) -> None:
        """Write atomically (temporary name, then rename)."""
        write_text_atomic(path, self.to_text())


def make_manifest(dataset: str, fmt: str, root: str | Path, classes: Sequence[str],
                  rows: Iterable[tuple[str, str, str | None, str]], kind: str = "video") -> Manifest:
    """Build a manifest from ``(video_id, relative path, label or None, split)`` rows.

    Rows are sorted by video id; label indices follow the order of ``classes``. Raises
    :class:`ManifestError` for duplicate ids, unknown labels and unsafe paths.
    """
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise ManifestError(f"{dataset}: duplicate class names in the class list")
    entries = []
    for vid, rel, label, split in rows:
        if label is not None and label not in index:
            raise ManifestError(f"{dataset}: video {vid!r} has unknown label {label!r}")
        entries.append(Entry(vid, rel, label or "", index[label] if label is not None else -1, split))
    entries.sort(key=lambda e: e.video_id)
    m = Manifest(dataset, fmt, str(root), tuple(classes), tuple(entries), kind)
    check_entries(m)
    return m


def is_unsafe_relpath(path: str) -> bool:
    """True for a path that must not be joined to a dataset root: empty, absolute (``/x``, ``\\x``, ``C:x``)
    or with a ``..`` component (``/`` and ``\\`` both count as separators)."""
    parts = [x for x in path.replace("\\", "/").split("/") if x not in ("", ".")]
    return not parts or path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":") or ".." in parts


def check_entries(m: Manifest, origins: Sequence[str] | None = None) -> None:
    """Refuse duplicate ids (naming every entry of each), unsafe paths (absolute, or escaping the root with
    ``..``), bad labels/splits. ``origins``: where each entry comes from (``file:line``), for the messages."""
    def at(i: int) -> str:
        return f"{origins[i]} ({m.entries[i].path})" if origins else repr(m.entries[i].path)

    first: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for i, e in enumerate(m.entries):
        where = f"{origins[i]}: video" if origins else f"{m.dataset}: video"
        if e.video_id in first:
            dups.setdefault(e.video_id, [first[e.video_id]]).append(i)
        first.setdefault(e.video_id, i)
        if is_unsafe_relpath(e.path):
            raise ManifestError(f"{where} {e.video_id!r} has an unsafe path {e.path!r} "
                                "(absolute or escaping the root)")
        if any(c in x for x in (e.video_id, e.path, e.label) for c in "\t\n"):
            raise ManifestError(f"{where} {e.video_id!r} has a tab or newline in a field")
        if e.split not in SPLITS:
            raise ManifestError(f"{where} {e.video_id!r} has split {e.split!r}; allowed: {SPLITS}")
        if e.label_index >= len(m.classes) or e.label_index < -1 or \
                (e.label_index >= 0 and m.classes[e.label_index] != e.label):
            raise ManifestError(f"{where} {e.video_id!r} has label {e.label!r} with index "
                                f"{e.label_index}, which does not match the class list")
    if dups:
        ids = list(dups)
        detail = "; ".join(f"{vid!r} at " + " and ".join(at(i) for i in dups[vid]) for vid in ids[:5])
        raise ManifestError(f"{m.dataset}: {len(ids)} duplicate video ids, first: {ids[:5]} ({detail})")


def check_files(m: Manifest, root: str | Path | None = None) -> None:
    """Raise :class:`ManifestError` with the count and the first names of entries missing on disk."""
    base = Path(root or m.root)
    missing = [e.path for e in m.entries if not (base / e.path).exists()]
    if missing:
        raise ManifestError(f"{m.dataset}: {len(missing)} of {len(m.entries)} entries are missing under "
                            f"{base}, first: {missing[:5]}")


def read_manifest(path: str | Path) -> Manifest:
    """Parse and validate a manifest file; its SHA-256 is kept in ``Manifest.sha256``."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest {path} does not exist (run `prep-cli manifest` first)")
    data = path.read_bytes()
    meta: dict[str, str] = {}
    rows = []
    origins = []
    header_seen = False
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(":")
            if key.startswith("motionprep manifest"):
                version = int(key.split()[-1])
                if version > MANIFEST_VERSION:
                    raise ManifestError(f"{path}: manifest version {version} is newer than this motionprep")
            elif value:
                meta[key.strip()] = value.strip()
            continue
        cols = line.split("\t")
        if not header_seen:
            if tuple(cols) != COLUMNS:
                raise ManifestError(f"{path}:{n}: expected the header {COLUMNS}, got {tuple(cols)}")
            header_seen = True
            continue
        if len(cols) != len(COLUMNS):
            raise ManifestError(f"{path}:{n}: expected {len(COLUMNS)} tab-separated columns, got {len(cols)}")
        try:
            rows.append(Entry(cols[0], cols[1], cols[2], int(cols[3]), cols[4]))
            origins.append(f"{path}:{n}")
        except ValueError as exc:
            raise ManifestError(f"{path}:{n}: label_index must be an integer ({exc})") from None
    for key in ("dataset", "format", "root", "classes"):
        if key not in meta:
            raise ManifestError(f"{path}: header line '# {key}: ...' is missing")
    m = Manifest(meta["dataset"], meta["format"], meta["root"], tuple(json.loads(meta["classes"])),
                 tuple(rows), meta.get("kind", "video"), hashlib.sha256(data).hexdigest())
    check_entries(m, origins)
    return m


# ----------------------------------------------------------------------------------------------------------
# Sharding: every modality uses this one assignment, so shard k of rgb, flow, mv, residual and resframe
# hold the same videos in the same order.


def shard_order(entries: Sequence[Entry]) -> list[int]:
    """Entry indices in shard order: sorted by SHA-1 of the video id (classes mixed, stable, deterministic)."""
    return sorted(range(len(entries)), key=lambda i: (hashlib.sha1(entries[i].video_id.encode()).hexdigest(),
                                                      entries[i].video_id))


def num_shards(n_videos: int, videos_per_shard: int) -> int:
    if videos_per_shard < 1:
        raise ValueError("videos_per_shard must be >= 1")
    return max(1, -(-n_videos // videos_per_shard))


def shard_entries(m: Manifest, shard: int, videos_per_shard: int) -> list[Entry]:
    """The entries of shard ``shard`` (0-based), in the order they are stored."""
    total = num_shards(len(m.entries), videos_per_shard)
    if not 0 <= shard < total:
        raise ValueError(f"shard {shard} is out of range: {m.dataset} has {total} shards "
                         f"of {videos_per_shard} videos")
    order = shard_order(m.entries)
    return [m.entries[i] for i in order[shard * videos_per_shard:(shard + 1) * videos_per_shard]]
