"""Pure compressed-domain algorithms on synthetic arrays (no video): dense maps, accumulation,
motion compensation, residual identity, CoViAR encodings."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.compressed.encoding import (decode_mv, decode_residual, encode_mv, encode_mv_units,
                                          encode_residual, encode_residual_of)
from pipeline.compressed.motion import (MotionError, accumulate, accumulate_units, dense_motion, dense_units,
                                        pixels_to_units)
from pipeline.compressed.residual import SubpelReference, compensate, compensate_reference, residual


def table(rows):
    """rows of (w, h, dst_x, dst_y, motion_x, motion_y, scale) -> (N, 8) past-reference table."""
    return np.array([(-1, *r) for r in rows], np.int32)


def grid_table(h, w, mx, my, block=16, scale=2):
    rows = [(block, block, x + block // 2, y + block // 2, mx, my, scale)
            for y in range(0, h, block) for x in range(0, w, block)]
    return table(rows)


def test_dense_fills_blocks_including_partial_border_blocks():
    t = table([(16, 16, 8, 8, -4, 2, 2), (16, 16, 24, 8, 3, 0, 2), (8, 8, 4, 20, 1, -1, 2),
               (16, 16, 40, 24, 6, 6, 2)])
    d = dense_motion(t, 30, 44)            # 44 is not a multiple of 16: the last block is cut
    assert d.shape == (2, 30, 44) and d.dtype == np.float32
    assert np.all(d[:, :16, :16] == np.array([-2, 1])[:, None, None])
    assert np.all(d[:, :16, 16:32] == np.array([1.5, 0])[:, None, None])
    assert np.all(d[:, 16:24, 0:8] == np.array([0.5, -0.5])[:, None, None])
    assert np.all(d[:, 24:30, 0:8] == 0)          # no vector (intra block): zero motion
    assert np.all(d[:, 16:30, 32:44] == 3)


def test_dense_quarter_pel_and_errors():
    d = dense_motion(table([(16, 16, 8, 8, 5, -3, 4)]), 16, 16)
    assert np.all(d[0] == 1.25) and np.all(d[1] == -0.75)
    with pytest.raises(MotionError, match="B-frame"):
        dense_units(np.array([[1, 16, 16, 8, 8, 2, 2, 2]], np.int32), 16, 16)
    with pytest.raises(MotionError):
        dense_units(table([(16, 16, 8, 8, 1, 1, 4)]), 16, 16, scale=2)


def test_accumulated_global_translation_is_k_times_motion():
    h, w = 64, 96
    m = dense_motion(grid_table(h, w, -3, 2), h, w)   # (-1.5, 1) px per frame
    acc = None
    for k in range(1, 12):
        acc = accumulate(acc, m)
        inner = acc[:, 20:44, 30:66]
        assert np.all(inner[0] == -1.5 * k) and np.all(inner[1] == 1.0 * k)


def test_accumulation_follows_the_motion_path():
    # frame 1: everything moves by +4 px in x (vector -4); frame 2: only the right half has a vector
    h, w = 16, 64
    m1 = np.zeros((2, h, w), np.float32)
    m1[0] = -4
    m2 = np.zeros((2, h, w), np.float32)
    m2[0, :, 32:] = -8
    acc = accumulate(accumulate(None, m1), m2)
    assert np.all(acc[0, :, 40:] == -12)          # traced to x-8 (inside the shifted area) then -4 more
    assert np.all(acc[0, :, :32] == -4)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [3, 4])
def test_compensation_matches_numpy_definition(scale, channels):
    rng = np.random.default_rng(scale)
    ref = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)   # odd size
    motion = (rng.integers(-30, 30, (2, 37, 53)) / scale).astype(np.float32)
    np.testing.assert_array_equal(compensate(ref, motion, scale), compensate_reference(ref, motion, scale))


def test_half_pel_rounding_rule():
    ref = np.zeros((2, 3, 3), np.uint8)
    ref[0, :, 0] = [0, 1, 10]
    ref[1, :, 0] = [3, 4, 13]
    m = np.zeros((2, 2, 3), np.float32)
    m[0] = 0.5
    got = compensate(ref, m)[..., 0]
    assert got[0].tolist() == [1, 6, 10]          # (0+1+1)>>1, (1+10+1)>>1, edge replicated
    m[1] = 0.5
    got = compensate(ref, m)[..., 0]
    assert got[0, 0] == (0 + 1 + 3 + 4 + 2) >> 2


def test_frame_equals_prediction_plus_residual_exactly():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    frame = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    motion = (rng.integers(-9, 9, (2, 32, 48)) / 2).astype(np.float32)
    pred = compensate(ref, motion)
    res = residual(frame, pred)
    assert res.dtype == np.int16
    np.testing.assert_array_equal(pred.astype(np.int16) + res, frame)
    np.testing.assert_array_equal(encode_residual_of(frame, pred), encode_residual(res))


def test_subpel_reference_units_path_equals_float_path():
    rng = np.random.default_rng(2)
    ref = rng.integers(0, 256, (24, 40, 4), dtype=np.uint8)
    motion = (rng.integers(-9, 9, (2, 24, 40)) / 2).astype(np.float32)
    sr = SubpelReference(ref, 2)
    np.testing.assert_array_equal(sr.predict_units(pixels_to_units(motion, 2)), compensate(ref, motion))
    u = pixels_to_units(motion, 2)
    np.testing.assert_array_equal(accumulate_units(u, u, 2), pixels_to_units(accumulate(motion, motion), 2))


def test_coviar_encodings():
    v = np.array([0.0, 0.5, -0.5, 1.0, 20.0, -20.0, 25.0, -100.0, 19.9])
    q = encode_mv(v)
    # trunc(v * 6.375) + 128, clipped to +-20 first
    assert q.tolist() == [128, 131, 125, 134, 255, 1, 255, 1, 254]
    assert np.all(np.abs(decode_mv(q) - np.clip(v, -20, 20)) <= 20 / 127.5 + 1e-6)
    res = np.array([-300, -128, -1, 0, 1, 127, 128, 255], np.int32)
    assert encode_residual(res).tolist() == [0, 0, 127, 128, 129, 255, 255, 255]
    assert decode_residual(encode_residual(np.arange(-128, 128))).tolist() == list(range(-128, 128))
    rng = np.random.default_rng(3)
    for scale in (2, 4):
        units = rng.integers(-120, 120, (8, 9, 2)).astype(np.int16)
        px = units.transpose(2, 0, 1) / scale
        np.testing.assert_array_equal(encode_mv_units(units, scale), encode_mv(px))


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [3, 4])
def test_block_remap_compensation_is_bit_exact(scale, channels):
    """compensate_cells (one bilinear cv2.remap, fixed-point maps) equals the numpy definition, with
    partial border cells, odd sizes and vectors far outside the frame."""
    from pipeline.compressed.motion import expand_grid
    from pipeline.compressed.residual import compensate_cells
    rng = np.random.default_rng(10 * scale + channels)
    for g, lim in ((8, 8), (16, 60), (8, 600)):
        h, w = int(rng.integers(9, 70)), int(rng.integers(9, 90))
        ref = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        grid = rng.integers(-lim, lim, (-(-h // g), -(-w // g), 2)).astype(np.int16)
        motion = expand_grid(grid, g, h, w).transpose(2, 0, 1) / scale
        np.testing.assert_array_equal(compensate_cells(ref, grid, g, scale),
                                      compensate_reference(ref, motion, scale))


def test_block_accumulation_equals_dense_accumulation():
    from pipeline.compressed.motion import accumulate_cells, expand_grid
    rng = np.random.default_rng(4)
    for scale, g in ((2, 8), (2, 16), (4, 8)):
        h, w = 37, 53
        grid = rng.integers(-50, 50, (-(-h // g), -(-w // g), 2)).astype(np.int16)
        units = expand_grid(grid, g, h, w)
        prev = rng.integers(-200, 200, (h, w, 2)).astype(np.int16)
        np.testing.assert_array_equal(accumulate_cells(prev, units, grid, g, scale),
                                      accumulate_units(prev, units, scale))


def test_mv_encoding_saturates_like_the_clip():
    units = np.array([[[-32000, 32000], [-41, 41]], [[-40, 40], [255, -256]]], np.int16)
    for scale in (2, 4):
        np.testing.assert_array_equal(encode_mv_units(units, scale), encode_mv(units.transpose(2, 0, 1) / scale))


def test_gather32_keeps_every_bit_pattern():
    """The float32 gather copies int16 pairs and RGBX pixels whose bits are NaNs and infinities unchanged."""
    from pipeline.compressed.motion import gather32
    rng = np.random.default_rng(5)
    pairs = rng.integers(-32768, 32768, (20, 30, 2)).astype(np.int16)
    pairs[:4, :, 1] = np.arange(-128, 0, 4)[:, None].repeat(30, 1)[:4]     # high half 0xFF80..: NaN bits
    pairs[4, :5] = [(1, 0x7F80), (0, 0x7FC0), (0, -128), (-1, -1), (0, 0x7F80)]
    rgbx = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    rgbx[..., 3] = 255
    pos = np.stack(np.meshgrid(np.arange(30), np.arange(20)), -1).astype(np.int16)
    pos = pos + rng.integers(-40, 40, pos.shape).astype(np.int16)
    for img in (pairs, rgbx):
        x, y = np.clip(pos[..., 0], 0, 29), np.clip(pos[..., 1], 0, 19)
        np.testing.assert_array_equal(gather32(img, pos), img[y, x])
