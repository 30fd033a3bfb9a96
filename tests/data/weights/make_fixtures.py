"""Make the feature-check fixtures of tests/test_weights.py by running the ORIGINAL model code (see README.md).

Not run by the tests. Needs the original files in a scratch folder (default /tmp/wt-import-src), laid out as
README.md says; nothing of them is copied into the repository: this script reads each file, applies the
listed width substitutions in memory (the sources hard-code ImageNet widths; the fixtures must stay small),
stubs the few imports that are not torch, executes it, fills every parameter and buffer with seeded random
values, and saves (1) the checkpoint exactly as the source's code saves it and (2) one input and the
source's output on it.

    /work/main/.venv/bin/python tests/data/weights/make_fixtures.py [SRC_DIR [MAKER ...]]
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
from torch import nn

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wt-import-src")
OUT = Path(__file__).resolve().parent
W = 4                                         # stem width of every fixture (64 in the published networks)


def scratch(path: Path, subs: list[tuple[str, str, int]], name: str, stubs: dict | None = None) -> types.ModuleType:
    """Execute ``path`` as module ``name`` after exact substitutions (old, new, expected count)."""
    text = path.read_text()
    for old, new, count in subs:
        found = text.count(old)
        assert found == count, f"{path}: {old!r} occurs {found} times, expected {count}"
        text = text.replace(old, new)
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    for k, v in (stubs or {}).items():
        sys.modules[k] = v
    sys.modules[name] = mod
    exec(compile(text, str(path), "exec"), mod.__dict__)
    return mod


def randomize(model: nn.Module, seed: int) -> None:
    """Every float parameter and buffer random (seeded): conv/linear weights and biases normal, batch-norm
    scales in [0.5, 1.5], shifts and running means normal * 0.1, running variances in [0.5, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var") or (t.dim() == 1 and name.endswith("weight")):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() == 1:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)


def save(name: str, checkpoint: dict, x, out: dict) -> None:
    torch.save(checkpoint, OUT / f"{name}.pth")
    torch.save({"input": x, **out}, OUT / f"{name}.io.pt")
    sizes = [(OUT / f"{name}{s}").stat().st_size for s in (".pth", ".io.pt")]
    print(f"{name}: {sizes} bytes")


def dp(state: dict) -> dict:
    """The keys ``nn.DataParallel(model).state_dict()`` has."""
    return {f"module.{k}": v for k, v in state.items()}


# -- torchvision (2D ResNets): torchvision 0.29.1 wheel, torchvision/models/resnet.py ------------------------
def torchvision_resnet() -> types.ModuleType:
    stub = types.ModuleType("tvstub")
    stub.ImageClassification = lambda *a, **k: None
    stub._log_api_usage_once = lambda *a, **k: None
    stub.register_model = lambda *a, **k: (lambda f: f)
    stub.handle_legacy_interface = lambda *a, **k: (lambda f: f)
    stub.Weights = lambda **k: types.SimpleNamespace(**k)
    import enum

    class WeightsEnum(enum.Enum):                 # torchvision's forwards attributes to the value
        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            return getattr(self.value, name)

    stub.WeightsEnum = WeightsEnum
    stub._IMAGENET_CATEGORIES = []
    stub._ovewrite_named_param = lambda kw, p, v: kw.setdefault(p, v)
    imports = [
        ("from ..transforms._presets import ImageClassification\n", "from tvstub import ImageClassification\n", 1),
        ("from ..utils import _log_api_usage_once\n", "from tvstub import _log_api_usage_once\n", 1),
        ("from ._api import register_model, Weights, WeightsEnum\n",
         "from tvstub import register_model, Weights, WeightsEnum\n", 1),
        ("from ._meta import _IMAGENET_CATEGORIES\n", "from tvstub import _IMAGENET_CATEGORIES\n", 1),
        ("from ._utils import _ovewrite_named_param, handle_legacy_interface\n",
         "from tvstub import _ovewrite_named_param, handle_legacy_interface\n", 1),
    ]
    widths = [
        ("        self.inplanes = 64\n", f"        self.inplanes = {W}\n", 1),
        ("self._make_layer(block, 64, layers[0])", f"self._make_layer(block, {W}, layers[0])", 1),
        ("self._make_layer(block, 128, layers[1]", f"self._make_layer(block, {2 * W}, layers[1]", 1),
        ("self._make_layer(block, 256, layers[2]", f"self._make_layer(block, {4 * W}, layers[2]", 1),
        ("self._make_layer(block, 512, layers[3]", f"self._make_layer(block, {8 * W}, layers[3]", 1),
        ("nn.Linear(512 * block.expansion, num_classes)", f"nn.Linear({8 * W} * block.expansion, num_classes)", 1),
    ]
    return scratch(SRC / "torchvision-0.29.1/torchvision/models/resnet.py", imports + widths, "tv_resnet",
                   {"tvstub": stub})


def make_torchvision(tv) -> None:
    torch.manual_seed(0)
    for name, model in (("torchvision_resnet18", tv.ResNet(tv.BasicBlock, [2, 2, 2, 2], num_classes=10)),   # = resnet18()
                        ("torchvision_resnet50_l1111", tv.ResNet(tv.Bottleneck, [1, 1, 1, 1], num_classes=10))):
        randomize(model, 1)
        model.eval()
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            y = model(x)
        save(name, model.state_dict(), x, {"output": y})        # published files are plain state dicts


# -- torchvision video.r3d_18: torchvision 0.29.1 wheel, torchvision/models/video/resnet.py -------------------
def make_torchvision_r3d(stub: types.ModuleType) -> None:
    imports = [
        ("from ...transforms._presets import VideoClassification\n", "from tvstub import ImageClassification\n", 1),
        ("from ...utils import _log_api_usage_once\n", "from tvstub import _log_api_usage_once\n", 1),
        ("from .._api import register_model, Weights, WeightsEnum\n",
         "from tvstub import register_model, Weights, WeightsEnum\nVideoClassification = ImageClassification\n", 1),
        ("from .._meta import _KINETICS400_CATEGORIES\n", "_KINETICS400_CATEGORIES = []\n", 1),
        ("from .._utils import _ovewrite_named_param, handle_legacy_interface\n",
         "from tvstub import _ovewrite_named_param, handle_legacy_interface\n", 1),
        ("from .._utils import _ModelURLs\n", "_ModelURLs = dict\n", 1),
    ]
    widths = [
        ("nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),\n"
         "            nn.BatchNorm3d(64),",
         f"nn.Conv3d(3, {W}, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),\n"
         f"            nn.BatchNorm3d({W}),", 1),
        ("        self.inplanes = 64\n", f"        self.inplanes = {W}\n", 1),
        ("conv_makers[0], 64, layers[0]", f"conv_makers[0], {W}, layers[0]", 1),
        ("conv_makers[1], 128, layers[1]", f"conv_makers[1], {2 * W}, layers[1]", 1),
        ("conv_makers[2], 256, layers[2]", f"conv_makers[2], {4 * W}, layers[2]", 1),
        ("conv_makers[3], 512, layers[3]", f"conv_makers[3], {8 * W}, layers[3]", 1),
        ("nn.Linear(512 * block.expansion, num_classes)", f"nn.Linear({8 * W} * block.expansion, num_classes)", 1),
    ]
    mod = scratch(SRC / "torchvision-0.29.1/torchvision/models/video/resnet.py", imports + widths, "tv_video",
                  {"tvstub": stub})
    torch.manual_seed(0)
    model = mod.VideoResNet(mod.BasicBlock, [mod.Conv3DSimple] * 4, [1, 1, 1, 1], mod.BasicStem, num_classes=5)
    randomize(model, 13)         # r3d_18 is VideoResNet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem)
    model.eval()
    x = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        y = model(x)
    save("torchvision_r3d_l1111", model.state_dict(), x, {"output": y})


# -- kenshohara/3D-ResNets-PyTorch @ 540a0ea (2020 layout): models/resnet.py, native widen_factor ------------
def make_kenshohara_2020() -> None:
    mod = scratch(SRC / "3D-ResNets-PyTorch@540a0ea/models/resnet.py", [], "hara2020_resnet")
    torch.manual_seed(0)
    cases = (("kenshohara2020_r3d10_B", mod.generate_model(10, widen_factor=W / 64, n_classes=7, shortcut_type="B")),
             ("kenshohara2020_r3d50_l1111_flow",
              mod.ResNet(mod.Bottleneck, [1, 1, 1, 1], mod.get_inplanes(), n_input_channels=2,
                         widen_factor=W / 64, n_classes=7)))
    for name, model in cases:
        randomize(model, 3)
        model.eval()
        x = torch.randn(1, model.conv1.in_channels, 8, 32, 32, generator=torch.Generator().manual_seed(4))
        with torch.no_grad():
            y = model(x)
        ckpt = {"epoch": 200, "arch": "resnet-10" if "r3d10" in name else "resnet-50",
                "state_dict": dp(model.state_dict()), "optimizer": {}, "scheduler": {}}
        save(name, ckpt, x, {"output": y})


# -- kenshohara/3D-ResNets-PyTorch @ 1bed01d (2018 layout, resnet-18-kinetics.pth's code): models/resnet.py ---
def make_kenshohara_2018() -> None:
    subs = [
        ("        self.inplanes = 64\n", f"        self.inplanes = {W}\n", 1),
        ("            3,\n            64,\n", f"            3,\n            {W},\n", 1),
        ("self.bn1 = nn.BatchNorm3d(64)", f"self.bn1 = nn.BatchNorm3d({W})", 1),
        ("self._make_layer(block, 64, layers[0]", f"self._make_layer(block, {W}, layers[0]", 1),
        ("            block, 128, layers[1]", f"            block, {2 * W}, layers[1]", 1),
        ("            block, 256, layers[2]", f"            block, {4 * W}, layers[2]", 1),
        ("            block, 512, layers[3]", f"            block, {8 * W}, layers[3]", 1),
        ("nn.Linear(512 * block.expansion", f"nn.Linear({8 * W} * block.expansion", 1),
    ]
    mod = scratch(SRC / "3D-ResNets-PyTorch@1bed01d/models/resnet.py", subs, "hara2018_resnet")
    torch.manual_seed(0)
    model = mod.resnet10(sample_size=32, sample_duration=8, shortcut_type="A", num_classes=6)
    randomize(model, 5)
    model.eval()
    x = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        y = model(x)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}  # torch 0.3
    save("kenshohara2018_resnet10_A", {"epoch": 200, "arch": "resnet-10", "state_dict": dp(state),
                                       "optimizer": {}}, x, {"output": y})


