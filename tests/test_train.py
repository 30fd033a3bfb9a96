"""Training: the losses, MERS' frozen parts, a tiny real run that learns, resume, DDP on the CPU, checkpoints,
the validation split and the epoch order. Every run trains a real (tiny) network on real HDF5 shards."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.core.config import ClipsConfig, EvaluateConfig, TrainConfig, effective_recipe, recipe_defaults
from pipeline.core.errors import CheckpointError, ConfigError
from pipeline.evaluate.run import test_stream as run_test_stream   # not collected as a test
from pipeline.media import jpeg
from pipeline.models import build
from pipeline.shards import ShardWriter, Stream
from pipeline.train import checkpoint as ckpt
from pipeline.train import losses as L
from pipeline.train.distributed import World, convert_batchnorm
from pipeline.train.trainer import TrainRun, Trainer, _Both, epoch_batches, split_ids, trainable_names
from .shard_fixtures import tagged

TINY = dict(arch="resnet3d-18", width=4, layers=(1, 1, 1, 1))
CLIPS = dataclasses.replace(ClipsConfig(), length=4, crop=16, flip=False)


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(TINY, epochs=3, batch_size=4, workers=0, schedule="cosine", lr=0.05, device="cpu",
                precision="fp32", seed=0)
    return dataclasses.replace(TrainConfig(), **{**base, **kw})


# ----------------------------------------------------------------------------------------------------------
# Shards of an easy task: class "high" has bright RGB and flow x above zero motion, class "low" the opposite.


def write_easy_shards(root: Path, train_per_class: int = 8, test_per_class: int = 4, frames: int = 9,
                      size: int = 24) -> dict[str, list[Path]]:
    rng = np.random.default_rng(1)
    classes = ["low", "high"]
    videos = []
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for label in (0, 1):
            for k in range(n):
                videos.append((f"{split}-{classes[label]}-{k:02d}", label, split))
    rng.shuffle(videos)                          # classes and splits interleaved in the file
    common = dict(dataset="easy", shard=0, num_shards=1, classes=classes, manifest_sha256="0" * 64, params={},
                  encoding="jpeg")
    rgb_path, flow_path = root / "rgb" / "shard-00000.h5", root / "flow" / "shard-00000.h5"
    with ShardWriter(rgb_path, modality="rgb", streams=[Stream("rgb")], **common) as wr:
        for vid, label, split in videos:
            base = 180 if label else 70
            imgs = [np.clip(base + rng.integers(-30, 31, (size, size, 3)), 0, 255).astype(np.uint8)
                    for _ in range(frames)]
            wr.add_video(vid, label, split, 25.0, size, size,
                         {"rgb": [tagged(jpeg.encode(im, 90), i) for i, im in enumerate(imgs)]})
    flow_streams = [Stream("x", color="gray"), Stream("y", color="gray")]
    with ShardWriter(flow_path, modality="flow", streams=flow_streams, **common) as wr:
        for vid, label, split in videos:
            base = 160 if label else 96
            fx = [np.clip(base + rng.integers(-12, 13, (size, size)), 0, 255).astype(np.uint8)
                  for _ in range(frames - 1)]
            fy = [np.clip(128 + rng.integers(-12, 13, (size, size)), 0, 255).astype(np.uint8)
                  for _ in range(frames - 1)]
            wr.add_video(vid, label, split, 25.0, size, size,
                         {"x": [tagged(jpeg.encode(a, 90), i) for i, a in enumerate(fx)],
                          "y": [tagged(jpeg.encode(a, 90), i) for i, a in enumerate(fy)]})
    return {"rgb": [rgb_path], "flow": [flow_path]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these tiny networks run several times faster so on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    return write_easy_shards(tmp_path_factory.mktemp("easy"))


def make_run(method: str, shards, out: Path, cfg: TrainConfig, teacher: Path | None = None) -> TrainRun:
    return TrainRun(method=method, train=cfg, clips=CLIPS, shards=shards, out_dir=out, teacher=teacher,
                    progress=False)


def state_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def flow_teacher(easy, tmp_path_factory):
    """A flow stream trained on the easy task (the teacher of the MERS test, and the learning test)."""
    out = tmp_path_factory.mktemp("flow")
    t = Trainer(make_run("flow", easy, out, tiny_cfg(epochs=12, lr=0.005)))
    summary = t.fit()
    t.close()
    return out / "model.pt", summary


# ----------------------------------------------------------------------------------------------------------
# 1. losses


def test_mars_loss_is_ce_plus_alpha_mse():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    f, t = torch.randn(5, 8), torch.randn(5, 8)
    ce = F.cross_entropy(logits, labels)
    mse = ((f - t) ** 2).mean()
    for alpha in (0.0, 1.0, 50.0):
        loss, parts = L.mars_loss(logits, f, t, labels, alpha)
        assert torch.allclose(loss, ce + alpha * mse, rtol=1e-6, atol=1e-6)
        assert parts["ce"] == pytest.approx(float(ce), rel=1e-6)
        assert parts["mse"] == pytest.approx(float(mse), rel=1e-6)
    assert torch.equal(L.mars_loss(logits, f, t, labels, 0.0)[0], L.cross_entropy(logits, labels))
    one = L.mars_loss(logits, f, t, labels, 3.0)[0]
    two = L.mars_loss(logits, f, t, labels, 6.0)[0]
    assert float(two - one) == pytest.approx(3.0 * float(mse), rel=1e-5)     # doubling alpha: one more term


def test_d3d_loss_is_ce_plus_lambda_logit_mse():
    """D3D eq. 2: the squared error summed over the K logits, averaged over the batch (``mean``: over the
    logits too, lambda / K)."""
    torch.manual_seed(1)
    logits, teacher, labels = torch.randn(4, 6), torch.randn(4, 6), torch.tensor([5, 0, 3, 3])
    per_sample = ((logits - teacher) ** 2).sum(dim=1)                    # (4,)
    for lam in (0.0, 1.0, 2.5):
        loss, parts = L.d3d_loss(logits, teacher, labels, lam)
        expected = F.cross_entropy(logits, labels) + lam * per_sample.mean()
        assert torch.allclose(loss, expected, rtol=1e-6, atol=1e-6)
        assert parts["mse"] == pytest.approx(float(per_sample.mean()), rel=1e-6)
        loss, parts = L.d3d_loss(logits, teacher, labels, lam, reduction="mean")
        assert parts["mse"] == pytest.approx(float(per_sample.mean()) / 6, rel=1e-6)
        assert torch.allclose(loss, F.cross_entropy(logits, labels) + lam * per_sample.mean() / 6, atol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        L.d3d_loss(logits, teacher, labels, 1.0, reduction="max")


def test_teacher_tensors_get_no_gradient():
    torch.manual_seed(2)
    logits = torch.randn(3, 4, requires_grad=True)
    f = torch.randn(3, 5, requires_grad=True)
    t_feat = torch.randn(3, 5, requires_grad=True)
    t_logits = torch.randn(3, 4, requires_grad=True)
    labels = torch.tensor([0, 1, 3])
    (L.mars_loss(logits, f, t_feat * 2, labels, 1.0)[0] + L.d3d_loss(logits, t_logits * 2, labels, 1.0)[0]
     + L.feature_mse(f, t_feat)).backward()
    assert t_feat.grad is None and t_logits.grad is None
    assert f.grad is not None and f.grad.abs().sum() > 0 and logits.grad is not None


def test_feature_mse_refuses_mismatched_shapes():
    assert float(L.feature_mse(torch.ones(2, 3), torch.zeros(2, 3))) == 1.0
    with pytest.raises(ValueError, match="feature"):
        L.feature_mse(torch.zeros(2, 8), torch.zeros(2, 16))
    with pytest.raises(ValueError):
        L.feature_mse(torch.zeros(2, 8), torch.zeros(3, 8))


# ----------------------------------------------------------------------------------------------------------
# 2. MERS: what each step trains


def test_trainable_names():
    model = build("resnet3d-18", in_channels=3, num_classes=4, width=4, layers=(1, 1, 1, 1))
    names = {n for n, _ in model.named_parameters()}
    fc = {"fc.weight", "fc.bias"}
    layer4 = {n for n in names if n.startswith("layer4.")}
    assert fc <= names and layer4
    assert trainable_names(model, "classifier", "none") == fc
    assert trainable_names(model, "backbone", "none") == names - fc
    assert trainable_names(model, "all", "none") == names
    assert trainable_names(model, "all", "last") == layer4 | fc
    assert trainable_names(model, "backbone", "last") == layer4
    assert trainable_names(model, "classifier", "last") == fc


def test_mers_joint_step_is_the_authors(easy, flow_teacher, tmp_path):
    """MARS's MERS_train.py: every step, alpha x feature MSE trains all layers but the classifier and the
    classifier's cross-entropy (on detached features) the classifier alone, in one optimiser step."""
    teacher_path, _ = flow_teacher
    params = lambda m: {n: p.detach().clone() for n, p in m.named_parameters()}     # noqa: E731
    fc = {"fc.weight", "fc.bias"}
    cfg = tiny_cfg(epochs=1, lr=0.02, weight_decay=0.0, mars_alpha=0.0)
    t = Trainer(make_run("mers", easy, tmp_path / "ce_only", cfg, teacher=teacher_path))
    assert [ph.name for ph in t.method.phases] == ["main"] and t.method.phases[0].loss == "mers"
    start = params(t.model)
    t.fit()
    t.close()
    moved = {n for n, p in params(t.model).items() if not torch.equal(p, start[n])}
    assert moved == fc, "without the feature MSE only the classifier may move: CE must not reach the backbone"
    t = Trainer(make_run("mers", easy, tmp_path / "both", dataclasses.replace(cfg, mars_alpha=50.0),
                         teacher=teacher_path))
    start = params(t.model)
    t.fit()
    t.close()
    moved = {n for n, p in params(t.model).items() if not torch.equal(p, start[n])}
    assert fc <= moved and {"conv1.weight", "layer4.0.conv2.weight"} <= moved
    log = [json.loads(line) for line in (tmp_path / "both" / "log.jsonl").read_text().splitlines()]
    assert "train_ce" in log[0] and "train_mse" in log[0]


