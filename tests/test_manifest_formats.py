"""The format parsers of pipeline/formats, on small fixture trees written as the datasets ship them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipeline.formats import FORMATS, build_manifest
from pipeline.core.manifest import ManifestError, read_manifest


def touch(root: Path, *rels: str) -> None:
    """Create empty files (and their folders) under ``root``."""
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def by_id(m):
    return {e.video_id: e for e in m.entries}


# ---------------------------------------------------------------------------------------------------- UCF101

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
UCF_VIDEOS = {
    "train": ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
              "HandstandPushups/v_HandStandPushups_g08_c01.avi",
              "YoYo/v_YoYo_g08_c01.avi"],
    "test": ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c01.avi",
             "YoYo/v_YoYo_g01_c01.avi"],
}


def make_ucf(tmp_path: Path, disk_folder: str = "HandstandPushups") -> tuple[Path, Path]:
    """UCF-101/<class>/<video>.avi and ucfTrainTestlist/ with CRLF lines and trailing blanks, as shipped."""
    root, lists = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_bytes(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, 1)).encode())
    train = "".join(f"{v} {UCF_CLASSES.index(v.split('/')[0]) + 1}\r\n" for v in UCF_VIDEOS["train"])
    test = "".join(f"{v}\r\n" for v in UCF_VIDEOS["test"])
    for n in (1, 2, 3):
        (lists / f"trainlist0{n}.txt").write_bytes((train + " \r\n").encode())
        (lists / f"testlist0{n}.txt").write_bytes(("\ufeff" + test.replace("\r\n", " \r\n", 1)).encode())
    for v in UCF_VIDEOS["train"] + UCF_VIDEOS["test"]:
        touch(root, v.replace("HandstandPushups/", f"{disk_folder}/"))
    return root, lists


def test_ucf101_entries_labels_and_splits(tmp_path):
    root, lists = make_ucf(tmp_path)
    m = build_manifest("ucf101", root, lists, split=1, dataset="ucf101")
    assert m.classes == tuple(UCF_CLASSES) and m.format == "ucf101" and m.kind == "video"
    assert len(m) == 6
    e = by_id(m)["v_ApplyEyeMakeup_g08_c01"]
    assert (e.path, e.label, e.label_index, e.split) == (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup", 0, "train")
    t = by_id(m)["v_YoYo_g01_c01"]
    assert (t.label, t.label_index, t.split) == ("YoYo", 2, "test")
    assert sum(e.split == "test" for e in m.entries) == 3


@pytest.mark.parametrize("disk_folder", ["HandstandPushups", "HandStandPushups"])
def test_ucf101_handstandpushups_quirk(tmp_path, disk_folder):
    root, lists = make_ucf(tmp_path, disk_folder)
    m = build_manifest("ucf101", root, lists, split=2)
    for vid, split in (("v_HandStandPushups_g08_c01", "train"), ("v_HandStandPushups_g01_c01", "test")):
        e = by_id(m)[vid]
        assert e.label == "HandstandPushups" and e.label_index == 1 and e.split == split
        assert e.path.startswith(disk_folder + "/")          # as spelled on disk
        assert (root / e.path).exists()


def test_ucf101_hostile_line_names_file_and_line(tmp_path):
    root, lists = make_ucf(tmp_path)
    with open(lists / "testlist01.txt", "a") as f:
        f.write("../x.avi\r\n")
    with pytest.raises(ManifestError, match=r"testlist01\.txt:4: unsafe path '\.\./x\.avi'"):
        build_manifest("ucf101", root, lists)
    (lists / "testlist02.txt").write_text("/etc/passwd.avi\n")
    with pytest.raises(ManifestError, match=r"testlist02\.txt:1: unsafe path"):
        build_manifest("ucf101", root, lists, split=2)


def test_ucf101_unknown_folder_and_bad_index(tmp_path):
    root, lists = make_ucf(tmp_path)
    (lists / "testlist01.txt").write_text("Juggling/v_Juggling_g01_c01.avi\n")
    with pytest.raises(ManifestError, match=r"testlist01\.txt:1: folder 'Juggling'"):
        build_manifest("ucf101", root, lists)
    (lists / "trainlist02.txt").write_text("YoYo/v_YoYo_g08_c01.avi 9\n")
    with pytest.raises(ManifestError, match=r"trainlist02\.txt:1: label 9 is outside 1\.\.3"):
        build_manifest("ucf101", root, lists, split=2)


def test_ucf101_missing_files_refused_with_count_and_names(tmp_path):
    root, lists = make_ucf(tmp_path)
    (root / "YoYo" / "v_YoYo_g01_c01.avi").unlink()
    (root / "YoYo" / "v_YoYo_g08_c01.avi").unlink()
    with pytest.raises(ManifestError, match=r"2 of 6 entries are missing") as err:
        build_manifest("ucf101", root, lists)
    assert "YoYo/v_YoYo_g01_c01.avi" in str(err.value) and "YoYo/v_YoYo_g08_c01.avi" in str(err.value)
    assert len(build_manifest("ucf101", root, lists, check_files=False)) == 6


# ---------------------------------------------------------------------------------------------------- HMDB51

HMDB = {
    "brush_hair": [("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 1),
                   ("Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi", 2),
                   ("#20_Rhythm_clap_brush_hair_u_nm_np1_fr_goo_0.avi", 0)],
    "cartwheel": [("(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi", 1),
                  ("Bodenturnen_&_Kunst_cartwheel_f_cm_np1_ri_med_1.avi", 2)],
}


def make_hmdb(tmp_path: Path) -> tuple[Path, Path]:
    root, splits = tmp_path / "videos", tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    for cls, vids in HMDB.items():
        for n in (1, 2, 3):
            (splits / f"{cls}_test_split{n}.txt").write_text("".join(f"{v} {c} \n" for v, c in vids))
        touch(root, *(f"{cls}/{v}" for v, _ in vids))
    return root, splits


def test_hmdb51_codes_classes_and_odd_ids(tmp_path):
    root, splits = make_hmdb(tmp_path)
    m = build_manifest("hmdb51", root, splits, split=3, dataset="hmdb51")
    assert m.classes == ("brush_hair", "cartwheel")
    ids = by_id(m)
    assert ids["April_09_brush_hair_u_nm_np1_ba_goo_0"].split == "train"
    assert ids["Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0"].split == "test"
    unused = ids["#20_Rhythm_clap_brush_hair_u_nm_np1_fr_goo_0"]
    assert unused.split == "unused" and unused.label_index == 0
    odd = ids["(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0"]
    assert odd.path == "cartwheel/(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi"
    assert odd.label == "cartwheel" and odd.label_index == 1
    assert "Bodenturnen_&_Kunst_cartwheel_f_cm_np1_ri_med_1" in ids


def test_hmdb51_hostile_and_malformed_lines(tmp_path):
    root, splits = make_hmdb(tmp_path)
    with open(splits / "cartwheel_test_split1.txt", "a") as f:
        f.write("../x.avi 1\n")
    with pytest.raises(ManifestError, match=r"cartwheel_test_split1\.txt:3: unsafe video name '\.\./x\.avi'"):
        build_manifest("hmdb51", root, splits)
    (splits / "cartwheel_test_split2.txt").write_text("a.avi 7\n")
    with pytest.raises(ManifestError, match=r"cartwheel_test_split2\.txt:1: expected"):
        build_manifest("hmdb51", root, splits, split=2)


def test_hmdb51_duplicate_ids_refused(tmp_path):
    root, splits = make_hmdb(tmp_path)
    with open(splits / "cartwheel_test_split1.txt", "a") as f:
        f.write("April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1\n")
    with pytest.raises(ManifestError, match="duplicate video id 'April_09_brush_hair_u_nm_np1_ba_goo_0'"):
        build_manifest("hmdb51", root, splits, check_files=False)


# ------------------------------------------------------------------------------------------------ Kinetics

K_TRAIN = """label,youtube_id,time_start,time_end,split,is_cc
abseiling,--07WQ2iBlw,1,11,train,0
"passing American football (in game)",-4wsuPCjDBc,15,25,train,0
"passing American football (in game)",abc_DEF-123,0,10,train,0
"massaging person's head",x1x1x1x1x1x,100,110,train,0
"""
K_VAL = """label,youtube_id,time_start,time_end,split,is_cc
abseiling,vvvvvvvvvv1,5,15,val,0
"massaging person's head",vvvvvvvvvv2,20,30,val,0
"""
K_TEST = """youtube_id,time_start,time_end,split
ttttttttttt,7,17,test
"""


def make_kinetics(tmp_path: Path, layout: str = "flat") -> tuple[Path, Path]:
    root, ann = tmp_path / "videos", tmp_path / "annotations"
    ann.mkdir()
    (ann / "train.csv").write_text(K_TRAIN)
    (ann / "validate.csv").write_text(K_VAL)
    (ann / "test.csv").write_text(K_TEST)
    clips = {"train": [("abseiling", "--07WQ2iBlw_000001_000011"),
                       ("passing American football (in game)", "-4wsuPCjDBc_000015_000025"),
                       ("passing American football (in game)", "abc_DEF-123_000000_000010"),
                       ("massaging person's head", "x1x1x1x1x1x_000100_000110")],
             "val": [("abseiling", "vvvvvvvvvv1_000005_000015"),
                     ("massaging person's head", "vvvvvvvvvv2_000020_000030")],
             "test": [("", "ttttttttttt_000007_000017")]}
    for split, items in clips.items():
        for label, vid in items:
            touch(root, f"{vid}.mp4" if layout == "flat" else f"{split}/{label or 'test'}/{vid}.mp4")
    return root, ann


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_kinetics400_quoted_labels_layouts_and_unlabeled_test(tmp_path, layout):
    root, ann = make_kinetics(tmp_path, layout)
    m = build_manifest("kinetics400", root, ann, dataset="k400")
    assert m.classes == ("abseiling", "massaging person's head", "passing American football (in game)")
    ids = by_id(m)
    assert len(m) == 7
    e = ids["-4wsuPCjDBc_000015_000025"]
    assert (e.label, e.label_index, e.split) == ("passing American football (in game)", 2, "train")
    expected = ("-4wsuPCjDBc_000015_000025.mp4" if layout == "flat"
                else "train/passing American football (in game)/-4wsuPCjDBc_000015_000025.mp4")
    assert e.path == expected
    assert ids["vvvvvvvvvv2_000020_000030"].split == "val"
    t = ids["ttttttttttt_000007_000017"]
    assert (t.label, t.label_index, t.split) == ("", -1, "test")


def test_kinetics400_missing_clips_refused_or_dropped(tmp_path, caplog):
    root, ann = make_kinetics(tmp_path)
    (root / "abc_DEF-123_000000_000010.mp4").unlink()
    (root / "vvvvvvvvvv1_000005_000015.mp4").unlink()
    with pytest.raises(ManifestError, match=r"2 of 7 entries are missing.*abc_DEF-123_000000_000010\.mp4"):
        build_manifest("kinetics400", root, ann)
    with caplog.at_level(logging.WARNING, logger="motionprep"):
        m = build_manifest("kinetics400", root, ann, allow_missing=True)
    assert len(m) == 5 and "abc_DEF-123_000000_000010" not in by_id(m)
    assert "dropped 2 of 7 entries" in caplog.text
    assert len(m.classes) == 3


def test_kinetics400_bad_rows(tmp_path):
    root, ann = make_kinetics(tmp_path)
    (ann / "validate.csv").write_text(K_VAL + "juggling fire,jjjjjjjjjjj,1,11,val,0\n")
    with pytest.raises(ManifestError, match=r"validate\.csv:4: video 'jjjjjjjjjjj_000001_000011' has unknown "
                                            r"label 'juggling fire'"):
        build_manifest("kinetics400", root, ann, check_files=False)
    (ann / "validate.csv").write_text(K_VAL + "abseiling,../../etc,1,11,val,0\n")
    with pytest.raises(ManifestError, match=r"validate\.csv:4: '\.\./\.\./etc' is not a YouTube id"):
        build_manifest("kinetics400", root, ann, check_files=False)
    (ann / "validate.csv").write_text(K_VAL + "abseiling,zzzzzzzzzzz,one,11,val,0\n")
    with pytest.raises(ManifestError, match=r"validate\.csv:4: time_start 'one' is not a number"):
        build_manifest("kinetics400", root, ann, check_files=False)


# ------------------------------------------------------------------------------------------- Mini-Kinetics


def test_minikinetics200_filters_rows_and_classes(tmp_path):
    root, ann = make_kinetics(tmp_path, "nested")
    mini = tmp_path / "minikinetics200"
    mini.mkdir()
    (mini / "train_ytid_list.txt").write_text("-4wsuPCjDBc\nabc_DEF-123\r\n")
    (mini / "val_ytid_list.txt").write_text("vvvvvvvvvv1\n")
    with pytest.raises(ManifestError, match="no Kinetics train CSV"):
        build_manifest("minikinetics200", root, mini)
    (mini / "kinetics_csv_dir.txt").write_text("../annotations\n")
    m = build_manifest("minikinetics200", root, mini, dataset="mini")
    assert m.format == "minikinetics200"
    assert m.classes == ("abseiling", "passing American football (in game)")
    assert sorted(by_id(m)) == ["-4wsuPCjDBc_000015_000025", "abc_DEF-123_000000_000010",
                                "vvvvvvvvvv1_000005_000015"]
    v = by_id(m)["vvvvvvvvvv1_000005_000015"]
    assert (v.label_index, v.split, v.path) == (0, "val", "val/abseiling/vvvvvvvvvv1_000005_000015.mp4")
    # The CSVs may also sit in the splits folder itself.
    for name in ("train.csv", "validate.csv"):
        (mini / name).write_text((ann / name).read_text())
    assert build_manifest("minikinetics200", root, mini).entries == m.entries


# ----------------------------------------------------------------------------------------- Something v1

STH_LABELS = ["Holding something", "Putting something on a surface",
              "Pretending to put something into something", "Pushing something so it falls off the table",
              "Putting something, something and something on the table", "Moving something and something "
              "so they pass each other", "Showing that something is empty"]


def make_sthv1(tmp_path: Path) -> tuple[Path, Path]:
    root, ann = tmp_path / "frames", tmp_path / "annotations"
    ann.mkdir()
    (ann / "something-something-v1-labels.csv").write_text("\n".join(STH_LABELS) + "\n")
    (ann / "something-something-v1-train.csv").write_text(
        "100218;Putting something on a surface\n24;Putting something, something and something on the table\n")
    (ann / "something-something-v1-validation.csv").write_text(
        "9223;Pretending to put something into something\n")
    (ann / "something-something-v1-test.csv").write_text("77\n")
    touch(root, *(f"{i}/00001.jpg" for i in ("100218", "24", "9223", "77")))
    return root, ann


def test_sthv1_frame_folders_and_exact_labels(tmp_path):
    root, ann = make_sthv1(tmp_path)
    m = build_manifest("sthv1", root, ann, dataset="sthv1")
    assert m.kind == "frames" and m.classes == tuple(STH_LABELS)
    ids = by_id(m)
    assert (ids["100218"].path, ids["100218"].label_index, ids["100218"].split) == ("100218", 1, "train")
    assert ids["24"].label == "Putting something, something and something on the table"
    assert ids["24"].label_index == 4
    assert (ids["9223"].label_index, ids["9223"].split) == (2, "val")
    assert (ids["77"].label_index, ids["77"].split) == (-1, "test")
    (ann / "something-something-v1-validation.csv").write_text(
        "9223;Pretending to put something in something\n")
    with pytest.raises(ManifestError, match=r"validation\.csv:1: video '9223' has unknown label"):
        build_manifest("sthv1", root, ann)
    (ann / "something-something-v1-validation.csv").write_text("../9223;Holding something\n")
    with pytest.raises(ManifestError, match=r"validation\.csv:1: unsafe frame folder id"):
        build_manifest("sthv1", root, ann)


# ------------------------------------------------------------------------------------ folder, csv, demo


def test_folder_format(tmp_path):
    touch(tmp_path, "walk/a.mp4", "walk/b.AVI", "run/c.webm", "run/notes.txt", "empty/.hidden.mp4",
          ".git/x.mp4")
    m = build_manifest("folder", tmp_path)
    assert m.classes == ("run", "walk")
    assert [(e.video_id, e.path, e.label_index, e.split) for e in m.entries] == [
        ("a", "walk/a.mp4", 1, "train"), ("b", "walk/b.AVI", 1, "train"), ("c", "run/c.webm", 0, "train")]
    touch(tmp_path, "run/a.mkv")
    with pytest.raises(ManifestError, match=r"duplicate video id 'a'"):
        build_manifest("folder", tmp_path)


def test_csv_format(tmp_path):
    touch(tmp_path, "v/a.mp4", "v/b.mp4", "v/c.mp4", "w/d.mp4")
    (tmp_path / "list.csv").write_text('path,label,split\nv/a.mp4,jump,train\nv/b.mp4,"sit, down",val\n'
                                       "v/c.mp4,,test\nw\\d.mp4,jump,\n")
    m = build_manifest("csv", tmp_path, tmp_path / "list.csv", dataset="mine")
    assert m.classes == ("jump", "sit, down")
    assert [(e.video_id, e.path, e.label, e.label_index, e.split) for e in m.entries] == [
        ("a", "v/a.mp4", "jump", 0, "train"), ("b", "v/b.mp4", "sit, down", 1, "val"),
        ("c", "v/c.mp4", "", -1, "test"), ("d", "w/d.mp4", "jump", 0, "train")]
    assert build_manifest("csv", tmp_path).entries == m.entries          # the only *.csv under the root


@pytest.mark.parametrize("bad", ["../x.mp4", "/abs/x.mp4", "v/../../x.mp4", "C:/x.mp4", "\\\\server\\x.mp4"])
def test_csv_unsafe_paths_refused(tmp_path, bad):
    (tmp_path / "split.csv").write_text(f"path,label\nv/a.mp4,jump\n{bad},jump\n")
    with pytest.raises(ManifestError, match=r"split\.csv:3: unsafe path"):
        build_manifest("csv", tmp_path, check_files=False)


def test_csv_duplicate_ids_and_bad_split(tmp_path):
    (tmp_path / "split.csv").write_text("path,label\nv/a.mp4,jump\nw/a.avi,jump\n")
    with pytest.raises(ManifestError,
                       match=r"split\.csv:3: duplicate video id 'a' \(first seen at .*split\.csv:2\)"):
        build_manifest("csv", tmp_path, check_files=False)
    (tmp_path / "split.csv").write_text("path,label,split\nv/a.mp4,jump,holdout\n")
    with pytest.raises(ManifestError, match=r"split\.csv:2: split 'holdout'"):
        build_manifest("csv", tmp_path, check_files=False)


def make_demo(root: Path) -> None:
    """The layout prep-cli make-demo writes: classes.txt and split.csv (path,label,split)."""
    classes = ["translate_right", "translate_left", "rotate_ccw"]
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    lines = ["path,label,split"]
    for c in classes:
        for k, split in enumerate(("train", "train", "test")):
            lines.append(f"videos/{c}_{k:02d}.mp4,{c},{split}")
            touch(root, f"videos/{c}_{k:02d}.mp4")
    (root / "split.csv").write_text("\n".join(lines) + "\n")


def test_demo_format_keeps_class_order(tmp_path):
    make_demo(tmp_path)
    m = build_manifest("demo", tmp_path, dataset="demo")
    assert m.classes == ("translate_right", "translate_left", "rotate_ccw")      # file order, not sorted
    e = by_id(m)["rotate_ccw_02"]
    assert (e.label_index, e.split, e.path) == (2, "test", "videos/rotate_ccw_02.mp4")
    (tmp_path / "split.csv").write_text("path,label,split\nvideos/x.mp4,zoom_in,train\n")
    with pytest.raises(ManifestError, match=r"split\.csv:2: video 'x' has unknown label 'zoom_in'"):
        build_manifest("demo", tmp_path, check_files=False)


def test_registry_argument_checks(tmp_path):
    assert set(FORMATS) == {"ucf101", "hmdb51", "kinetics400", "minikinetics200", "sthv1", "folder", "csv",
                            "demo"}
    with pytest.raises(ManifestError, match="unknown dataset format 'ucf'"):
        build_manifest("ucf", tmp_path)
    with pytest.raises(ManifestError, match="is not a folder"):
        build_manifest("folder", tmp_path / "nope")
    with pytest.raises(ManifestError, match="split must be 1, 2 or 3"):
        build_manifest("ucf101", tmp_path, split=4)


# ------------------------------------------------------------------------------------------ prep-cli manifest


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """A UCF101 tree and a config naming it; run from tmp_path so that no repository config is picked up."""
    root, lists = make_ucf(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"dataset: myucf\nmanifests: {tmp_path / 'manifests'}\ndatasets:\n"
                   f"  myucf: {{format: ucf101, root: {root}, splits: {lists}, split: 2}}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path, root, lists, cfg


def run_cli(*args: str):
    from click.testing import CliRunner

    from pipeline.cli import cli
    return CliRunner().invoke(cli, ["manifest", *args])


def test_cli_config_dataset_with_overrides(cli_env):
    tmp_path, root, lists, cfg = cli_env
    res = run_cli("--config", str(cfg), "--dataset", "myucf")
    assert res.exit_code == 0, res.output
    out = tmp_path / "manifests" / "myucf.tsv"
    assert res.output.strip() == f"manifest: myucf (ucf101): 6 videos (train 3, test 3), 3 classes -> {out}"
    m = read_manifest(out)
    assert m.dataset == "myucf" and m.root == str(root) and len(m) == 6
    (lists / "testlist03.txt").write_text("YoYo/v_YoYo_g01_c01.avi\n")
    res = run_cli("--config", str(cfg), "--dataset", "myucf", "--split", "3",
                  "--out", str(tmp_path / "s3.tsv"))
    assert res.exit_code == 0, res.output
    assert "4 videos (train 3, test 1)" in res.output and len(read_manifest(tmp_path / "s3.tsv")) == 4


def test_cli_format_name_needs_only_a_root(cli_env, tmp_path):
    """A dataset the config does not list is read with the built-in format of that name (no config file
    needed); the manifest goes to <manifests>/<name>.tsv unless --out says otherwise."""
    from pipeline.core.config import ConfigError
    touch(tmp_path / "vids", "a/x.mp4", "b/y.mp4")
    res = run_cli("--dataset", "folder")
    assert isinstance(res.exception, ConfigError) and "give --root" in str(res.exception)
    res = run_cli("--dataset", "folder", "--root", str(tmp_path / "vids"))
    assert res.exit_code == 0, res.output
    assert "folder (folder): 2 videos (train 2), 2 classes -> manifests/folder.tsv" in res.output
    assert read_manifest(tmp_path / "manifests" / "folder.tsv").root == str(tmp_path / "vids")
    res = run_cli("--dataset", "folder", "--root", str(tmp_path / "vids"), "--out", str(tmp_path / "f.tsv"))
    assert res.exit_code == 0 and (tmp_path / "f.tsv").exists()
    res = run_cli("--dataset", "nosuch", "--root", str(tmp_path))
    assert isinstance(res.exception, ConfigError)
    assert "'nosuch' is not in the config" in str(res.exception) and "ucf101" in str(res.exception)


def test_cli_missing_files_and_allow_missing(cli_env, tmp_path):
    _, root, lists, cfg = cli_env
    (root / "YoYo" / "v_YoYo_g01_c01.avi").unlink()
    res = run_cli("--config", str(cfg), "--dataset", "myucf")
    assert isinstance(res.exception, ManifestError) and "1 of 6 entries are missing" in str(res.exception)
    res = run_cli("--config", str(cfg), "--dataset", "myucf", "--allow-missing")
    assert res.exit_code == 0 and "5 videos (train 3, test 2)" in res.output
    res = run_cli("--config", str(cfg), "--dataset", "myucf", "--no-check-files",
                  "--out", str(tmp_path / "n.tsv"))
    assert res.exit_code == 0 and "6 videos" in res.output


def test_cli_main_reports_hostile_split_line(cli_env, monkeypatch, capsys):
    from pipeline import cli as cli_module

    _, root, lists, cfg = cli_env
    (lists / "testlist02.txt").write_text("YoYo/v_YoYo_g01_c01.avi\n../../etc/x.avi\n")
    monkeypatch.setattr("sys.argv", ["prep-cli", "manifest", "--config", str(cfg), "--dataset", "myucf"])
    with pytest.raises(SystemExit) as exc:
        cli_module.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("prep-cli: error: ") and "testlist02.txt:2: unsafe path '../../etc/x.avi'" in err