# -- craston/MARS @ d5ffb01: models/resnext.py (Flow stream: input_channels 2) --------------------------------
def make_mars() -> None:
    w, c = 2, 2                             # stem width, cardinality (64, 32 in MARS); stages 2w .. 16w
    subs = [
        ("        self.inplanes = 64\n", f"        self.inplanes = {w}\n", 1),
        ("            input_channels,\n            64,\n", f"            input_channels,\n            {w},\n", 1),
        ("self.bn1 = nn.BatchNorm3d(64)", f"self.bn1 = nn.BatchNorm3d({w})", 1),
        ("self._make_layer(block, 128, layers[0]", f"self._make_layer(block, {2 * w}, layers[0]", 1),
        ("            block, 256, layers[1]", f"            block, {4 * w}, layers[1]", 1),
        ("            block, 512, layers[2]", f"            block, {8 * w}, layers[2]", 1),
        ("            block, 1024, layers[3]", f"            block, {16 * w}, layers[3]", 1),
        ("mid_planes = cardinality * int(planes / 32)", f"mid_planes = cardinality * int(planes / {c})", 1),
        ("nn.Linear(cardinality * 32 * block.expansion", f"nn.Linear({16 * w} * block.expansion", 1),
    ]
    mod = scratch(SRC / "MARS@d5ffb01/models/resnext.py", subs, "mars_resnext")
    torch.manual_seed(0)
    model = mod.ResNeXt(mod.ResNeXtBottleneck, [1, 1, 1, 1], sample_size=32, sample_duration=8,
                        shortcut_type="B", cardinality=c, num_classes=5, input_channels=2)
    randomize(model, 7)
    model.eval()
    x = torch.randn(1, 2, 8, 32, 32, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        y = model(x)
    save("mars_resnext_flow", {"epoch": 1, "state_dict": dp(model.state_dict()), "optimizer": {}}, x,
         {"output": y})


# -- chaoyuaw/pytorch-coviar @ 4f0857a and facebookresearch/dmc-net @ 323d160: model.py ----------------------
def fake_torchvision(tv) -> dict:
    """``torchvision`` and ``transforms`` modules for model.py: torchvision.models.resnet18 is the scratch
    torchvision ResNet with resnet18's blocks (what resnet18() builds; ``pretrained=True`` ignored: the
    weights are randomised after)."""
    tvm = types.ModuleType("torchvision")
    tvm.models = types.SimpleNamespace(resnet18=lambda pretrained=False, **k: tv.ResNet(tv.BasicBlock, [2, 2, 2, 2], **k))
    tvm.transforms = types.SimpleNamespace(Compose=lambda x: x)
    tr = types.ModuleType("transforms")
    tr.GroupMultiScaleCrop = tr.GroupRandomHorizontalFlip = object
    return {"torchvision": tvm, "transforms": tr}


def make_coviar(tv) -> None:
    mod = scratch(SRC / "pytorch-coviar@4f0857a/model.py",
                  [("nn.Conv2d(2, 64, ", f"nn.Conv2d(2, {W}, ", 1)], "coviar_model", fake_torchvision(tv))
    torch.manual_seed(0)
    model = mod.Model(num_class=5, num_segments=1, representation="iframe", base_model="resnet18")
    randomize(model, 9)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        y = model(x)
    save("coviar_iframe_resnet18", {"epoch": 1, "arch": "resnet18", "state_dict": dp(model.state_dict()),
                                    "best_prec1": 0.0}, x, {"output": y})


def make_dmcnet(tv) -> None:
    mod = scratch(SRC / "dmc-net@323d160/code/dmcnet/model.py",
                  [("nn.Conv2d(2 * self.new_length, 64,", f"nn.Conv2d(2 * self.new_length, {W},", 1)],
                  "dmcnet_model", fake_torchvision(tv))
    torch.manual_seed(0)
    model = mod.Model(5, 1, "mv", base_model="resnet18", use_databn=0, gen_flow_or_delta=1,
                      arch_estimator="DenseNetTiny")
    randomize(model, 11)
    model.eval()
    g = torch.Generator().manual_seed(12)
    mv, res = torch.randn(2, 2, 32, 32, generator=g), torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        y, flow = model(mv, res)
    save("dmcnet_densenettiny_resnet18", {"epoch": 1, "arch": "resnet18", "state_dict": dp(model.state_dict()),
                                          "best_prec1": 0.0}, torch.cat([mv, res], 1),
         {"output": y, "dmc": flow})


# -- torchvision video.s3d: torchvision 0.29.1 wheel, torchvision/models/video/s3d.py (+ ops/misc.py) ------
def _torchvision_ops(stub: types.ModuleType) -> types.ModuleType:
    """torchvision/ops/misc.py (Conv3dNormActivation) executed with ``..utils`` replaced by the two
    functions it imports, taken from torchvision/utils.py's own source (``ast``: only those definitions)."""
    import ast

    utils_path = SRC / "torchvision-0.29.1/torchvision/utils.py"
    tree = ast.parse(utils_path.read_text())
    wanted = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("_make_ntuple",
                                                                                   "_log_api_usage_once")]
    assert sorted(n.name for n in wanted) == ["_log_api_usage_once", "_make_ntuple"]
    utils = types.ModuleType("tvutils")
    exec("import collections\nfrom itertools import repeat\nfrom types import FunctionType\n"
         "from typing import Any\nimport torch\n", utils.__dict__)
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(utils_path), "exec"), utils.__dict__)
    return scratch(SRC / "torchvision-0.29.1/torchvision/ops/misc.py",
                   [("from ..utils import _log_api_usage_once, _make_ntuple\n",
                     "from tvutils import _log_api_usage_once, _make_ntuple\n", 1)],
                   "tv_ops_misc", {"tvutils": utils})


