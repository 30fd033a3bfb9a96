"""pipeline/core/manifest.py: TSV round trip, its SHA-256, validation and the deterministic shard assignment."""

from __future__ import annotations

import hashlib
import random

import pytest

from pipeline.core.manifest import (Entry, Manifest, ManifestError, make_manifest, num_shards, read_manifest,
                               shard_entries, shard_order)

CLASSES = ["jump", "sit, down", "Über-Sprung"]


def toy(n: int = 23, dataset: str = "toy") -> Manifest:
    rows = []
    for i in range(n):
        label = CLASSES[i % 3] if i % 5 else None
        rows.append((f"v{i:03d}_#(odd)&!", f"c{i % 3}/v{i:03d}_#(odd)&!.mp4", label,
                     ("train", "test", "val", "unused")[i % 4]))
    random.Random(0).shuffle(rows)
    return make_manifest(dataset, "csv", "/data/toy", CLASSES, rows)


def test_make_manifest_sorts_and_indexes():
    m = toy()
    assert [e.video_id for e in m.entries] == sorted(e.video_id for e in m.entries)
    for e in m.entries:
        assert e.label_index == (CLASSES.index(e.label) if e.label else -1)
    assert m.resolve(m.entries[0]).as_posix() == "/data/toy/" + m.entries[0].path


def test_round_trip_equal(tmp_path):
    m = toy()
    m.write(tmp_path / "m.tsv")
    back = read_manifest(tmp_path / "m.tsv")
    assert back == m
    assert (back.dataset, back.format, back.kind, back.root, back.classes) == (
        "toy", "csv", "video", "/data/toy", tuple(CLASSES))
    assert back.entries == m.entries
    frames = make_manifest("s", "sthv1", "/f", ["a"], [("1", "1", "a", "train")], kind="frames")
    frames.write(tmp_path / "f.tsv")
    assert read_manifest(tmp_path / "f.tsv").kind == "frames"


def test_sha256_stable(tmp_path):
    toy().write(tmp_path / "a.tsv")
    toy().write(tmp_path / "b.tsv")
    a, b = read_manifest(tmp_path / "a.tsv"), read_manifest(tmp_path / "b.tsv")
    assert a.sha256 == b.sha256 == hashlib.sha256((tmp_path / "a.tsv").read_bytes()).hexdigest()
    assert len(a.sha256) == 64
    assert read_manifest(tmp_path / "a.tsv").sha256 == a.sha256          # reading again: same hash
    toy(22).write(tmp_path / "c.tsv")
    assert read_manifest(tmp_path / "c.tsv").sha256 != a.sha256


def test_validation_refusals():
    with pytest.raises(ManifestError, match=r"2 duplicate video ids, first: \['a', 'b'\]"):
        rows = [("a", "x/a.mp4", "x", "train"), ("a", "x/a2.mp4", "x", "train"),
                ("b", "x/b.mp4", "x", "train"), ("b", "x/b2.mp4", "x", "test")]
        make_manifest("d", "csv", "/r", ["x"], rows)
    with pytest.raises(ManifestError, match=r"video 'a' has unknown label 'y'"):
        make_manifest("d", "csv", "/r", ["x"], [("a", "x/a.mp4", "y", "train")])
    for bad in ("../a.mp4", "x/../../a.mp4", "/abs/a.mp4", "\\a.mp4", "C:/a.mp4", ""):
        with pytest.raises(ManifestError, match="unsafe path"):
            make_manifest("d", "csv", "/r", ["x"], [("a", bad, "x", "train")])
    with pytest.raises(ManifestError, match="tab or newline"):
        make_manifest("d", "csv", "/r", ["x"], [("a\tb", "x/a.mp4", "x", "train")])
    with pytest.raises(ManifestError, match="split 'holdout'"):
        make_manifest("d", "csv", "/r", ["x"], [("a", "x/a.mp4", "x", "holdout")])
    with pytest.raises(ManifestError, match="duplicate class names"):
        make_manifest("d", "csv", "/r", ["x", "x"], [])


def test_read_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "none.tsv")
    good = toy(3).to_text()
    p = tmp_path / "m.tsv"
    p.write_text(good.replace("video_id\tpath", "id\tpath"))
    with pytest.raises(ManifestError, match=r"m\.tsv:7: expected the header"):
        read_manifest(p)
    p.write_text(good + "x\ty\n")
    with pytest.raises(ManifestError, match=r"m\.tsv:11: expected 5 tab-separated columns"):
        read_manifest(p)
    p.write_text(good.replace("# motionprep manifest 1", "# motionprep manifest 99"))
    with pytest.raises(ManifestError, match="newer"):
        read_manifest(p)
    p.write_text("\n".join(line for line in good.splitlines() if not line.startswith("# classes")))
    with pytest.raises(ManifestError, match="'# classes: ...' is missing"):
        read_manifest(p)
    p.write_text(good + "z\tc0/z.mp4\tjump\t1\ttrain\n")          # index 1 is "sit, down"
    with pytest.raises(ManifestError, match="does not match the class list"):
        read_manifest(p)


@pytest.mark.parametrize("n, per", [(23, 5), (20, 5), (1, 100), (7, 1), (100, 100)])
def test_shards_partition_and_sizes(n, per):
    m = toy(n)
    total = num_shards(n, per)
    assert total == max(1, -(-n // per))
    shards = [shard_entries(m, k, per) for k in range(total)]
    sizes = [len(s) for s in shards]
    assert all(s == per for s in sizes[:-1]) and 1 <= sizes[-1] <= per and sum(sizes) == n
    flat = [e for s in shards for e in s]
    assert sorted(flat, key=lambda e: e.video_id) == list(m.entries)       # a partition: each entry once
    assert len({e.video_id for e in flat}) == n
    with pytest.raises(ValueError, match="out of range"):
        shard_entries(m, total, per)


def test_shards_deterministic_and_mixed():
    m = toy(40)
    first = [[e.video_id for e in shard_entries(m, k, 8)] for k in range(5)]
    again = [[e.video_id for e in shard_entries(toy(40), k, 8)] for k in range(5)]
    assert first == again
    # Depends on the ids alone, not the entry order, and is not simply the sorted order.
    shuffled = list(m.entries)
    random.Random(1).shuffle(shuffled)
    assert [shuffled[i].video_id for i in shard_order(shuffled)] == [m.entries[i].video_id
                                                                     for i in shard_order(m.entries)]
    assert [m.entries[i].video_id for i in shard_order(m.entries)] != [e.video_id for e in m.entries]
    # Known value: pinned so that a change of the assignment (which would re-shard every dataset) is noticed.
    ids = [Entry(f"v{i}", f"c/v{i}.mp4", "", -1, "train") for i in range(5)]
    expected = sorted(range(5), key=lambda i: hashlib.sha1(f"v{i}".encode()).hexdigest())
    assert shard_order(ids) == expected
    with pytest.raises(ValueError):
        num_shards(10, 0)