def test_mers_steps_train_only_their_parts(easy, flow_teacher, tmp_path):
    teacher_path, _ = flow_teacher
    teacher_file = ckpt.load(teacher_path)["model"]
    cfg = tiny_cfg(epochs=1, mers_classifier_epochs=1, lr=0.02, mers_schedule="two_step")   # the paper's 3.1
    t = Trainer(make_run("mers", easy, tmp_path, cfg, teacher=teacher_path))
    assert all(not p.requires_grad for p in t.teacher.parameters()) and not t.teacher.training
    start, teacher_start = state_of(t.model), state_of(t.teacher)
    t.fit(stop_after=1)                                   # step 1: feature MSE to the teacher
    after1 = state_of(t.model)
    fc = {"fc.weight", "fc.bias"}
    assert not changed(start, after1) & fc, "step 1 must not touch the classifier"
    moved = changed(start, after1)
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer4.0.conv2.weight"} <= moved
    assert not changed(teacher_start, state_of(t.teacher))
    t.close()

    t2 = Trainer(make_run("mers", easy, tmp_path, cfg, teacher=teacher_path))
    t2.fit(resume=True)                                   # step 2: the classifier alone
    final = ckpt.load(tmp_path / "model.pt")["model"]
    assert changed(after1, final) == fc, "step 2 changes the classifier and nothing else (BN stats included)"
    assert all(not p.requires_grad for p in t2.teacher.parameters())
    assert not changed(teacher_file, state_of(t2.teacher))
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["features", "classifier"]
    assert "train_mse" in log[0] and "train_ce" in log[1]
    t2.close()

    whole = tmp_path / "uninterrupted"                   # resuming across the phase boundary changes nothing
    t3 = Trainer(make_run("mers", easy, whole, cfg, teacher=teacher_path))
    t3.fit()
    t3.close()
    assert not changed(final, ckpt.load(whole / "model.pt")["model"])
    assert _losses(whole) == _losses(tmp_path)


