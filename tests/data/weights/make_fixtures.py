"""Make the feature-check fixtures of tests/test_weights.py by running the ORIGINAL model code (see README.md).

Not run by the tests. Needs the original files in a scratch folder (default /tmp/wt-import-src), laid out as
README.md says; nothing of them is copied into the repository: this script reads each file, applies the
listed width substitutions in memory (the sources hard-code ImageNet widths; the fixtures must stay small),
stubs the few imports that are not torch, executes it, fills every parameter and buffer with seeded random
values, and saves (1) the checkpoint exactly as the source's code saves it and (2) one input and the
source's output on it.

    /work/main/.venv/bin/python tests/data/weights/make_fixtures.py [SRC_DIR]
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


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    tv = torchvision_resnet()
    make_torchvision(tv)
    make_torchvision_r3d(sys.modules["tvstub"])
    make_kenshohara_2020()
    make_kenshohara_2018()
    make_mars()
    make_coviar(tv)
    make_dmcnet(tv)
