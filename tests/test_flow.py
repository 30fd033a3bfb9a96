"""TV-L1 backends (direction, magnitude, parity), quantization, flip rule and colour coding.

Frames are 64x64 so one TV-L1 pair costs well under a second on a busy CPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.flow import dequantize, flip_flow_horizontally, flip_x, quantize, tvl1, tvl1_batch, tvl1_params
from pipeline.flow.torch_tvl1 import pyramid_sizes
from pipeline.flow.visualize import flow_to_color

SIZE = 64
PAD = 12


def texture(seed: int = 0, size: int = SIZE + 2 * PAD) -> np.ndarray:
    """A smooth random texture, float32 in [0, 255], with detail at two scales."""
    rng = np.random.default_rng(seed)
    a = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.5)
    b = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 4.0)
    t = a + 2 * b
    return (t - t.min()) / (t.max() - t.min()) * 255


def warp_pair(matrix: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prev, next, true flow) where next(p) = prev(A^-1 p): content moves by A, flow(p) = A p - p."""
    big = texture(seed)
    nxt = cv2.warpAffine(big, matrix, big.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    crop = (slice(PAD, PAD + SIZE), slice(PAD, PAD + SIZE))
    ys, xs = np.mgrid[0:big.shape[0], 0:big.shape[1]].astype(np.float64)
    fx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] - xs
    fy = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] - ys
    truth = np.stack([fx, fy], axis=-1)[crop].astype(np.float32)
    as_u8 = lambda im: np.clip(np.rint(im[crop]), 0, 255).astype(np.uint8)  # noqa: E731
    return as_u8(big), as_u8(nxt), truth


SHIFT = np.float32([[1, 0, 1.3], [0, 1, -0.6]])
ROT = cv2.getRotationMatrix2D(((SIZE + 2 * PAD - 1) / 2, (SIZE + 2 * PAD - 1) / 2), 3.0, 1.0).astype(np.float32)
INNER = (slice(8, SIZE - 8), slice(8, SIZE - 8))


def epe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


@pytest.fixture(scope="module")
def pairs():
    return [warp_pair(SHIFT, 0), warp_pair(ROT, 1)]


@pytest.fixture(scope="module")
def opencv_flows(pairs):
    return [tvl1(a, b, backend="opencv") for a, b, _ in pairs]


@pytest.fixture(scope="module")
def torch_flows(pairs):
    prev = np.stack([p[0] for p in pairs])
    nxt = np.stack([p[1] for p in pairs])
    return tvl1_batch(prev, nxt, backend="torch", device="cpu", batch_size=2)


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_subpixel_translation_direction_and_magnitude(backend, pairs, opencv_flows, torch_flows):
    flow = (opencv_flows if backend == "opencv" else torch_flows)[0]
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    med = np.median(flow[INNER].reshape(-1, 2), axis=0)
    assert med == pytest.approx([1.3, -0.6], abs=0.08)
    assert epe(flow[INNER], pairs[0][2][INNER]) < 0.15


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_rotation_direction_and_magnitude(backend, pairs, opencv_flows, torch_flows):
    flow = (opencv_flows if backend == "opencv" else torch_flows)[1]
    truth = pairs[1][2]
    assert epe(flow[INNER], truth[INNER]) < 0.25
    # counter-clockwise on screen (y down): the top of the image moves left, the bottom right
    assert flow[10:14, 24:40, 0].mean() < -0.8 and flow[-14:-10, 24:40, 0].mean() > 0.8


def test_torch_matches_opencv(opencv_flows, torch_flows):
    for ref, got in zip(opencv_flows, torch_flows):
        assert epe(got, ref) < 0.05
        close = np.abs(quantize(got).astype(int) - quantize(ref).astype(int)) <= 1
        assert close.mean() >= 0.99


def test_torch_batch_equals_single_pairs(pairs, torch_flows):
    a, b, _ = pairs[1]
    single = tvl1(a, b, backend="torch", device="cpu")
    np.testing.assert_allclose(single, torch_flows[1], atol=1e-4)


def test_float_frames_follow_opencv_scale(pairs, opencv_flows):
    a, b, _ = pairs[0]
    f = tvl1(a.astype(np.float32) / 255, b.astype(np.float32) / 255, backend="opencv")
    assert epe(f, opencv_flows[0]) < 1e-3


def test_parameter_names_and_errors():
    assert tvl1_params()["inner_iterations"] == 30
    with pytest.raises(TypeError, match="lambda_"):
        tvl1_params(**{"lambda": 0.1})
    with pytest.raises(TypeError, match="unknown"):
        tvl1_params(iterations=3)
    with pytest.raises(ValueError, match="backend"):
        tvl1(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), backend="cuda")
    with pytest.raises(ValueError, match="grayscale"):
        tvl1(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8))