# ----------------------------------------------------------------------------------------------------------
# 3. a tiny run learns the easy task


def test_flow_stream_beats_chance(easy, flow_teacher):
    path, summary = flow_teacher
    assert summary["train_videos"] == 14 and summary["val_videos"] == 2
    r = run_test_stream("flow", path, easy, CLIPS, dataclasses.replace(EvaluateConfig(), device="cpu",
                                                                         batch_size=8, static=True))
    assert len(r.video_ids) == 8 and all(v.startswith("test-") for v in r.video_ids)
    assert r.clips == 16                                 # 8 usable frames (9 RGB, 8 flow) -> two clips of 4
    top1 = float((r.scores.argmax(1) == r.labels).mean())
    assert top1 >= 0.875, (top1, r.scores, r.labels)
    static_top1 = float((r.static.argmax(1) == r.labels).mean())
    assert static_top1 == 0.5           # static clips carry zero motion: one prediction for every video


def test_rgb_stream_beats_chance(easy, tmp_path):
    t = Trainer(make_run("rgb", easy, tmp_path, tiny_cfg(epochs=12, lr=0.05)))   # MARS dampening: steps /10
    t.fit()
    t.close()
    r = run_test_stream("rgb", tmp_path / "model.pt", easy, CLIPS,
                        dataclasses.replace(EvaluateConfig(), device="cpu", batch_size=8, static=False))
    top1 = float((r.scores.argmax(1) == r.labels).mean())
    assert top1 >= 0.875, (top1, r.scores, r.labels)
    assert r.static is None


