"""Helpers shared by the dataset format parsers: split files, safe paths, disk lookups, row collection.

Split files are treated as untrusted input: every path taken from them is checked here (no absolute paths,
no ``..``), and every error names the file and line it came from.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import Iterator

from ..core.manifest import ManifestError, is_unsafe_relpath

log = logging.getLogger("motionprep.manifest")

VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".flv", ".m4v")
_YTID = re.compile(r"^[A-Za-z0-9_-]+$")


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`ManifestError` naming it and ``what`` it is."""
    if not path.is_file():
        raise ManifestError(f"{what} {path} does not exist")
    return path


def read_text(path: Path) -> str:
    """Decode a split file as UTF-8 (BOM allowed); fall back to Latin-1 with a warning instead of failing."""
    data = require_file(path, "split file").read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        log.warning("%s is not UTF-8 (%s); reading it as Latin-1", path, exc)
        return data.decode("latin-1")


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for the non-blank lines of ``path``; CRLF and surrounding blanks removed."""
    for n, line in enumerate(read_text(path).splitlines(), 1):
        line = line.strip()
        if line:
            yield n, line


def read_csv(path: Path, delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row of a CSV with a header; quoted fields may hold commas.

    Column names and values are stripped; short rows get ``""`` for the missing columns.
    """
    text = read_text(path)
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ManifestError(f"{path}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}:1: malformed CSV header ({exc})") from None
    while True:
        try:
            cols = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ManifestError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
        if not any(c.strip() for c in cols):
            continue
        if len(cols) > len(header):
            raise ManifestError(f"{path}:{reader.line_num}: {len(cols)} columns but the header has "
                                f"{len(header)} ({','.join(header)})")
        row = {h: (cols[i].strip() if i < len(cols) else "") for i, h in enumerate(header)}
        yield reader.line_num, row


def safe_relpath(text: str, where: str) -> str:
    """Normalise a relative path from a split file (``\\`` to ``/``, ``./`` dropped) or refuse an unsafe one.

    Refused: empty, absolute (``/x``, ``\\x``, ``C:x``) and anything with a ``..`` component.
    """
    p = text.strip().replace("\\", "/")
    if is_unsafe_relpath(p):
        raise ManifestError(f"{where}: unsafe path {text!r} (empty, absolute or escaping the root with '..')")
    return "/".join(x for x in p.split("/") if x not in ("", "."))


def safe_name(text: str, where: str, what: str = "file name") -> str:
    """A single path component (video file name, frame folder id): no separators, not ``.`` or ``..``."""
    name = text.strip()
    if not name or "/" in name or "\\" in name or name in (".", "..") or (len(name) > 1 and name[1] == ":"):
        raise ManifestError(f"{where}: unsafe {what} {text!r} (must be a plain name, no '/' or '..')")
    return name


def youtube_id(text: str, where: str) -> str:
    """A YouTube id (letters, digits, ``-`` and ``_``); anything else is refused."""
    ytid = text.strip()
    if not _YTID.match(ytid):
        raise ManifestError(f"{where}: {ytid!r} is not a YouTube id (letters, digits, '-' and '_' only)")
    return ytid


def stem(rel: str) -> str:
    """File name without its last extension: the video id of most formats (odd characters kept)."""
    name = rel.rsplit("/", 1)[-1]
    base, dot, _ = name.rpartition(".")
    return base if dot and base else name


class DiskResolver:
    """Find relative paths under a root matching each component case-insensitively (listings cached).

    An exact spelling wins; otherwise the first name (sorted) equal to it ignoring case is used.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[frozenset[str], dict[str, str]] | None] = {}

    def _listing(self, rel_dir: str) -> tuple[frozenset[str], dict[str, str]] | None:
        if rel_dir not in self._cache:
            try:
                names = sorted(os.listdir(self.root / rel_dir if rel_dir else self.root))
            except OSError:
                self._cache[rel_dir] = None
            else:
                lower: dict[str, str] = {}
                for n in names:
                    lower.setdefault(n.lower(), n)
                self._cache[rel_dir] = (frozenset(names), lower)
        return self._cache[rel_dir]

    def find(self, rel: str) -> str | None:
        """The path as it is spelled on disk, or ``None`` when no case variant exists."""
        out: list[str] = []
        for part in rel.split("/"):
            listing = self._listing("/".join(out))
            if listing is None:
                return None
            names, lower = listing
            name = part if part in names else lower.get(part.lower())
            if name is None:
                return None
            out.append(name)
        return "/".join(out)


def index_videos(root: Path, exts: tuple[str, ...] = VIDEO_EXTS) -> dict[str, list[str]]:
    """One walk of ``root``: video stem -> relative paths of the video files with that stem.

    Symlinked folders are followed (each real folder once); hidden folders are skipped.
    """
    index: dict[str, list[str]] = {}
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, root)
        for f in filenames:
            base, ext = os.path.splitext(f)
            if ext.lower() in exts and not f.startswith("."):
                rel = f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/")
                index.setdefault(base, []).append(rel)
    return index


def pick_video(candidates: list[str], preferred_ext: str = ".mp4") -> str:
    """Deterministic choice among same-stem files: preferred extension, then the shallowest, then sorted."""
    return min(candidates, key=lambda r: (not r.lower().endswith(preferred_ext), r.count("/"), r))


class Rows:
    """Collects manifest rows, refusing duplicate ids and unknown labels with the file and line of each."""

    def __init__(self, dataset: str, classes: list[str] | tuple[str, ...] | None = None) -> None:
        self.dataset = dataset
        self.known = set(classes) if classes is not None else None
        self.rows: list[tuple[str, str, str | None, str]] = []
        self._origin: dict[str, str] = {}

    def add(self, video_id: str, rel: str, label: str | None, split: str, where: str) -> None:
        if video_id in self._origin:
            raise ManifestError(f"{where}: duplicate video id {video_id!r} (first seen at "
                                f"{self._origin[video_id]})")
        if label is not None and self.known is not None and label not in self.known:
            raise ManifestError(f"{where}: video {video_id!r} has unknown label {label!r}")
        self._origin[video_id] = where
        self.rows.append((video_id, rel, label, split))

    def __len__(self) -> int:
        return len(self.rows)
