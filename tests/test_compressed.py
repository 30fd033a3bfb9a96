"""Motion vectors and residuals from real MPEG-4 encodes of tiny synthetic translations."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from pipeline.compressed.backends import (NoMotionVectorsError, iter_mvextractor, iter_pyav,
                                          mvextractor_available)
from pipeline.compressed.encoding import decode_mv, dense_mv
from pipeline.compressed.extract import GopError, extract
from pipeline.compressed.motion import accumulate, dense_motion
from pipeline.compressed.residual import compensate, residual
from pipeline.compressed.mpeg4 import check_gop, picture_types, reencode_file
from pipeline.media.videoio import ffmpeg_exe, write_video

from .compressed_fixtures import H, MARGIN, W, small_cfg, translation_frames, write_translation

INNER = (slice(MARGIN, H - MARGIN), slice(MARGIN, W - MARGIN))


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """Re-encoded MPEG-4 files of global translations (dx, dy) px/frame, 14 frames (2 GOPs)."""
    d = tmp_path_factory.mktemp("translations")
    out = {}
    for dx, dy in ((2, 0), (1.5, -1)):
        src = write_translation(d / f"src_{dx}_{dy}.avi", 14, dx, dy)
        reencode_file(src, d / f"mpeg4_{dx}_{dy}.avi", small_cfg())
        out[(dx, dy)] = d / f"mpeg4_{dx}_{dy}.avi"
    return out


def decoded(path):
    frames = list(iter_pyav(path))
    return frames, [f.image[..., :3] for f in frames]


@pytest.mark.parametrize("motion", [(2, 0), (1.5, -1)], ids=["whole-pixel", "half-pixel"])
def test_vectors_match_the_translation_with_documented_sign(encoded, motion):
    dx, dy = motion
    frames, _ = decoded(encoded[motion])
    assert "".join(f.pict_type for f in frames) == "IPPPPPPPPPPPIP"
    for f in frames[1:]:
        if f.pict_type != "P":
            continue
        m = dense_motion(f.table, H, W)[(slice(None), *INNER)]
        # content moving by +dx gives vectors src - dst = -dx
        share = np.mean((m[0] == -dx) & (m[1] == -dy))
        assert share >= 0.9, (share, np.unique(m[0]), np.unique(m[1]))


@pytest.mark.parametrize("motion", [(2, 0), (1.5, -1)], ids=["whole-pixel", "half-pixel"])
def test_accumulated_vectors_are_k_times_the_motion(encoded, motion):
    dx, dy = motion
    frames, _ = decoded(encoded[motion])
    acc = None
    for k, f in enumerate(frames[:12]):
        if k == 0:
            continue
        acc = accumulate(acc, dense_motion(f.table, H, W))
        inner = acc[:, H // 2 - 8:H // 2 + 8, W - 24:W - 8] if dx > 0 else acc[(slice(None), *INNER)]
        share = np.mean((inner[0] == -dx * k) & (inner[1] == -dy * k))
        assert share >= 0.8, (k, share)


@pytest.mark.parametrize("motion", [(2, 0), (1.5, -1)], ids=["whole-pixel", "half-pixel"])
def test_residual_of_translation_is_small_and_exact(encoded, motion):
    frames, imgs = decoded(encoded[motion])
    acc, iref = None, imgs[0]
    for k in range(1, 12):
        m = dense_motion(frames[k].table, H, W)
        acc = accumulate(acc, m)
        pred, pred_acc = compensate(imgs[k - 1], m), compensate(iref, acc)
        res, res_acc = residual(imgs[k], pred), residual(imgs[k], pred_acc)
        np.testing.assert_array_equal(pred.astype(np.int16) + res, imgs[k])       # exact identity
        np.testing.assert_array_equal(pred_acc.astype(np.int16) + res_acc, imgs[k])
        plain = np.abs(imgs[k].astype(np.int16) - imgs[k - 1])[INNER].mean()
        assert np.abs(res[INNER]).mean() < 2, k
        assert np.abs(res_acc[INNER]).mean() < 2, k
        assert plain > 10


def test_extract_stores_consistent_encodings(encoded):
    v = extract(iter_pyav(encoded[(2, 0)]))
    f = v.frames
    assert v.num_frames == 14 and v.num_gops == 2
    assert f["frame_type"].tolist() == [0] + [1] * 11 + [0, 1]
    assert f["gop_index"].tolist() == [0] * 12 + [1, 1] and f["gop_pos"].tolist() == list(range(12)) + [0, 1]
    assert f["mv"].shape == (14, 2, H // 8, W // 8)                       # stored per 8x8 cell
    mv = dense_mv(f["mv"], 8, H, W)
    assert mv.shape == (14, 2, H, W) and f["residual_acc"].shape == (14, H, W, 3)
    # the output arrays grow past a too-small size hint and give the same values
    v2 = extract(iter_pyav(encoded[(2, 0)]), expected_frames=3)
    for key in f:
        np.testing.assert_array_equal(v2.frames[key], f[key])
    assert len(v.iframes) == 2 and v.iframes[0].shape == (H, W, 3) and v.iframes[1].any()
    assert np.all(mv[0] == 128) and np.all(f["residual_acc"][12] == 128)
    mv3 = decode_mv(f["mv_acc"][3])[(slice(None), *INNER)]
    assert np.median(mv3[0]) == pytest.approx(-6, abs=20 / 127.5) and np.all(mv[3][1][INNER] == 128)
    assert mv[5].shape == (2, H, W) and f["residual"][5].shape == (H, W, 3)
    assert np.abs(f["residual"][5][INNER].astype(int) - 128).mean() < 2


def test_mvextractor_backend_gives_identical_vectors(encoded):
    ok, why = mvextractor_available()
    if not ok:
        pytest.skip(f"motion-vector-extractor is not installed ({why}); "
                    "pip install --no-deps motion-vector-extractor")
    for path in encoded.values():
        a, b = list(iter_pyav(path)), list(iter_mvextractor(path))
        assert [f.pict_type for f in a] == [f.pict_type for f in b]
        for fa, fb in zip(a, b):
            np.testing.assert_array_equal(fa.table, fb.table)
            np.testing.assert_array_equal(fa.image, fb.image)     # width 96: a multiple of 16, see backends.py
        va, vb = extract(iter(a)), extract(iter(b))
        for key in ("mv", "mv_acc"):
            np.testing.assert_array_equal(np.stack(va.frames[key]), np.stack(vb.frames[key]))


def test_codec_without_motion_vectors_is_a_clear_error(tmp_path):
    path = write_video(tmp_path / "intra.avi", translation_frames(4, 1, 0), 25, codec="ffv1")
    with pytest.raises(NoMotionVectorsError, match="ffv1.*exports no motion vectors.*reencode"):
        extract(iter_pyav(path))


def test_b_frames_are_refused_by_extraction(tmp_path):
    src = write_translation(tmp_path / "src.avi", 10, 1, 0)
    dst = tmp_path / "bframes.avi"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-c:v", "mpeg4", "-bf", "2",
                    "-g", "12", "-q:v", "2", str(dst)], check=True)
    assert "B" in picture_types(dst)
    with pytest.raises(GopError, match="B-frame"):
        extract(iter_pyav(dst))


def test_gop_check():
    check_gop("IPPPIPPPIP", 4)
    check_gop("IPP", 12)
    for bad in ("IPBP", "PPPP", "IPPIP", ""):
        with pytest.raises(Exception):
            check_gop(bad, 4)


def test_decoded_pixels_are_reproducible_when_width_is_not_a_multiple_of_8(tmp_path):
    """PyAV's rgba conversion left run-to-run garbage in the last width % 8 columns (the backend decodes to
    rgb24 since); mv-extractor's pixels agree with PyAV's there too."""
    src = write_translation(tmp_path / "src.avi", 8, 1.5, 0, width=100)
    dst = tmp_path / "w100.avi"
    reencode_file(src, dst, small_cfg(width=100))
    a, b = [f.image for f in iter_pyav(dst)], [f.image for f in iter_pyav(dst)]
    assert a[0].shape == (H, 100, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    ok, _ = mvextractor_available()
    if ok:
        for x, f in zip(a, iter_mvextractor(dst)):
            np.testing.assert_array_equal(x, f.image)