#: S3D fixture width: every channel count c of torchvision's s3d becomes max(1, c * S3D_W // 64), as
#: motionprep's S3DGConfig(width=S3D_W).channels does
S3D_W = 4


def make_torchvision_s3d(stub: types.ModuleType) -> None:
    ops = _torchvision_ops(stub)
    c = lambda n: max(1, n * S3D_W // 64)                       # noqa: E731
    imports = [
        ("from torchvision.ops.misc import Conv3dNormActivation\n",
         "from tv_ops_misc import Conv3dNormActivation\n", 1),
        ("from ...transforms._presets import VideoClassification\n", "from tvstub import ImageClassification\n", 1),
        ("from ...utils import _log_api_usage_once\n", "from tvstub import _log_api_usage_once\n", 1),
        ("from .._api import register_model, Weights, WeightsEnum\n",
         "from tvstub import register_model, Weights, WeightsEnum\nVideoClassification = ImageClassification\n", 1),
        ("from .._meta import _KINETICS400_CATEGORIES\n", "_KINETICS400_CATEGORIES = []\n", 1),
        ("from .._utils import _ovewrite_named_param, handle_legacy_interface\n",
         "from tvstub import _ovewrite_named_param, handle_legacy_interface\n", 1),
    ]
    blocks = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
              (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
              (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
              (832, 384, 192, 384, 48, 128, 128)]
    widths = [
        ("TemporalSeparableConv(3, 64, 7, 2, 3, norm_layer)", f"TemporalSeparableConv(3, {c(64)}, 7, 2, 3, norm_layer)", 1),
        ("            Conv3dNormActivation(\n                64,\n                64,\n",
         f"            Conv3dNormActivation(\n                {c(64)},\n                {c(64)},\n", 1),
        ("TemporalSeparableConv(64, 192, 3, 1, 1, norm_layer)",
         f"TemporalSeparableConv({c(64)}, {c(192)}, 3, 1, 1, norm_layer)", 1),
        ("nn.Conv3d(1024, num_classes,", f"nn.Conv3d({c(1024)}, num_classes,", 1),
        # the fixture's 16 x 32 x 32 clip leaves Mixed_5c at 2 x 1 x 1: torchvision's fixed (2, 7, 7) window
        # cannot run there; (2, 1, 1) is the window motionprep clips it to
        ("nn.AvgPool3d(kernel_size=(2, 7, 7), stride=1)", "nn.AvgPool3d(kernel_size=(2, 1, 1), stride=1)", 1),
    ]
    cin = c(192)
    for b in blocks:
        old = "SepInceptionBlock3D(" + ", ".join(map(str, b)) + ", norm_layer)"
        outs = [c(v) for v in b[1:]]
        widths.append((old, "SepInceptionBlock3D(" + ", ".join(map(str, [cin] + outs)) + ", norm_layer)", 1))
        cin = outs[0] + outs[2] + outs[4] + outs[5]
    assert cin == c(1024)
    mod = scratch(SRC / "torchvision-0.29.1/torchvision/models/video/s3d.py", imports + widths, "tv_s3d",
                  {"tvstub": stub, "tv_ops_misc": ops})
    torch.manual_seed(0)
    model = mod.S3D(num_classes=5)                              # what s3d() builds (dropout 0.2)
    randomize(model, 15)
    model.eval()
    x = torch.randn(1, 3, 16, 32, 32, generator=torch.Generator().manual_seed(16))
    with torch.no_grad():
        y = model(x)
    save("torchvision_s3d_w4", model.state_dict(), x, {"output": y})


# -- torchvision vgg16 / vgg16_bn: torchvision 0.29.1 wheel, torchvision/models/vgg.py -----------------------
VGG_W, VGG_HIDDEN = 2, 16                      # 64 and 4096 in the published networks


def make_torchvision_vgg(stub: types.ModuleType) -> None:
    imports = [
        ("from ..transforms._presets import ImageClassification\n", "from tvstub import ImageClassification\n", 1),
        ("from ..utils import _log_api_usage_once\n", "from tvstub import _log_api_usage_once\n", 1),
        ("from ._api import register_model, Weights, WeightsEnum\n",
         "from tvstub import register_model, Weights, WeightsEnum\n", 1),
        ("from ._meta import _IMAGENET_CATEGORIES\n", "from tvstub import _IMAGENET_CATEGORIES\n", 1),
        ("from ._utils import _ovewrite_named_param, handle_legacy_interface\n",
         "from tvstub import _ovewrite_named_param, handle_legacy_interface\n", 1),
    ]
    w, h = VGG_W, VGG_HIDDEN
    d = [w, w, "M", 2 * w, 2 * w, "M", 4 * w, 4 * w, 4 * w, "M", 8 * w, 8 * w, 8 * w, "M", 8 * w, 8 * w, 8 * w, "M"]
    widths = [
        ('    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],\n',
         f'    "D": {d!r},\n'.replace("'", '"'), 1),
        ("nn.Linear(512 * 7 * 7, 4096)", f"nn.Linear({8 * w} * 7 * 7, {h})", 1),
        ("nn.Linear(4096, 4096)", f"nn.Linear({h}, {h})", 1),
        ("nn.Linear(4096, num_classes)", f"nn.Linear({h}, num_classes)", 1),
    ]
    mod = scratch(SRC / "torchvision-0.29.1/torchvision/models/vgg.py", imports + widths, "tv_vgg",
                  {"tvstub": stub})
    for name, bn, seed in (("torchvision_vgg16_w2", False, 17), ("torchvision_vgg16_bn_w2", True, 19)):
        torch.manual_seed(0)
        model = mod.VGG(mod.make_layers(mod.cfgs["D"], batch_norm=bn), num_classes=5)   # = vgg16(_bn)()
        randomize(model, seed)
        model.eval()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed + 1))
        with torch.no_grad():
            y = model(x)
        save(name, model.state_dict(), x, {"output": y})