def test_pyramid_sizes_follow_opencv():
    assert pyramid_sizes(256, 340, 5, 0.8) == [(256, 340), (205, 272), (164, 218), (131, 174), (105, 139)]
    assert pyramid_sizes(24, 64, 5, 0.8) == [(24, 64), (19, 51)]  # stops before a side drops below 16


# -- quantization --------------------------------------------------------------------------------------------

def test_quantize_edges_and_clipping():
    v = np.array([-100.0, -20.0, -19.99, 0.0, 19.99, 20.0, 20.01, 1e9, -np.inf])
    assert quantize(v).tolist() == [0, 0, 0, 128, 255, 255, 255, 255, 0]
    assert quantize(np.float32(-1e-4)) == 127  # just below a half rounds down
    assert quantize(np.float32(0.0)).dtype == np.uint8


def test_quantize_rounds_exact_halves_up():
    # with bound 127.5 the scale is exactly 1: q = floor(v + 128), so integers are exact halves
    v = np.array([-3.0, -1.0, 0.0, 1.0, 2.0])
    assert quantize(v, bound=127.5).tolist() == [125, 127, 128, 129, 130]
    assert quantize(np.array([0.0]), bound=20).tolist() == [128]  # zero flow: 127.5 -> 128


def test_dequantize_is_bin_centre():
    q = np.arange(256, dtype=np.uint8)
    v = dequantize(q)
    assert v[0] == pytest.approx(-20.0) and v[255] == pytest.approx(20.0)
    assert v[128] == pytest.approx(0.5 * 40 / 255)
    assert np.all(np.abs(dequantize(quantize(np.linspace(-20, 20, 1001))) - np.linspace(-20, 20, 1001)) <= 20 / 255 + 1e-6)


def test_flip_rule_negates_x_about_127_5():
    q = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(dequantize(flip_x(q)), -dequantize(q), atol=1e-5)
    fx, fy = flip_flow_horizontally(q, q)
    assert fx[0, 0] == 255 - q[0, 15] and fy[0, 0] == q[0, 15]
    with pytest.raises(TypeError):
        flip_x(q.astype(np.float32))


def test_middlebury_colours():
    flow = np.zeros((3, 3, 2), np.float32)
    assert (flow_to_color(flow) == 255).all()  # zero flow is white
    right = flow_to_color(np.array([[[1.0, 0.0]]]), max_flow=1.0)[0, 0]
    up = flow_to_color(np.array([[[0.0, -1.0]]]), max_flow=1.0)[0, 0]
    assert right[0] == 255 and right[1] < 40          # right is red
    assert up[2] == 255 and up[1] < 40                # up is blue / violet


@pytest.mark.parametrize("k", [3, 5])
def test_torch_median_equals_opencv(k):
    import torch

    from pipeline.flow.torch_tvl1 import median_blur
    rng = np.random.default_rng(k)
    x = rng.integers(0, 6, (3, 17, 23)).astype(np.float32)  # many ties
    x[1] = rng.standard_normal((17, 23)).astype(np.float32) * 5
    ref = np.stack([cv2.medianBlur(a, k) for a in x])
    np.testing.assert_array_equal(median_blur(torch.from_numpy(x), k).numpy(), ref)


def test_torch_result_independent_of_batching_and_sync_interval(pairs):
    """Converged pairs are frozen and compacted out: batch composition and how often the host checks for
    convergence (every iteration on CPU, every 10 on CUDA) must not change any pair's flow."""
    import torch

    from pipeline.flow.torch_tvl1 import Params, cost_model, tvl1_torch
    prev = torch.from_numpy(np.stack([pairs[0][0], pairs[1][0], pairs[0][1]]).astype(np.float32))
    nxt = torch.from_numpy(np.stack([pairs[0][1], pairs[1][1], pairs[0][1]]).astype(np.float32))  # 3rd: same frame
    prm = Params(nscales=3, warps=3)
    work = torch.zeros(3, dtype=torch.float64)
    every_1 = tvl1_torch(prev, nxt, prm, check_every=1, work=work)
    every_7 = tvl1_torch(prev, nxt, prm, check_every=7)
    single = torch.cat([tvl1_torch(prev[i:i + 1], nxt[i:i + 1], prm) for i in range(3)])
    torch.testing.assert_close(every_7, every_1, atol=1e-5, rtol=0)
    torch.testing.assert_close(single, every_1, atol=1e-5, rtol=0)
    assert float(every_1[2].abs().max()) == 0.0          # identical frames: zero flow
    worst = cost_model(SIZE, SIZE, prm)["pixel_iterations"]
    assert work[2] < work[0] <= worst                     # the trivial pair stopped first
