"""Spatial views (pipeline/data/views.py) on frames whose pixels say where they came from: channel R holds
2 x (column), channel G 3 x (row), so a window, scale, position or mirror that is off by one pixel moves a
value by 2 or 3 and fails."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.data import views as V


def painted(h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: R = 2 x, G = 3 y, B = 0 (w <= 128, h <= 85)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([2 * x, 3 * y, np.zeros_like(x)], axis=-1).astype(np.uint8)


def expected(out: int, start: float, length: float, scale: float = 1.0) -> np.ndarray:
    """Source coordinate of the centres of ``out`` output pixels covering ``[start, start + length)`` of a
    frame resized by ``scale`` (1: the frame as it is), in the frame's own pixels."""
    u = start + (np.arange(out) + 0.5) * length / out - 0.5        # in the resized frame
    return (u + 0.5) / scale - 0.5


def coords(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns (W,), rows (H,)) the output pixels show: R / 2 along the first row, G / 3 down the first column."""
    return img[img.shape[0] // 2, :, 0] / 2.0, img[:, img.shape[1] // 2, 1] / 3.0


def test_corner_crop_positions_and_scales():
    """MARS: a square of int(short * scale) at the centre or flush with a corner, resized to out."""
    h, w = 64, 96
    frame = painted(h, w)
    for pos, (x0, y0) in {"tl": (0, 0), "tr": (96 - 32, 0), "bl": (0, 32), "br": (64, 32),
                          "c": ((96 - 32) // 2, (64 - 32) // 2)}.items():
        g = V.geometry(V.View("corner", 16, 0.5, 0.5, pos), h, w)
        assert g.box == (x0, y0, 32, 32) and g.resize is None
        xs, ys = coords(V.apply(frame, g))
        np.testing.assert_allclose(xs, expected(16, x0, 32), atol=0.5)
        np.testing.assert_allclose(ys, expected(16, y0, 32), atol=0.5)
    g = V.geometry(V.View("corner", 16, 2 ** -0.25, 2 ** -0.25, "c"), h, w)
    assert g.box[2:] == (int(64 * 2 ** -0.25),) * 2 == (53, 53)
    g = V.geometry(V.View("corner", 32, 1.0, 1.0, "tr"), h, w)   # scale 1: the whole short side
    assert g.box == (32, 0, 64, 64)
    # MARS's centre: W // 2 - side // 2 (340 wide, side int(256 * 2^-1/4) = 215: 63, not (340 - 215) // 2 = 62)
    g = V.geometry(V.View("corner", 112, 2 ** -0.25, 2 ** -0.25, "c"), 256, 340)
    assert g.box == (63, 21, 215, 215)


def test_short_side_resize_then_centre_crop_is_marss_test_view():
    """Short side -> out (long side int(out * long / short), as MARS's Scale), centre crop of out with
    int(round((W - out) / 2))."""
    frame = painted(64, 96)
    (view,) = V.test_views("short_center", 32)
    g = V.geometry(view, 64, 96)
    assert g.resize == (48, 32) and g.box == (8, 0, 32, 32)
    xs, ys = coords(V.apply(frame, g))
    np.testing.assert_allclose(xs, expected(32, 8, 32, scale=0.5), atol=0.5)
    np.testing.assert_allclose(ys, expected(32, 0, 32, scale=0.5), atol=0.5)
    assert V.short_side_size(256, 340, 112) == (148, 112)      # int(112 * 340 / 256) = 148, not 149
    assert V.geometry(V.test_views("short_center", 112)[0], 256, 340).box == (18, 0, 112, 112)
    assert V.short_side_size(340, 256, 112) == (112, 148)      # portrait


def test_squash_and_window_views():
    frame = painted(64, 96)
    (view,) = V.test_views("squash_center", 32, (40, 40))
    g = V.geometry(view, 64, 96)
    assert g.resize == (40, 40) and g.box == (4, 4, 32, 32)
    xs, ys = coords(V.apply(frame, g))
    np.testing.assert_allclose(xs, expected(32, 4, 32, scale=40 / 96), atol=0.6)
    np.testing.assert_allclose(ys, expected(32, 4, 32, scale=40 / 64), atol=0.6)
    (view,) = V.test_views("window", 32)
    g = V.geometry(view, 64, 96)
    assert g.box == (32, 16, 32, 32)
    np.testing.assert_array_equal(V.apply(frame, g), frame[16:48, 32:64])       # a copy, no resampling
    small = V.apply(frame[:20, :20], V.geometry(view, 20, 20))             # smaller frame: edge-padded
    assert small.shape == (32, 32, 3) and small[0, 0, 0] == 0 and small[-1, -1, 0] == 38


def test_mirror_reverses_columns_only():
    frame = painted(64, 96)
    for view in (V.View("corner", 16, 0.5, 0.5, "br"), V.test_views("short_center", 32)[0]):
        plain = V.apply(frame, V.geometry(view, 64, 96))
        mirrored = V.apply(frame, V.geometry(V.View(**{**view.__dict__, "flip": True}), 64, 96))
        np.testing.assert_array_equal(mirrored, plain[:, ::-1])


def test_ten_crop_views_are_tsns_five_positions_each_mirrored():
    views = V.test_views("ten_crop", 224, 256)
    assert len(views) == 10 and [v.flip for v in views] == [False] * 5 + [True] * 5
    boxes = [V.geometry(v, 256, 340).box for v in views]
    # CoViAR / TSN: steps (340 - 224) // 4 = 29 and (256 - 224) // 4 = 8; corners at 0 and 4 steps, centre 2
    assert boxes[:5] == [(58, 16, 224, 224), (0, 0, 224, 224), (116, 0, 224, 224), (0, 32, 224, 224),
                         (116, 32, 224, 224)]
    assert boxes[5:] == boxes[:5]
    frame = painted(64, 96)
    small = V.test_views("ten_crop", 32, 48)            # short side 64 -> 48 (W 72), then 32 crops
    g = V.geometry(small[2], 64, 96)                     # top-right
    assert g.resize == (72, 48) and g.box == (40, 0, 32, 32)
    xs, _ = coords(V.apply(frame, g))
    np.testing.assert_allclose(xs, expected(32, 40, 32, scale=72 / 96), atol=0.6)
    xm, _ = coords(V.apply(frame, V.geometry(small[7], 64, 96)))
    np.testing.assert_allclose(xm, xs[::-1])


def test_squash_ten_crop_is_coviars_oversample():
    """CoViAR's GroupOverSample(224, 256): the frame squashed to 256 x 256, then TSN's five positions."""
    views = V.test_views("squash_ten_crop", 224, 256)
    boxes = [V.geometry(v, 256, 340) for v in views]
    assert all(g.resize == (256, 256) for g in boxes)
    assert [g.box[:2] for g in boxes[:5]] == [(16, 16), (0, 0), (32, 0), (0, 32), (32, 32)]
    assert [v.flip for v in views] == [False] * 5 + [True] * 5


def test_random_multiscale_offsets_cover_the_frame():
    rng = np.random.default_rng(3)
    xs, ys = set(), set()
    for _ in range(3000):
        v = V.sample_multiscale(rng, 224, (1.0, 0.875, 0.75), positions="random")
        g = V.geometry(v, 256, 340)
        x0, y0, cw, ch = g.box
        assert 0 <= x0 <= 340 - cw and 0 <= y0 <= 256 - ch
        if cw == 224:
            xs.add(x0)
        if ch == 224:
            ys.add(y0)
    assert xs == set(range(0, 340 - 224 + 1)) and ys == set(range(0, 256 - 224 + 1))   # every offset


def test_multiscale_crop_is_tsns():
    """Width and height each int(short * scale), sizes within 3 px of out snapped to out, fixed positions."""
    g = V.geometry(V.View("multiscale", 224, 0.875, 1.0, "br"), 256, 340)
    assert g.box[2:] == (224, 256)                       # int(256 * .875) = 224 wide, 256 high
    x0, y0 = V.fixed_offsets(256, 340, 256, 224)["br"]
    assert g.box[:2] == (x0, y0) == (4 * ((340 - 224) // 4), 0)
    g = V.geometry(V.View("multiscale", 224, 0.88, 0.88, "c"), 256, 340)    # int(225.28) = 225 -> 224
    assert g.box[2:] == (224, 224)


def test_samplers_draw_every_scale_and_position_evenly():
    rng = np.random.default_rng(0)
    draws = [V.sample_corner(rng, 112) for _ in range(5000)]
    scales = np.array([d.scale_w for d in draws])
    assert all(d.scale_w == d.scale_h for d in draws)
    for s in V.MARS_SCALES:
        assert abs(np.mean(np.isclose(scales, s)) - 0.2) < 0.025
    for p in V.POSITIONS:
        assert abs(np.mean([d.position == p for d in draws]) - 0.2) < 0.025
    assert np.allclose(sorted(set(scales.tolist())), sorted(2 ** (-k / 4) for k in range(5)))
    scales4 = (1.0, 0.875, 0.75, 0.66)
    ms = [V.sample_multiscale(rng, 224, scales4, max_distort=1) for _ in range(4000)]
    pairs = {(scales4.index(d.scale_w), scales4.index(d.scale_h)) for d in ms}
    assert pairs == {(i, j) for i in range(4) for j in range(4) if abs(i - j) <= 1}      # 10 pairs
    counts = np.array([sum((scales4.index(d.scale_w), scales4.index(d.scale_h)) == p for d in ms)
                       for p in sorted(pairs)])
    assert counts.min() > 0.07 * len(ms) and counts.max() < 0.13 * len(ms)                # uniform over pairs


@pytest.mark.parametrize("view", [V.View("corner", 32, 1.0, 1.0, "tr"), V.test_views("short_center", 32)[0],
                                  V.View("corner", 16, 0.5, 0.5, "bl", flip=True)])
def test_reduced_jpeg_decoding_gives_the_same_view(view):
    """Decoding at 1/r (libjpeg DCT scaling) and interpolating gives the view of the full decode: the same
    positions (a pixel off would shift R by 2), values within JPEG noise."""
    frame = painted(64, 96)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 100])
    g = V.geometry(view, 64, 96)
    r = V.reduction(g)
    assert r == 2
    full = V.apply(cv2.imdecode(buf, cv2.IMREAD_COLOR), g)
    small = cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_2)
    assert small.shape[:2] == (32, 48)
    reduced = V.apply(small, g, r)
    xs_f, ys_f = coords(full)
    xs_r, ys_r = coords(reduced)
    np.testing.assert_allclose(xs_r, xs_f, atol=1.0)
    np.testing.assert_allclose(ys_r, ys_f, atol=1.0)


def test_reduction_is_the_largest_the_output_allows():
    assert V.reduction(V.geometry(V.test_views("short_center", 112)[0], 256, 340)) == 2     # 256 -> 112
    assert V.reduction(V.geometry(V.View("corner", 112, 1.0, 1.0, "c"), 256, 340)) == 2     # 256 -> 112
    assert V.reduction(V.geometry(V.View("corner", 112, 0.5, 0.5, "c"), 256, 340)) == 1     # 128 -> 112
    assert V.reduction(V.geometry(V.View("corner", 28, 1.0, 1.0, "c"), 256, 340)) == 8      # 256 -> 28
    assert V.reduction(V.geometry(V.View("corner", 28, 1.0, 1.0, "c"), 256, 340), limit=4) == 4
    assert V.reduction(V.geometry(V.test_views("window", 112)[0], 256, 340)) == 1           # no resize


def test_unknown_views_are_refused():
    with pytest.raises(ValueError, match="train view"):
        V.train_view("random", np.random.default_rng(0), 112, V.MARS_SCALES, 1, False)
    with pytest.raises(ValueError, match="test view"):
        V.test_views("three_crop", 112)
    with pytest.raises(ValueError, match="smaller"):
        V.geometry(V.test_views("squash_center", 64, (40, 40))[0], 64, 96)