# ----------------------------------------------------------------------------------------------------------
# 4. resume: the same next step as an uninterrupted run


def _losses(out: Path) -> list[tuple]:
    return [(r["epoch"], r["train_loss"], r.get("val_loss"), r["lr"])
            for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_is_bit_identical(easy, tmp_path, workers):
    cfg = tiny_cfg(epochs=3, workers=workers, schedule="cosine")
    a, b = tmp_path / "a", tmp_path / "b"
    ta = Trainer(make_run("flow", easy, a, cfg))
    ta.fit()
    ta.close()
    tb = Trainer(make_run("flow", easy, b, cfg))
    assert tb.fit(stop_after=2) == {"stopped_after": 2}
    assert not (b / "model.pt").exists() and (b / "last.pt").exists()
    tb.close()
    tb2 = Trainer(make_run("flow", easy, b, cfg))
    tb2.fit(resume=True)
    tb2.close()
    ma, mb = ckpt.load(a / "model.pt")["model"], ckpt.load(b / "model.pt")["model"]
    assert ma.keys() == mb.keys()
    assert all(torch.equal(ma[k], mb[k]) for k in ma), [k for k in ma if not torch.equal(ma[k], mb[k])]
    assert _losses(a) == _losses(b)
    assert len(_losses(a)) == 3


# ----------------------------------------------------------------------------------------------------------
# 5. two CPU processes (gloo) train the network one process trains with the same global batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bn_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(4, 2, 4, 16, 16, generator=g, dtype=torch.float64) * 20, torch.tensor([0, 1, 1, 0])


def _bn_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build("resnet3d-18", in_channels=2, num_classes=2, width=TINY["width"], layers=TINY["layers"])


def _global_bn_grads(world: World, ddp: bool) -> dict[str, torch.Tensor]:
    """Parameter gradients of one step on this rank's half of a fixed float64 batch, GlobalBatchNorm."""
    model = convert_batchnorm(_bn_model(), torch.device("cpu")).double()
    net = _Both(model)
    if ddp:
        net = torch.nn.parallel.DistributedDataParallel(net)
    x, y = _bn_batch()
    _, logits, _ = net(x[world.rank::world.size])
    F.cross_entropy(logits, y[world.rank::world.size]).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def _ddp_worker(rank: int, world: int, port: int, shards, out: str, cfg: TrainConfig) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    t = Trainer(make_run("flow", shards, Path(out), cfg))         # joins the gloo group (distributed.setup)
    assert t.world == World(rank, world, rank)
    try:
        grads = _global_bn_grads(t.world, ddp=True)
        if rank == 0:
            torch.save(grads, Path(out).parent / "grads-ddp.pt")
        t.fit()
    finally:
        t.close()


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(easy, tmp_path):
    import torch.multiprocessing as tmp
    # lr 1e-3: this tiny network's BatchNorms see 1x1x1 maps of 2-4 clips, so at lr 0.05 a rounding
    # difference of 1e-7 grows to 1e-2 in six steps (one process against itself with a 1e-6 perturbation of
    # the initial weights differs as much); at 1e-3 float rounding stays at ~1e-5.
    cfg = tiny_cfg(epochs=2, batch_size=4, lr=0.001)
    single = tmp_path / "single"
    t = Trainer(make_run("flow", easy, single, cfg))
    t.fit()
    t.close()
    ddp = tmp_path / "ddp"
    tmp.spawn(_ddp_worker, args=(2, _free_port(), easy, str(ddp), cfg), nprocs=2, join=True)

    # one step in float64: two processes with GlobalBatchNorm and DDP give one process's gradients exactly
    reference = _global_bn_grads(World(), ddp=False)
    two_grads = torch.load(tmp_path / "grads-ddp.pt", weights_only=True)
    for k, g in reference.items():
        diff = float((g - two_grads[k]).abs().max())
        assert torch.allclose(g, two_grads[k], rtol=1e-9, atol=1e-12), (k, diff)

    one, two = ckpt.load(single / "model.pt"), ckpt.load(ddp / "model.pt")
    assert two["settings"]["world_size"] == 2 and one["settings"]["world_size"] == 1
    assert two["settings"]["batch_size"] == one["settings"]["batch_size"] == 4
    assert one["model"].keys() == two["model"].keys()
    for k, a in one["model"].items():
        b = two["model"][k]
        if a.dtype.is_floating_point:
            tol = 1e-4 * max(1.0, float(a.abs().max()))
            assert torch.allclose(a, b, atol=tol, rtol=1e-4), (k, float((a - b).abs().max()))
        else:
            assert torch.equal(a, b), k
    start = _bn_model()
    assert changed({k: v for k, v in start.state_dict().items()}, one["model"]), "the runs must train"
    la, lb = _losses(single), _losses(ddp)
    assert [x[0] for x in la] == [x[0] for x in lb] == [1, 2]
    for (_, tl1, vl1, _), (_, tl2, vl2, _) in zip(la, lb):
        assert tl1 == pytest.approx(tl2, rel=3e-4, abs=1e-5)
        assert vl1 == pytest.approx(vl2, rel=3e-4, abs=1e-5)     # weights agree to 1e-4 (above)


# ----------------------------------------------------------------------------------------------------------
# 6. checkpoints


def _touch(path: str) -> object:
    Path(path).write_text("unpickled!")
    return object()


class Booby:
    """Unpickling this object writes a file (through __reduce__)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


class Stateful:
    """Unpickling this object writes a file (through __setstate__)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).write_text("unpickled!")
        self.__dict__.update(state)