# -- torchvision resnext101_32x8d (resnet.py): groups and width_per_group, one block per stage ---------------
def make_torchvision_resnext(tv) -> None:
    torch.manual_seed(0)
    # resnext101_32x8d is ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8) (inner width
    # int(planes * 8 / 64) * 32 = 4 planes), resnext50_32x4d the same with width_per_group 4 (2 planes). At stem
    # width 4, groups 4 and width_per_group 32 give resnext50_32x4d's ratio (int(planes * 32 / 64) * 4 = 2
    # planes) with whole channels per group, within 300 KB; one block per stage
    model = tv.ResNet(tv.Bottleneck, [1, 1, 1, 1], groups=4, width_per_group=32, num_classes=10)
    randomize(model, 21)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(22))
    with torch.no_grad():
        y = model(x)
    save("torchvision_resnext_g4_l1111", model.state_dict(), x, {"output": y})


MAKERS = {
    "torchvision": lambda tv: make_torchvision(tv),
    "r3d": lambda tv: make_torchvision_r3d(sys.modules["tvstub"]),
    "s3d": lambda tv: make_torchvision_s3d(sys.modules["tvstub"]),
    "vgg": lambda tv: make_torchvision_vgg(sys.modules["tvstub"]),
    "resnext": lambda tv: make_torchvision_resnext(tv),
    "kenshohara2020": lambda tv: make_kenshohara_2020(),
    "kenshohara2018": lambda tv: make_kenshohara_2018(),
    "mars": lambda tv: make_mars(),
    "coviar": lambda tv: make_coviar(tv),
    "dmcnet": lambda tv: make_dmcnet(tv),
}


if __name__ == "__main__":
    # make_fixtures.py [SRC_DIR [MAKER ...]]: all fixtures, or only those of the named makers (MAKERS)
    sys.dont_write_bytecode = True
    tv = torchvision_resnet()
    for key in (sys.argv[2:] or list(MAKERS)):
        MAKERS[key](tv)
