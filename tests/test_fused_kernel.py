"""The fused C kernel of extract_mv equals the numpy/OpenCV definitions bit for bit: on random arrays with odd
sizes, partial cells, vectors far outside the frame and saturating accumulations, and on real decodes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.compressed import fused
from pipeline.compressed.encoding import encode_mv_units, encode_residual_of, mv_lut
from pipeline.compressed.extract import ArrayPool, extract
from pipeline.compressed.motion import MotionError, accumulate_cells, block_grid, expand_grid
from pipeline.compressed.residual import SubpelReference, compensate_cells
from pipeline.compressed.mpeg4 import reencode_file

from .compressed_fixtures import small_cfg, write_translation

ok, why = fused.available()
pytestmark = pytest.mark.skipif(not ok and "MOTIONPREP_FUSED" in why, reason=why)


def test_the_extension_is_built():
    """`pip install` compiles it; a missing build would silently cost the stage 2x, so it is a failure here."""
    assert fused.available() == (True, ""), fused.available()[1]


def reference_p_frame(img, prev, iframe, grid, g, scale, acc_prev, bound):
    """What the kernel must produce, from the definitions (the extract() OpenCV path, function by function)."""
    h, w = img.shape[:2]
    units = expand_grid(grid, g, h, w)
    res = encode_residual_of(img, compensate_cells(prev, grid, g, scale))
    if acc_prev is None:
        acc, res_acc = units, res
    else:
        acc = accumulate_cells(acc_prev, units, grid, g, scale)
        res_acc = encode_residual_of(img, SubpelReference(iframe, scale).predict_units(acc))
    return acc, encode_mv_units(grid, scale, bound), encode_mv_units(acc, scale, bound), res, res_acc


def run_kernel(img, prev, iframe, grid, g, scale, acc_prev, bound):
    h, w = img.shape[:2]
    lut, off = mv_lut(scale, bound)
    acc = np.full((h, w, 2), 7, np.int16)
    mv = np.zeros((2, *grid.shape[:2]), np.uint8)
    mv_acc, res, res_acc = (np.zeros(s, np.uint8) for s in ((2, h, w), (h, w, 3), (h, w, 3)))
    phases = None if acc_prev is None else fused.subpel_phases(iframe, scale)
    fused.p_frame(img, prev, grid, g, scale, acc_prev, phases, lut, off, acc, mv, mv_acc, res, res_acc)
    return acc, mv, mv_acc, res, res_acc


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("g", [8, 16])
def test_p_frame_equals_the_definitions_on_random_arrays(scale, g):
    rng = np.random.default_rng(100 * scale + g)
    names = ("acc", "mv", "mv_acc", "residual", "residual_acc")
    for case, (h, w, lim, acc_lim) in enumerate([(37, 53, 9, 60),          # odd sizes, partial cells
                                                 (64, 96, 4 * scale, 30),   # small motion: SIMD paths
                                                 (45, 100, 700, 400),       # far outside the frame
                                                 (24, 40, 3, 32767)]):      # saturating accumulation
        img, prev, iframe = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3))
        img[:3] = 255                       # residuals that clip at both ends
        prev[:3] = 0
        grid = rng.integers(-lim, lim + 1, (-(-h // g), -(-w // g), 2)).astype(np.int16)
        acc_prev = rng.integers(-acc_lim, acc_lim + 1, (h, w, 2)).astype(np.int16)
        for bound in (20.0, 31.0, 7.3):     # 7.3: no fixed-point form, every value looked up
            for a in (None, acc_prev):
                want = reference_p_frame(img, prev, iframe, grid, g, scale, a, bound)
                got = run_kernel(img, prev, iframe, grid, g, scale, a, bound)
                for name, x, y in zip(names, want, got):
                    np.testing.assert_array_equal(y, x, err_msg=f"case {case}, bound {bound}, "
                                                  f"first={a is None}: {name}")


@pytest.mark.parametrize("scale,channels", [(2, 3), (2, 4), (4, 3), (1, 3)])
def test_subpel_phases_equal_the_reference(scale, channels):
    rng = np.random.default_rng(scale * channels)
    for h, w in ((13, 22), (1, 1), (2, 6), (3, 7), (4, 340)):     # widths around the 16-byte SIMD steps
        frame = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        np.testing.assert_array_equal(fused.subpel_phases(frame, scale), SubpelReference(frame, scale).upsampled,
                                      err_msg=f"{w}x{h}")


def table(rows):
    return np.array([(-1, *r) for r in rows], np.int32)


def test_cell_grid_equals_block_grid_repeated_onto_8_pixel_cells():
    rng = np.random.default_rng(3)
    h, w = 70, 100                                          # partial macroblocks at the right and bottom
    rows = []
    for y in range(0, h, 16):
        for x in range(0, w, 16):
            if rng.random() < 0.3:                          # four-vector macroblock: four 8x8 blocks
                rows += [(8, 8, x + dx + 4, y + dy + 4, *rng.integers(-90, 90, 2), 2)
                         for dy in (0, 8) for dx in (0, 8)]
            elif rng.random() < 0.9:                        # else intra: no vector (cells stay 0)
                rows.append((16, 16, x + 8, y + 8, *rng.integers(-90, 90, 2), 2))
    rows.append((16, 16, -8 + 8, 64 + 8, 5, 5, 2))          # a block reaching below the frame
    t = table(rows)
    grid, g = block_grid(t, h, w, 2)
    want = expand_grid(grid, g, -(-h // 8) * 8, -(-w // 8) * 8)[::8, ::8]
    np.testing.assert_array_equal(fused.cell_grid(t, h, w, 2, 8), want)
    quarter = t.copy()
    quarter[:, 5:7] *= 2
    quarter[:, 7] = 4                                       # quarter-pel units scaled onto a 1/4 field
    np.testing.assert_array_equal(fused.cell_grid(quarter, h, w, 4, 8), want * 2)
    np.testing.assert_array_equal(fused.cell_grid(np.zeros((0, 8), np.int32), h, w, 2, 8), 0 * want)


def test_cell_grid_errors_name_the_problem():
    with pytest.raises(MotionError, match="future frame"):
        fused.cell_grid(np.array([[1, 16, 16, 8, 8, 0, 0, 2]], np.int32), 16, 16, 2, 8)
    with pytest.raises(MotionError, match="motion_scale"):
        fused.cell_grid(table([(16, 16, 8, 8, 1, 1, 4)]), 16, 16, 2, 8)
    with pytest.raises(MotionError, match="whole 8x8"):
        fused.cell_grid(table([(4, 4, 2, 2, 1, 1, 2)]), 16, 16, 2, 8)


def test_p_frame_refuses_wrong_arrays():
    img = np.zeros((16, 16, 3), np.uint8)
    lut, off = mv_lut(2)
    outs = (np.zeros((16, 16, 2), np.int16), np.zeros((2, 2, 2), np.uint8), np.zeros((2, 16, 16), np.uint8),
            np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
    grid = np.zeros((2, 2, 2), np.int16)
    with pytest.raises(ValueError, match="res_out"):
        fused.p_frame(img, img, grid, 8, 2, None, None, lut, off, *outs[:3], outs[3][:, ::2], outs[4])
    with pytest.raises(ValueError, match="does not cover"):
        fused.p_frame(img, img, grid[:1], 8, 2, None, None, lut, off, *outs)
    with pytest.raises(ValueError, match="different arrays"):
        fused.p_frame(img, img, grid, 8, 2, outs[0], np.zeros((32, 32, 3), np.uint8), lut, off, *outs)


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("MOTIONPREP_FUSED", "0")
    assert fused.available() == (False, "turned off by MOTIONPREP_FUSED=0")
    with pytest.raises(RuntimeError, match="MOTIONPREP_FUSED"):
        extract(iter([]), fused=True)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """MPEG-4 re-encodes: a half-pel translation at 100x68 (partial 8x8 cells at the right and bottom) and
    a fast one (vectors reaching outside the frame), 26 frames = 3 GOPs each."""
    d = tmp_path_factory.mktemp("fused")
    out = []
    for (dx, dy), (w, h) in (((1.5, -1), (100, 68)), ((5.5, 3), (96, 64))):
        src = write_translation(d / f"src_{dx}.avi", 26, dx, dy, width=w, height=h)
        reencode_file(src, d / f"mpeg4_{dx}.avi", small_cfg(w, h))
        out.append(d / f"mpeg4_{dx}.avi")
    return out


def test_extract_fused_equals_opencv_on_real_decodes(encoded):
    """Every stream of real MPEG-4 decodes is identical with and without the kernel, and a pool reused
    across videos (and grown while running) changes nothing."""
    from pipeline.compressed.backends import iter_pyav
    pool = ArrayPool()
    for path in encoded:
        frames = list(iter_pyav(path))
        want = extract(iter(frames), fused=False)
        got = extract(iter(frames), fused=True, pool=pool, expected_frames=3)    # grows while running
        assert got.num_frames == want.num_frames > 12
        for key in want.frames:
            np.testing.assert_array_equal(got.frames[key], want.frames[key], err_msg=f"{path.name}: {key}")
        for a, b in zip(got.iframes, want.iframes):
            np.testing.assert_array_equal(a, b)