def test_checkpoint_from_a_newer_version_is_refused(tmp_path):
    p = tmp_path / "new.pt"
    torch.save({"format": ckpt.FORMAT, "version": 99, "model": {}}, p)
    with pytest.raises(CheckpointError, match="upgrade") as e:
        ckpt.load(p)
    assert "99" in str(e.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["reduce", "setstate", "plain-pickle"])
def test_checkpoint_with_pickled_objects_is_refused_unexecuted(tmp_path, kind):
    marker = tmp_path / "side-effect"
    p = tmp_path / "evil.pt"
    if kind == "reduce":
        torch.save({"format": ckpt.FORMAT, "version": 1, "x": Booby(marker)}, p)
    elif kind == "setstate":
        torch.save({"format": ckpt.FORMAT, "version": 1, "x": Stateful(marker)}, p)
    else:
        with open(p, "wb") as f:
            pickle.dump({"format": ckpt.FORMAT, "version": 1, "x": Booby(marker)}, f)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        ckpt.load(p)
    assert not marker.exists()


def test_checkpoint_not_motionprep_is_refused(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, p)
    with pytest.raises(CheckpointError, match="not a motionprep checkpoint"):
        ckpt.load(p)
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match="not a motionprep checkpoint"):
        ckpt.load(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("content", ["empty", "truncated", "text"])
def test_checkpoint_unreadable_file_is_a_checkpoint_error(tmp_path, content):
    # a short text file makes torch's weights-only unpickler raise a bare KeyError (its memo lookup of a
    # BINGET opcode): it must still be a CheckpointError, never a crash of `--resume` or `evaluate`
    p = tmp_path / "bad.pt"
    if content == "empty":
        p.write_bytes(b"")
    elif content == "truncated":
        ckpt.save(p, {"model": {"w": torch.zeros(64)}})
        p.write_bytes(p.read_bytes()[:200])
    else:
        p.write_text("hello, not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(p)):
        ckpt.load(p)


def test_checkpoint_save_is_atomic(tmp_path):
    p = tmp_path / "run" / "model.pt"
    ckpt.save(p, {"model": {"w": torch.arange(3.0)}, "classes": ["a", "b"]})
    assert [x.name for x in p.parent.iterdir()] == ["model.pt"]
    data = ckpt.load(p)
    assert data["format"] == ckpt.FORMAT and data["version"] == ckpt.VERSION
    assert torch.equal(data["model"]["w"], torch.arange(3.0)) and data["classes"] == ["a", "b"]
    with pytest.raises(Exception):
        ckpt.save(p, {"model": lambda: 0})             # cannot be written: the old file stays, no temporary
    assert [x.name for x in p.parent.iterdir()] == ["model.pt"]
    assert torch.equal(ckpt.load(p)["model"]["w"], torch.arange(3.0))


# ----------------------------------------------------------------------------------------------------------
# 7. the validation split and the epoch order


def _videos():
    out = [(f"a{i}", 0) for i in range(10)] + [(f"b{i}", 1) for i in range(3)] + [("c0", 2)] + \
          [(f"d{i}", 3) for i in range(2)]
    return out


def test_split_ids():
    videos = _videos()
    labels = dict(videos)
    train, val = split_ids(videos, 0.1, seed=0)
    assert split_ids(videos, 0.1, seed=0) == (train, val)
    assert split_ids(list(reversed(videos)), 0.1, seed=0) == (train, val)
    rng = np.random.default_rng(0)
    shuffled = [videos[i] for i in rng.permutation(len(videos))]
    assert split_ids(shuffled, 0.1, seed=0) == (train, val)
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(labels)
    per_val = {c: sum(labels[v] == c for v in val) for c in range(4)}
    assert per_val == {0: 1, 1: 1, 2: 0, 3: 1}         # round(0.1 n), at least one, the single video trains
    assert "c0" in train
    for c in (0, 1, 3):
        assert any(labels[v] == c for v in train)
    train3, val3 = split_ids(videos, 0.3, seed=0)
    assert {c: sum(labels[v] == c for v in val3) for c in range(4)} == {0: 3, 1: 1, 2: 0, 3: 1}
    others = {tuple(split_ids(videos, 0.3, seed=s)[1]) for s in range(6)}
    assert len(others) > 1                               # the seed chooses the held-out videos
    assert split_ids(videos, 0.0, seed=0) == (sorted(labels), [])


def test_epoch_batches():
    a = epoch_batches(10, 4, seed=3, epoch=0)
    assert a == epoch_batches(10, 4, seed=3, epoch=0)
    assert [len(b) for b in a] == [4, 4]                 # the incomplete tail is dropped
    flat = [i for b in a for i in b]
    assert len(set(flat)) == 8 and set(flat) <= set(range(10))
    b = epoch_batches(10, 4, seed=3, epoch=1)
    assert a != b
    assert epoch_batches(10, 4, seed=4, epoch=0) != a
    orders = {tuple(i for bb in epoch_batches(12, 4, 3, e) for i in bb) for e in range(5)}
    assert len(orders) == 5 and all(sorted(o) == list(range(12)) for o in orders)
    only = epoch_batches(3, 4, 0, 0)                     # a short tail that is the only batch is kept
    assert len(only) == 1 and sorted(only[0]) == [0, 1, 2]


def test_finetune_last_trains_only_the_last_block_and_the_classifier(easy, flow_teacher, tmp_path):
    """MARS on small datasets: start from a trained network, train its last block and classifier alone."""
    teacher_path, _ = flow_teacher
    start = ckpt.load(teacher_path)["model"]
    cfg = tiny_cfg(epochs=1, lr=0.02, pretrained=str(teacher_path), finetune="last")
    t = Trainer(make_run("flow", easy, tmp_path, cfg))
    assert not changed(start, state_of(t.model))           # the pretrained weights, classifier included
    t.fit()
    t.close()
    moved = changed(start, ckpt.load(tmp_path / "model.pt")["model"])
    params = {n for n, _ in t.model.named_parameters()}
    assert moved & params and all(k.startswith(("layer4.", "fc.")) for k in moved & params), sorted(moved)
    assert "fc.weight" in moved and any(k.startswith("layer4.") and k.endswith("weight") for k in moved)
    # MARS's fine-tuning keeps the whole network in train mode: frozen layers' batch-norm statistics move
    assert "layer1.0.bn1.running_mean" in moved
    with pytest.raises(ConfigError, match="pretrained"):
        Trainer(make_run("flow", easy, tmp_path / "x", tiny_cfg(finetune="all")))


def test_finetune_bn_freeze_keeps_frozen_layers_statistics(easy, flow_teacher, tmp_path):
    teacher_path, _ = flow_teacher
    start = ckpt.load(teacher_path)["model"]
    cfg = tiny_cfg(epochs=1, lr=0.02, pretrained=str(teacher_path), finetune="last")
    recipe = dataclasses.replace(recipe_defaults()["flow"], finetune_bn="freeze")
    run = dataclasses.replace(make_run("flow", easy, tmp_path, cfg),
                              recipe=effective_recipe(recipe, train=cfg, clips=CLIPS))
    t = Trainer(run)
    t.fit()
    t.close()
    moved = changed(start, ckpt.load(tmp_path / "model.pt")["model"])
    assert moved and all(k.startswith(("layer4.", "fc.")) for k in moved), sorted(moved)
