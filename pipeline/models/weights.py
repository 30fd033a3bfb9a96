"""Published weights in: other codebases' checkpoints turned into motionprep state dicts (docs/weights.md).

One entry point, :func:`load_pretrained`, reads a file of any supported layout and returns a motionprep
state dict, the ``model_spec`` that rebuilds the network (``pipeline.models.build(**model_spec)``) and what
was done::

    state, spec, info = load_pretrained("resnet-18-kinetics.pth")          # layout and network detected
    model = build(**spec); model.load_state_dict(state)                     # always fits: verified here
    state, spec, info = load_pretrained("resnet18-5c106cde.pth", num_classes=101)   # fresh classifier

:func:`import_weights` does the same and writes a motionprep checkpoint (``prep-cli models import``).

How a file is read, in this order:

1. ``torch.load(weights_only=True)``: tensors and plain values only. A file that needs pickled Python
   objects is refused with how to re-save it as a plain state dict where the file is trusted.
2. Unwrapping: a motionprep checkpoint (its ``model``), else nested ``state_dict`` / ``model`` / ``net``
   entries holding the tensors, and the ``module.`` prefix of ``nn.DataParallel`` on every key.
3. The layout (``format``): named, or detected from the keys (:func:`detect_format`).
4. Its mapper (:data:`MAPPERS`) renames and reorders tensors into motionprep's names and reads the network
   from the shapes: 2D or 3D, depth (blocks per stage), bottleneck or basic, cardinality (grouped 3x3 conv),
   shortcut A (no ``downsample`` tensors) or B, input channels, width, classes.
5. ``num_classes`` given: the classifier is replaced by a fresh one of that many outputs (deterministic:
   seed 0), everything else is kept.
6. Verification against ``build(**model_spec).state_dict()``: the same keys and the same shapes, or a
   :class:`WeightsError` naming the first missing, unexpected and mis-shaped keys. Never a partial load.
   The only tensors ever added are batch norms' ``num_batches_tracked`` counters (as zero), which files
   written by PyTorch before 0.4.1 lack.

Layouts (``format``):

========== =============================================================================================
torchvision  ``torchvision.models`` (:data:`TORCHVISION_HOOKS`): ResNet-18/34/50/101/152 ->
             ``resnet2d-18`` .. ``resnet2d-152`` (the same names); ``resnext101_32x8d`` -> ``resnext2d-101``
             (groups, width_per_group from the shapes); ``video.r3d_18`` -> ``r3d-18`` (``stem.*`` and
             ``convN.0/1`` renamed); ``video.s3d`` -> ``s3d`` (``classifier.1`` -> ``fc``; refused into
             ``s3dg``: its gates would have no weights); ``vgg16`` / ``vgg16_bn`` -> ``vgg16``
             (``classifier.6`` -> ``fc``; ``batch_norm`` read from the keys).
kenshohara   kenshohara/3D-ResNets-PyTorch, both layouts: 2018 (``resnet-18-kinetics.pth``,
             ``resnext-101-kinetics.pth``; 3 input channels, 64 stem channels) and 2020 (``r3d18_K_200ep.pth``
             ...; ``n_input_channels``, ``widen_factor``, ``conv1_t_size``) -> ``resnet3d-*`` /
             ``resnext3d-101``. Same names as motionprep's; ``conv1_t_size`` other than 7 is refused (our stem
             is 7x7x7), as is the 2020 ResNeXt (its stem has 128 channels, ours half the first stage's).
             ``conv1_t_stride`` and ``no_max_pool`` leave no tensors: both must be the defaults (1, False).
mars         craston/MARS ``models/resnext.py`` (Hara's 2018 ResNeXt with ``input_channels``: RGB 3, Flow 2)
             -> ``resnext3d-101``; the kenshohara mapper, checked to be a ResNeXt.
coviar       chaoyuaw/pytorch-coviar ``Model``: torchvision ResNet as ``base_model`` -> ``resnet2d-*``. The
             I-frame stream maps; the MV and residual streams' ``data_bn`` (a batch norm on the input) has
             no counterpart in motionprep's ResNet2d and is refused.
dmcnet       facebookresearch/dmc-net ``Model`` (code/dmcnet and code/dmcnet_GAN) with its published
             settings (``--arch_estimator DenseNetTiny --gen_flow_or_delta 1``) -> ``dmcnet``: the generator's
             convs reordered to our dense concatenation, ``base_model`` -> ``classifier``; the unused
             ``data_bn`` and the GAN's training-only ``discriminator`` are dropped and reported.
motionprep   a motionprep checkpoint or a state dict of one of our networks (checked, passed through).
========== =============================================================================================
"""

from __future__ import annotations

import io
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..core.atomic import atomic_path
from ..core.errors import CheckpointError

#: the motionprep checkpoint format (pipeline/train/checkpoint.py writes and reads the same)
CHECKPOINT_FORMAT = "motionprep-checkpoint"
CHECKPOINT_VERSION = 1
FORMATS = ("auto", "torchvision", "kenshohara", "mars", "coviar", "dmcnet", "motionprep")
#: wrapper entries that hold the tensors, tried in this order
WRAPPERS = ("state_dict", "model", "net")
#: how many keys an error names per kind
SHOW = 5

#: the hint given for a file that needs pickled objects
RESAVE_HINT = ("re-save it as a plain state dict in an environment that trusts the file, e.g. "
               "python -c \"import torch; d = torch.load('{path}', map_location='cpu', weights_only=False); "
               "torch.save(d.get('state_dict', d) if isinstance(d, dict) else d.state_dict(), 'plain.pth')\" "
               "(a whole pickled model: torch.save(model.state_dict(), 'plain.pth')), then import plain.pth")


class WeightsError(CheckpointError):
    """Weights cannot be imported: unreadable or pickled file, unknown layout, a network motionprep does not
    have, or tensors that do not fit the network key for key and shape for shape."""


@dataclass
class Mapped:
    """What a mapper returns: the state dict in motionprep's names, the spec (``arch`` + config overrides),
    the source keys deliberately left out (with why, in ``notes``) and remarks for the user."""

    state: dict[str, torch.Tensor]
    spec: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- reading and unwrapping ---------------------------------------------------------------------------------

def read_file(path: str | Path) -> Any:
    """The object in ``path``, read with ``torch.load(weights_only=True)`` on the CPU; :class:`WeightsError`
    for a missing or unreadable file and for one needing pickled Python objects (with the re-save hint)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is None:       # a damaged file or not a torch file at all
            detail = re.search(r"WeightsUnpickler error:\s*(.+?)\n", str(exc) + "\n")
            raise WeightsError(f"{path} cannot be read as a torch file "
                               f"({detail.group(1).strip() if detail else type(exc).__name__})") from None
        raise WeightsError(f"{path} holds pickled Python objects ({found.group(1)}), which motionprep never "
                           f"unpickles (it reads with torch.load(weights_only=True)); "
                           + RESAVE_HINT.format(path=path)) from None
    except Exception as exc:       # torch's safe loader raises RuntimeError, KeyError, ... on damaged files
        raise WeightsError(f"{path} cannot be read as a torch file ({type(exc).__name__}: {exc})") from None


def _is_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], list[str], dict | None]:
    """(the tensors, the wrapper entries followed, the motionprep checkpoint if it is one) of a loaded file.

    A motionprep checkpoint gives its ``model``; otherwise ``state_dict``, ``model`` and ``net`` entries are
    followed (nested too) until a dict of tensors is found. Non-tensor entries of a state dict (none in
    PyTorch's own) are refused. The ``module.`` prefix is not removed here (:func:`strip_module`)."""
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        version = obj.get("version")
        if not isinstance(version, int) or version > CHECKPOINT_VERSION:
            raise WeightsError(f"a motionprep checkpoint of format version {version!r}; this motionprep reads "
                               f"versions up to {CHECKPOINT_VERSION}")
        if not _is_state(obj.get("model")):
            raise WeightsError("a motionprep checkpoint without a 'model' state dict")
        return dict(obj["model"]), ["model"], dict(obj)
    path: list[str] = []
    while isinstance(obj, Mapping) and not _is_state(obj):
        inner = next((w for w in WRAPPERS if isinstance(obj.get(w), Mapping)), None)
        if inner is None:
            tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if tensors and len(tensors) >= len(obj) / 2:
                others = sorted(str(k) for k in obj if k not in tensors)[:SHOW]
                raise WeightsError(f"the state dict holds entries that are not tensors: {others}")
            raise WeightsError(f"no tensors found: a dict with keys {sorted(map(str, obj))[:10]} and none of the "
                               f"wrapper entries {', '.join(WRAPPERS)}")
        path.append(inner)
        obj = obj[inner]
    if not _is_state(obj):
        raise WeightsError(f"no state dict found (a {type(obj).__name__}); expected a dict of tensors, "
                           f"possibly under {', '.join(WRAPPERS)}")
    return dict(obj), path, None


def strip_module(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """``state`` without the ``module.`` prefix that ``nn.DataParallel`` / DDP put on every key (removed only
    when every key has it, repeatedly for a model wrapped twice); and whether one was removed."""
    out, stripped = dict(state), False
    while out and all(k.startswith("module.") for k in out):
        out, stripped = {k[len("module."):]: v for k, v in out.items()}, True
    return out, stripped


# -- layout detection ---------------------------------------------------------------------------------------

def detect_format(state: Mapping[str, torch.Tensor]) -> str:
    """The layout of an unwrapped, prefix-free state dict, from its keys and the rank of its stem:
    ``dmcnet`` (``gen_flow_model.*`` + ``base_model.*``), ``coviar`` (``base_model.*``), ``motionprep``
    (our DMCNet or HiddenTwoStream names), ``kenshohara`` (a 5-D ``conv1.weight``: Hara's and MARS's 3D
    ResNets, named as ours), ``torchvision`` (a 4-D ``conv1.weight`` or a torchvision video / VGG layout).
    :class:`WeightsError` when nothing fits."""
    keys = set(state)
    if any(k.startswith("gen_flow_model.") for k in keys) and any(k.startswith("base_model.") for k in keys):
        return "dmcnet"
    if any(k.startswith("base_model.") for k in keys):
        return "coviar"
    if any(k.startswith("generator.convs.") for k in keys) or any(k.startswith("motionnet.") for k in keys):
        return "motionprep"
    conv1 = state.get("conv1.weight")
    if conv1 is not None and conv1.dim() == 5:
        return "kenshohara"
    if conv1 is not None and conv1.dim() == 4:
        return "torchvision"
    if any(hook.detect(state) for hook in TORCHVISION_HOOKS):
        return "torchvision"
    raise WeightsError(f"unknown weights layout (first keys {sorted(keys)[:SHOW]}): name one with --format "
                       f"({', '.join(FORMATS[1:])})")


# -- ResNet structure from shapes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ResNetShape:
    """What the tensors of a ResNet (torchvision's / Hara's / ours names) say about the network."""

    dims: int                       # 2 (Conv2d stem) or 3 (Conv3d)
    in_channels: int
    width: int                      # stem channels
    layers: tuple[int, int, int, int]
    block: str                      # "basic" or "bottleneck"
    cardinality: int                # groups of the 3x3(x3) conv
    mid: int                        # channels of stage 1's 3x3 conv
    shortcut: str                   # "A" (no downsample tensors anywhere) or "B"
    num_classes: int
    stem_kernel: tuple[int, ...]


def resnet_shape(state: Mapping[str, torch.Tensor], what: str) -> ResNetShape:
    """Read a ResNet's structure from its tensors; :class:`WeightsError` naming ``what`` when a tensor a
    ResNet must have is missing."""
    need = ["conv1.weight", "fc.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight"]
    missing = [k for k in need if k not in state]
    if missing:
        raise WeightsError(f"{what}: not a ResNet layout (no {missing}; first keys {sorted(state)[:SHOW]})")
    conv1 = state["conv1.weight"]
    layers = []
    for i in range(1, 5):
        n = 0
        while f"layer{i}.{n}.conv1.weight" in state:
            n += 1
        if n == 0:
            raise WeightsError(f"{what}: no blocks in stage layer{i}")
        layers.append(n)
    block = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    conv2 = state["layer1.0.conv2.weight"]
    cardinality = max(1, conv2.shape[0] // conv2.shape[1])
    shortcut = "B" if any(re.fullmatch(r"layer\d+\.\d+\.downsample\.0\.weight", k) for k in state) else "A"
    return ResNetShape(dims=conv1.dim() - 2, in_channels=int(conv1.shape[1]), width=int(conv1.shape[0]),
                       layers=tuple(layers), block=block, cardinality=int(cardinality), mid=int(conv2.shape[0]),
                       shortcut=shortcut, num_classes=int(state["fc.weight"].shape[0]),
                       stem_kernel=tuple(conv1.shape[2:]))


def _arch_names(prefix: str) -> list[str]:
    from . import ARCHS

    return [a for a in ARCHS if a.startswith(prefix)]


def resnet_spec(shape: ResNetShape, arch: str | None, what: str) -> dict[str, Any]:
    """The ``model_spec`` of a ResNet of ``shape``: ``arch`` given, only the fields that do not make the
    architecture adapt (in_channels, num_classes, width, shortcut, a 2D bottleneck's width_per_group), so a
    file of another depth or cardinality is refused by the verification; detected, the architecture of the
    same block kind, depth and cardinality (``resnet2d-101``, ``resnext2d-101``: groups and width_per_group
    read from stage 1's grouped conv), with a ``depth`` / ``layers`` override where no name has them (e.g.
    ``{"arch": "resnet3d-50", "layers": (1, 1, 1, 1)}``, ``{"arch": "resnext2d-101", "depth": 50,
    "width_per_group": 4}`` for resnext50_32x4d).
    Only fields that differ from the architecture's defaults appear, besides in_channels and num_classes."""
    from . import config_fields, make_config
    from .resnet2d import DEPTHS as DEPTHS_2D
    from .resnet3d import DEPTHS as DEPTHS_3D

    depths = DEPTHS_3D if shape.dims == 3 else DEPTHS_2D
    detected: dict[str, Any] = {"in_channels": shape.in_channels, "num_classes": shape.num_classes}
    if arch is None:
        family = ("resnext" if shape.cardinality > 1 else "resnet") + ("3d-" if shape.dims == 3 else "2d-")
        names = _arch_names(family)
        depth = next((d for d, (b, n) in depths.items() if b == shape.block and n == shape.layers), None)
        exact = [a for a in names if make_config(a).depth == depth and make_config(a).block == shape.block]
        kind = [a for a in names if make_config(a).block == shape.block]
        if not kind:
            raise WeightsError(f"{what}: no motionprep architecture {family}* with {shape.block} blocks")
        arch = exact[0] if exact else kind[0]
        if depth is None:
            depth = next(d for d, (b, _) in depths.items() if b == shape.block)
            detected["layers"] = shape.layers
        detected["depth"] = depth
        if shape.dims == 3:
            detected["cardinality"] = shape.cardinality
        else:
            detected["groups"] = shape.cardinality
    from . import input_dims_of

    if input_dims_of(arch) != shape.dims:
        raise WeightsError(f"{what}: {shape.dims}D weights for the {input_dims_of(arch)}D architecture {arch!r}; "
                           f"motionprep does not inflate or collapse kernels")
    fields = config_fields(arch)
    base = make_config(arch)
    detected["width"] = shape.width
    if shape.dims == 2 and shape.block == "bottleneck":
        # torchvision's inner width int(planes * width_per_group / 64) * groups, at stage 1 (planes = width)
        detected["width_per_group"] = shape.mid // shape.cardinality * 64 // shape.width
    if shape.dims == 3 and "shortcut" in fields:
        detected["shortcut"] = shape.shortcut
    spec: dict[str, Any] = {"arch": arch}
    for key, value in detected.items():
        if key not in fields:
            continue
        if key in ("in_channels", "num_classes"):
            spec[key] = value
        elif key == "shortcut":
            cfg = make_config(arch, **{k: v for k, v in spec.items() if k != "arch"})
            if value != getattr(cfg, "shortcut_type", getattr(cfg, "shortcut", None)):
                spec[key] = value
        elif key == "layers":
            spec[key] = tuple(value)
        elif getattr(base, key) != value:
            spec[key] = value
    if "layers" in spec and "depth" in spec and depths[spec["depth"]][1] == tuple(spec["layers"]):
        del spec["layers"]
    return spec


# -- the mappers --------------------------------------------------------------------------------------------

def _check_arch_available(arch: str, source: str) -> None:
    from . import ARCHS

    if arch not in ARCHS:
        raise WeightsError(f"{source} maps to architecture {arch!r}, which is not available in this motionprep "
                           f"(it has {', '.join(ARCHS)}); the mapping is ready and needs only the network")


@dataclass(frozen=True)
class TorchvisionHook:
    """One torchvision model family: ``detect(state)`` says whether a state dict is one, ``map(state, arch)``
    turns it into a :class:`Mapped`. A new family is one more hook in :data:`TORCHVISION_HOOKS`."""

    name: str
    detect: Callable[[Mapping[str, torch.Tensor]], bool]
    map: Callable[[dict[str, torch.Tensor], str | None], Mapped]


def _tv_is_resnet(state: Mapping[str, torch.Tensor]) -> bool:
    w = state.get("conv1.weight")
    return w is not None and w.dim() == 4 and "layer1.0.conv1.weight" in state


def _tv_resnet(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """torchvision ResNet-18/34/50/101/152 (-> ``resnet2d-18`` .. ``resnet2d-152``), wide_resnet50_2 /
    101_2 (``width_per_group`` 128) and ResNeXt (:func:`_tv_resnext`): the names are motionprep's
    ResNet2d's."""
    shape = resnet_shape(state, "torchvision ResNet")
    if shape.cardinality > 1:
        return _tv_resnext(state, arch)
    if shape.stem_kernel != (7, 7):
        raise WeightsError(f"torchvision ResNet: conv1 kernel {shape.stem_kernel}, motionprep's is 7x7")
    return Mapped(dict(state), resnet_spec(shape, arch, "torchvision ResNet"))


def _tv_resnext(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """torchvision resnext101_32x8d (-> ``resnext2d-101``), resnext50_32x4d (-> ``resnext2d-101`` with
    ``depth`` 50 and ``width_per_group`` 4), resnext101_64x4d (``groups`` 64, ``width_per_group`` 4):
    torchvision's ResNet names with a grouped conv2; groups and width_per_group are read from stage 1's
    conv2 (groups = its output over its input channels per group)."""
    shape = resnet_shape(state, "torchvision ResNeXt")
    if shape.dims != 2 or shape.block != "bottleneck":
        raise WeightsError(f"torchvision ResNeXt: expected a 2D bottleneck network, got {shape.dims}D "
                           f"{shape.block} blocks")
    if shape.stem_kernel != (7, 7):
        raise WeightsError(f"torchvision ResNeXt: conv1 kernel {shape.stem_kernel}, motionprep's is 7x7")
    mapped = Mapped(dict(state), resnet_spec(shape, arch, "torchvision ResNeXt"))
    mapped.notes.append(f"ResNeXt: {shape.cardinality} groups, stage-1 inner width {shape.mid}")
    return mapped


def _tv_is_video_resnet(state: Mapping[str, torch.Tensor]) -> bool:
    w = state.get("stem.0.weight")
    return w is not None and w.dim() == 5 and "layer1.0.conv1.0.weight" in state


def _tv_video_resnet(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """torchvision ``video.r3d_18``: ``stem.0``/``stem.1`` (a 3x7x7 conv, stride (1, 2, 2), no max-pool) and
    blocks whose ``convN.0`` / ``convN.1`` are a conv and its batch norm -> ``conv1``/``bn1`` and
    ``convN``/``bnN`` of the Classifier layout (which ``r3d-18`` is expected to follow; the verification
    checks it). ``mc3_18`` / ``r2plus1d_18`` (other block convs) are refused."""
    block_convs = [v for k, v in state.items() if re.fullmatch(r"layer\d+\.\d+\.conv\d\.0\.weight", k)]
    if any(re.fullmatch(r"layer\d+\.\d+\.conv\d\.0\.\d+\.weight", k) for k in state) or \
            any(v.dim() == 5 and v.shape[2] == 1 for v in block_convs):
        raise WeightsError("torchvision video ResNet with (2+1)D or mixed convolutions (r2plus1d_18 / mc3_18): "
                           "motionprep has no such network; only video.r3d_18 maps (to 'r3d-18')")
    target = arch or "r3d-18"
    _check_arch_available(target, "torchvision video.r3d_18")
    out = rename_video_resnet(state)
    shape = resnet_shape(out, "torchvision video ResNet")
    spec = {"arch": target, "in_channels": shape.in_channels, "num_classes": shape.num_classes}
    return Mapped(out, _adapt(spec, {"width": shape.width, "layers": shape.layers}))


def rename_video_resnet(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision VideoResNet names -> the Classifier layout: ``stem.0``/``stem.1`` -> ``conv1``/``bn1``,
    ``layerI.J.convN.0``/``.1`` -> ``layerI.J.convN``/``bnN``; ``downsample.*`` and ``fc.*`` unchanged."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        k2 = re.sub(r"^stem\.0\.", "conv1.", k)
        k2 = re.sub(r"^stem\.1\.", "bn1.", k2)
        k2 = re.sub(r"^(layer\d+\.\d+)\.conv(\d)\.0\.", r"\1.conv\2.", k2)
        k2 = re.sub(r"^(layer\d+\.\d+)\.conv(\d)\.1\.", r"\1.bn\2.", k2)
        out[k2] = v
    return out


def _adapt(spec: dict[str, Any], detected: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` plus the ``detected`` values of fields the architecture's config has and whose default
    differs (``layers`` compared with the default's block counts) -- for networks added after this module."""
    from . import config_fields, make_config

    fields = config_fields(spec["arch"])
    base = make_config(spec["arch"])
    for key, value in detected.items():
        if key not in fields:
            continue
        default = getattr(base, "blocks", None) if key == "layers" else getattr(base, key)
        if key == "layers" and default is None:
            default = getattr(base, "layers", None)
        if default != value:
            spec[key] = tuple(value) if key == "layers" else value
    return spec


def _tv_is_s3d(state: Mapping[str, torch.Tensor]) -> bool:
    return "features.0.0.0.weight" in state and state["features.0.0.0.weight"].dim() == 5


#: a gate's weight in S3DG's names (``features.3.gate``, ``features.N.gate0`` .. ``gate3``, ``features.N.gate``)
_GATE_KEY = re.compile(r"^features\.\d+\.gate\d?\.transform\.weight$")


def _tv_s3d(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """torchvision ``video.s3d`` (S3D without gating) -> ``s3d``: ``features.*`` keep their names (S3DG has
    torchvision's indices), the classifier's 1x1x1 conv ``classifier.1`` becomes ``fc``
    (:func:`pipeline.models.s3dg.from_torchvision`). A state dict already in S3DG's names (``fc.*``, with
    or without gates) maps too: gated -> ``s3dg`` (``gate_at`` read from the gate names).

    Width, input channels and classes come from the shapes (Conv2d_1a's spatial conv has ``width`` output
    channels: 64 * width // 64). The gates are the rule of no partial loads: S3D weights into ``s3dg`` are
    refused (S3D-G's gates would have no weights; load them as ``s3d``), as are S3D-G weights into ``s3d``
    (their gates would be dropped)."""
    from .s3dg import from_torchvision

    if "classifier.1.weight" in state:
        out, names = from_torchvision(state), "torchvision"
    elif "fc.weight" in state:
        out, names = dict(state), "motionprep S3DG"
    else:
        raise WeightsError(f"S3D layout without a classifier (no classifier.1.weight / fc.weight; keys "
                           f"{sorted(state)[:SHOW]})")
    gates = sorted(k for k in out if _GATE_KEY.match(k))
    gate_at = None if not gates else ("branches" if any(".gate0." in k for k in gates) else "blocks")
    target = arch or ("s3dg" if gates else "s3d")
    from . import ARCHS, make_config
    from .s3dg import S3DGConfig

    if target not in ARCHS or ARCHS[target][0] is not S3DGConfig:
        raise WeightsError(f"S3D weights ({names} names) map to 's3d' (or, with gates, 's3dg'), not {target!r}")
    gating = make_config(target).gating
    if gating and not gates:
        raise WeightsError(f"these are S3D weights without feature gates (torchvision video.s3d): {target!r} is "
                           f"S3D-G, whose gates (one C x C matrix after Conv2d_2c and on every Inception "
                           f"branch) would have no weights, and motionprep never loads partially. Load them "
                           f"as --arch s3d (the default for this file); training S3D-G from S3D weights is "
                           f"not an import")
    if gates and not gating:
        raise WeightsError(f"these are S3D-G weights ({len(gates)} gates, e.g. {gates[0]}): {target!r} has no "
                           f"gates and would drop them; use --arch s3dg")
    w = out["features.0.0.0.weight"]
    spec: dict[str, Any] = {"arch": target, "in_channels": int(w.shape[1]),
                            "num_classes": int(out["fc.weight"].shape[0])}
    detected: dict[str, Any] = {"width": int(w.shape[0])}
    if gate_at is not None:
        detected["gate_at"] = gate_at
    notes = ["classifier.1 (1x1x1 conv) -> fc"] if names == "torchvision" else []
    return Mapped(out, _adapt(spec, detected), notes=notes)


def _tv_is_vgg(state: Mapping[str, torch.Tensor]) -> bool:
    return "features.0.weight" in state and state["features.0.weight"].dim() == 4 and \
        any(k.startswith("classifier.") for k in state)


def _tv_vgg(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """torchvision ``vgg16`` / ``vgg16_bn`` (and vgg11/13/19[_bn]) -> ``vgg16`` (``depth``, ``batch_norm``
    overridden where they differ): ``features.N`` keep their indices, ``classifier.0`` (fc6) and
    ``classifier.3`` (fc7) their names, ``classifier.6`` (fc8) becomes ``fc``. A state dict already in
    motionprep's VGG names (``fc.*``) maps too.

    Read from the shapes and indices: batch norm (``features.1.running_mean``), the convs per stage (a
    max-pool, which has no tensors, makes the gap between two convs' indices one longer), width (the first
    conv's outputs), input channels, ``hidden`` (fc6's outputs), ``pool_size`` (fc6's inputs over 8 w) and
    classes."""
    from .vgg import DEPTHS, VGGConfig

    convs = sorted(int(m.group(1)) for k in state
                   if (m := re.fullmatch(r"features\.(\d+)\.weight", k)) and state[k].dim() == 4)
    heads = sorted({k.split(".")[1] for k in state if k.startswith("classifier.")})
    ours = heads == ["0", "3"] and "fc.weight" in state          # already motionprep's VGG names
    if not convs or convs[0] != 0 or (heads != ["0", "3", "6"] and not ours):
        raise WeightsError(f"torchvision VGG: expected features.0 first and classifier.0/3/6, got convs at "
                           f"{convs[:SHOW]} and classifier entries {heads}")
    bn = "features.1.running_mean" in state
    step = 3 if bn else 2                                   # conv, [BN,] ReLU
    stages, count = [], 1
    for a, b in zip(convs, convs[1:]):
        if b - a == step:
            count += 1
        elif b - a == step + 1:                             # a max-pool between
            stages.append(count)
            count = 1
        else:
            raise WeightsError(f"torchvision VGG: convs at features.{a} and features.{b} fit no VGG layout "
                               f"({'with' if bn else 'without'} batch norm)")
    stages.append(count)
    depth = next((d for d, n in DEPTHS.items() if n == tuple(stages)), None)
    if depth is None:
        raise WeightsError(f"torchvision VGG with {stages} convs per stage: not one of VGG-11/13/16/19 "
                           f"({', '.join(f'{d}: {n}' for d, n in DEPTHS.items())})")
    target = arch or "vgg16"
    from . import ARCHS

    if target not in ARCHS or ARCHS[target][0] is not VGGConfig:
        raise WeightsError(f"torchvision VGG weights map to 'vgg16', not {target!r}")
    first, fc6 = state["features.0.weight"], state["classifier.0.weight"]
    width, last = int(first.shape[0]), int(state[f"features.{convs[-1]}.weight"].shape[0])
    pool = round((fc6.shape[1] / last) ** 0.5)
    if pool * pool * last != fc6.shape[1]:
        raise WeightsError(f"torchvision VGG: fc6 takes {fc6.shape[1]} inputs, not {last} x k x k")
    out = {("fc." + k[len("classifier.6."):] if k.startswith("classifier.6.") else k): v for k, v in state.items()}
    spec: dict[str, Any] = {"arch": target, "in_channels": int(first.shape[1]),
                            "num_classes": int(out["fc.weight"].shape[0])}
    detected = {"depth": depth, "width": width, "hidden": int(fc6.shape[0]), "pool_size": pool,
                "batch_norm": bn}
    return Mapped(out, _adapt(spec, detected), notes=[] if ours else ["classifier.6 (fc8) -> fc"])


#: torchvision families, tried in order
TORCHVISION_HOOKS: list[TorchvisionHook] = [
    TorchvisionHook("resnet", _tv_is_resnet, _tv_resnet),
    TorchvisionHook("video.r3d_18", _tv_is_video_resnet, _tv_video_resnet),
    TorchvisionHook("video.s3d", _tv_is_s3d, _tv_s3d),
    TorchvisionHook("vgg", _tv_is_vgg, _tv_vgg),
]


def map_torchvision(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    for hook in TORCHVISION_HOOKS:
        if hook.detect(state):
            mapped = hook.map(state, arch)
            mapped.notes.insert(0, f"torchvision {hook.name} layout")
            return mapped
    raise WeightsError(f"not a torchvision layout motionprep knows ({', '.join(h.name for h in TORCHVISION_HOOKS)}); "
                       f"first keys {sorted(state)[:SHOW]}")


def map_kenshohara(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """Hara's 3D ResNet / ResNeXt (2018 and 2020 code) and MARS's ResNeXt: the names are ours."""
    shape = resnet_shape(state, "3D ResNet (kenshohara/MARS)")
    if shape.dims != 3:
        raise WeightsError(f"3D ResNet (kenshohara/MARS): conv1 is {shape.dims + 2}-D, not a Conv3d; a 2D "
                           f"network's weights are --format torchvision")
    if shape.stem_kernel != (7, 7, 7):
        raise WeightsError(f"3D ResNet (kenshohara/MARS): conv1 kernel {'x'.join(map(str, shape.stem_kernel))} "
                           f"(conv1_t_size {shape.stem_kernel[0]}); motionprep's stem is 7x7x7, so only "
                           f"conv1_t_size 7 maps")
    if shape.cardinality > 1 and shape.mid != 2 * shape.width:
        raise WeightsError(f"3D ResNeXt (kenshohara/MARS): stage 1's grouped conv has {shape.mid} channels for a "
                           f"{shape.width}-channel stem; motionprep's ResNeXt has twice the stem "
                           f"({2 * shape.width}), as Hara's 2018 and MARS's code with cardinality 32. (Hara's "
                           f"2020 ResNeXt has a stem as wide as stage 1 and does not map)")
    notes = ["conv1_t_stride 1 and the max-pool assumed (they leave no tensors)"]
    return Mapped(dict(state), resnet_spec(shape, arch, "3D ResNet (kenshohara/MARS)"), notes=notes)


def map_mars(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """MARS (craston/MARS, models/resnext.py): Hara's 2018 ResNeXt, RGB (3) or Flow (2) input."""
    mapped = map_kenshohara(state, arch)
    shape = resnet_shape(state, "MARS ResNeXt")
    if shape.cardinality == 1 or shape.block != "bottleneck":
        raise WeightsError(f"not a MARS ResNeXt: {shape.block} blocks, cardinality {shape.cardinality} (MARS "
                           f"trains ResNeXt-101, 32 groups); a plain 3D ResNet is --format kenshohara")
    return mapped


def _renamed_resnet2d(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def map_coviar(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """CoViAR's ``Model`` (chaoyuaw/pytorch-coviar model.py): ``base_model`` is a torchvision ResNet."""
    others = sorted(k for k in state if not k.startswith("base_model."))
    if any(k.startswith("data_bn.") for k in others):
        raise WeightsError("CoViAR MV / residual stream: its data_bn (a BatchNorm2d on the input before "
                           "base_model.conv1) has no counterpart in motionprep's ResNet2d, and folding it into "
                           "conv1 is not exact at the zero-padded borders; only the I-frame stream (no data_bn) "
                           f"maps. Keys: {[k for k in others if k.startswith('data_bn.')][:SHOW]}")
    if others:
        raise WeightsError(f"CoViAR layout with keys outside base_model: {others[:SHOW]}")
    inner = _renamed_resnet2d(state, "base_model.")
    shape = resnet_shape(inner, "CoViAR base_model")
    if shape.dims != 2 or shape.cardinality > 1:
        raise WeightsError("CoViAR base_model: expected a torchvision 2D ResNet")
    return Mapped(inner, resnet_spec(shape, arch, "CoViAR base_model"),
                  notes=[f"CoViAR base_model ResNet ({shape.in_channels} input channels)"])


#: DMC-Net's EstimatorDenseNetTiny filters (conv_0 .. conv_4, predict_flow): motionprep's DMCGenerator's
DMC_TINY_FILTERS = (8, 8, 6, 4, 2, 2)


def map_dmcnet(state: dict[str, torch.Tensor], arch: str | None) -> Mapped:
    """DMC-Net's ``Model`` (facebookresearch/dmc-net code/dmcnet/model.py, code/dmcnet_GAN/model.py) with
    ``arch_estimator DenseNetTiny`` and ``gen_flow_or_delta 1`` (the published runs) -> ``dmcnet``.

    Their generator concatenates each conv's output *before* its input (``cat((conv_k(x), x))``), so conv_k
    sees ``[out_{k-1}, ..., out_0, mv+residual]``; ours appends (``[mv+residual, out_0, ..., out_{k-1}]``):
    each weight's input channels are reordered by block. ``gen_flow_or_delta`` leaves no tensors: 1 (DMC =
    MV + output, as motionprep) is assumed and reported."""
    from .dmc import DMCGeneratorConfig

    gen = {k[len("gen_flow_model."):]: v for k, v in state.items() if k.startswith("gen_flow_model.")}
    if any(k.startswith("conv_context") for k in gen):
        raise WeightsError("DMC-Net generator ContextNetwork (dilated convs): motionprep's DMCNet has the "
                           "DenseNetTiny generator only")
    names = [f"conv_{i}.0" for i in range(5)] + ["predict_flow"]
    missing = [f"gen_flow_model.{n}.weight" for n in names if f"{n}.weight" not in gen]
    if missing or any(k.startswith("conv_0_mv") for k in gen):
        raise WeightsError(f"DMC-Net generator is not DenseNetTiny (missing {missing[:SHOW]}; keys "
                           f"{sorted(gen)[:SHOW]}); motionprep's DMCNet has the DenseNetTiny generator only")
    filters = tuple(int(gen[f"{n}.weight"].shape[0]) for n in names)
    cfg = DMCGeneratorConfig()
    if filters != cfg.filters:
        raise WeightsError(f"DMC-Net generator filters {filters} (EstimatorDenseNet / Small?): motionprep's "
                           f"DMCNet has DenseNetTiny's {cfg.filters} only")
    x_ch = cfg.in_channels
    out: dict[str, torch.Tensor] = {}
    for k, name in enumerate(names):
        w, b = gen[f"{name}.weight"], gen[f"{name}.bias"]
        # theirs: [out_{k-1}, ..., out_0, x]; offsets of each block in their order
        theirs = [(j, filters[j]) for j in range(k - 1, -1, -1)] + [("x", x_ch)]
        start, offsets = 0, {}
        for tag, size in theirs:
            offsets[tag] = (start, size)
            start += size
        if w.shape[1] != start:
            raise WeightsError(f"DMC-Net generator {name}: {w.shape[1]} input channels, DenseNetTiny has {start}")
        order = [offsets["x"]] + [offsets[j] for j in range(k)]
        index = torch.cat([torch.arange(s, s + n) for s, n in order])
        out[f"generator.convs.{k}.weight"] = w.index_select(1, index).contiguous()
        out[f"generator.convs.{k}.bias"] = b.clone()
    cls = _renamed_resnet2d(state, "base_model.")
    shape = resnet_shape(cls, "DMC-Net base_model")
    if shape.dims != 2 or shape.cardinality > 1 or shape.in_channels != 2:
        raise WeightsError(f"DMC-Net base_model: expected a torchvision 2D ResNet on the 2-channel DMC, got "
                           f"{shape.in_channels} input channels")
    cls_spec = resnet_spec(shape, None, "DMC-Net base_model")
    if "depth" in cls_spec:
        raise WeightsError(f"DMC-Net base_model: a ResNet of depth {cls_spec['depth']}, which has no motionprep "
                           f"architecture name for DMCNet's classifier")
    out.update({f"classifier.{k}": v for k, v in cls.items()})
    dropped = sorted(k for k in state if not (k.startswith("gen_flow_model.") or k.startswith("base_model.")))
    unknown = [k for k in dropped if not (k.startswith("data_bn.") or k.startswith("discriminator."))]
    if unknown:
        raise WeightsError(f"DMC-Net layout with unknown keys: {unknown[:SHOW]}")
    if arch is not None and arch != "dmcnet":
        raise WeightsError(f"DMC-Net weights (generator + classifier) map to 'dmcnet', not {arch!r}")
    spec: dict[str, Any] = {"arch": "dmcnet", "classifier": cls_spec["arch"], "num_classes": shape.num_classes}
    for key in ("width", "layers"):
        if key in cls_spec:
            spec[key] = cls_spec[key]
    notes = ["gen_flow_or_delta 1 assumed (DMC = MV + generator output; the published runs)",
             "inputs in the authors' units (their normalised MV and residual), as the weights were trained"]
    if dropped:
        notes.append("dropped: data_bn (unused by DMC-Net's forward) and the GAN's discriminator (training only; "
                     "motionprep's DMCDiscriminator is a separate module)")
    return Mapped(out, spec, dropped=dropped, notes=notes)


def map_motionprep(state: dict[str, torch.Tensor], arch: str | None,
                   checkpoint: Mapping | None = None) -> Mapped:
    """A motionprep checkpoint (its ``model_spec``) or a bare state dict of our ResNets (read from shapes)."""
    if checkpoint is not None and isinstance(checkpoint.get("model_spec"), Mapping):
        spec = dict(checkpoint["model_spec"])
        if arch is not None and spec.get("arch") != arch:
            raise WeightsError(f"the motionprep checkpoint holds a {spec.get('arch')!r}, not {arch!r}")
        return Mapped(dict(state), spec)
    if arch is None:
        if any(k.startswith("generator.convs.") for k in state) or any(k.startswith("motionnet.") for k in state):
            raise WeightsError("a bare state dict of a composite motionprep network: name it with --arch")
        shape = resnet_shape(state, "motionprep state dict")
        return Mapped(dict(state), resnet_spec(shape, None, "motionprep state dict"))
    if arch.startswith(("resnet", "resnext")) and "conv1.weight" in state:
        shape = resnet_shape(state, "motionprep state dict")
        return Mapped(dict(state), resnet_spec(shape, arch, "motionprep state dict"))
    if arch == "dmcnet" and "classifier.conv1.weight" in state:      # the classifier's shapes give the rest
        shape = resnet_shape(_renamed_resnet2d(state, "classifier."), "motionprep DMCNet classifier")
        cls = resnet_spec(shape, None, "motionprep DMCNet classifier")
        spec = {"arch": "dmcnet", "classifier": cls["arch"], "num_classes": shape.num_classes,
                **{k: cls[k] for k in ("width", "layers") if k in cls}}
        return Mapped(dict(state), spec)
    return Mapped(dict(state), {"arch": arch})


#: format -> mapper(state without wrappers and ``module.``, arch or None)
MAPPERS: dict[str, Callable[[dict[str, torch.Tensor], str | None], Mapped]] = {
    "torchvision": map_torchvision,
    "kenshohara": map_kenshohara,
    "mars": map_mars,
    "coviar": map_coviar,
    "dmcnet": map_dmcnet,
    "motionprep": map_motionprep,
}


# -- classifier, verification -------------------------------------------------------------------------------

def _reference(spec: Mapping[str, Any], meta: bool = False) -> torch.nn.Module:
    """``build(**spec)`` without touching the global generator; on the meta device (shapes only: no memory,
    no initialisation cost) when ``meta``."""
    from . import build

    try:
        with torch.random.fork_rng(devices=[]):
            if meta:
                with torch.device("meta"):
                    return build(**spec)
            return build(**spec)
    except ValueError as exc:
        raise WeightsError(f"model_spec {dict(spec)} does not build: {exc}") from None


def classifier_prefix(model: torch.nn.Module) -> str:
    """The state-dict prefix of ``model.fc`` (``"fc."``, ``"classifier.fc."`` for DMCNet)."""
    for name, module in model.named_modules():
        if module is model.fc:
            return f"{name}."
    raise WeightsError(f"{type(model).__name__} has no fc among its modules")


def replace_classifier(state: dict[str, torch.Tensor], spec: dict[str, Any], num_classes: int,
                       seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``state`` and ``spec`` with a fresh classifier of ``num_classes`` outputs (PyTorch's default ``Linear``
    initialisation, seeded with ``seed``, without touching the global generator); the rest kept."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise WeightsError(f"num_classes must be a positive int, got {num_classes!r}")
    spec = {**spec, "num_classes": num_classes}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _reference(spec)
        prefix = classifier_prefix(model)
        fresh = {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}
    return {**{k: v for k, v in state.items() if not k.startswith(prefix)}, **fresh}, spec


def verify(state: Mapping[str, torch.Tensor], spec: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``state`` checked against ``build(**spec).state_dict()`` key for key and shape for shape, dtypes cast
    to the model's (fp16 files load as fp32); batch norms' missing ``num_batches_tracked`` (files before
    PyTorch 0.4.1) are added as 0. :class:`WeightsError` naming the first missing, unexpected and mis-shaped
    keys otherwise."""
    ref = _reference(spec, meta=True).state_dict()
    state = dict(state)
    for k in ref:
        if k.endswith(".num_batches_tracked") and k not in state and \
                k[:-len("num_batches_tracked")] + "running_mean" in state:
            state[k] = torch.zeros(ref[k].shape, dtype=ref[k].dtype)
    missing = [k for k in ref if k not in state]
    unexpected = [k for k in state if k not in ref]
    shapes = [f"{k} {tuple(state[k].shape)} (the network's {tuple(ref[k].shape)})"
              for k in ref if k in state and state[k].shape != ref[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                more = f" and {len(items) - SHOW} more" if len(items) > SHOW else ""
                parts.append(f"{label} ({len(items)}): {', '.join(items[:SHOW])}{more}")
        raise WeightsError(f"the weights do not fit {dict(spec)}: " + "; ".join(parts))
    return {k: state[k].to(ref[k].dtype) for k in ref}


# -- the entry points ---------------------------------------------------------------------------------------

def convert(obj: Any, arch: str | None = None, format: str = "auto", num_classes: int | None = None,
            source: str = "<object>") -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """:func:`load_pretrained` on an already loaded object (a dict as ``torch.load`` returns it)."""
    if format not in FORMATS:
        raise WeightsError(f"unknown format {format!r}: one of {', '.join(FORMATS)}")
    state, wrappers, checkpoint = unwrap(obj)
    state, stripped = strip_module(state)
    fmt = "motionprep" if checkpoint is not None and format == "auto" else format
    detected = fmt == "auto"
    if detected:
        fmt = detect_format(state)
    if fmt == "motionprep":
        mapped = map_motionprep(state, arch, checkpoint)
    else:
        mapped = MAPPERS[fmt](state, arch)
    spec = dict(mapped.spec)
    new_state = mapped.state
    replaced = num_classes is not None and num_classes != spec.get("num_classes")
    if replaced:
        new_state, spec = replace_classifier(new_state, spec, num_classes)
    new_state = verify(new_state, spec)
    info = {"source": source, "format": fmt, "detected": detected, "wrappers": wrappers,
            "module_prefix": stripped, "arch": spec["arch"], "model_spec": spec,
            "num_classes": spec.get("num_classes"), "classifier": "replaced" if replaced else "kept",
            "tensors": len(new_state), "dropped": mapped.dropped, "notes": mapped.notes}
    return new_state, spec, info


def load_pretrained(path: str | Path, arch: str | None = None, format: str = "auto",
                    num_classes: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Published or motionprep weights from ``path`` as ``(state_dict, model_spec, info)``.

    ``path``: any supported layout (module text: torchvision, kenshohara, mars, coviar, dmcnet) or a
    motionprep checkpoint, read with ``torch.load(weights_only=True)`` (never unpickled). ``arch``: the
    motionprep architecture to load into (a name of ``pipeline.models.ARCHS``); None detects it from the
    tensors. Given, only in_channels, num_classes, width and shortcut follow the file; a file of another
    depth or kind is refused. ``format``: ``"auto"`` (detected from the keys) or a layout name.
    ``num_classes``: a fresh classifier of that many outputs (seeded, deterministic); None keeps the file's.

    Returns the state dict (motionprep names, the model's dtypes, exactly the keys and shapes of
    ``pipeline.models.build(**model_spec).state_dict()``, so ``model.load_state_dict(state)`` is strict),
    the ``model_spec`` (``{"arch": ..., "in_channels": ..., "num_classes": ..., other overrides}``), and
    ``info``: ``format``, ``detected`` (bool), ``wrappers`` and ``module_prefix`` (what was unwrapped),
    ``arch``, ``num_classes``, ``classifier`` (``"kept"``/``"replaced"``), ``tensors`` (count), ``dropped``
    (source keys deliberately left out, e.g. DMC-Net's unused ``data_bn``) and ``notes``.

    A :class:`WeightsError` (a :class:`~pipeline.core.errors.CheckpointError`) for a missing, unreadable or
    pickled file (with how to re-save it), an unknown layout, a network motionprep does not have, and any
    missing, unexpected or mis-shaped key, named.
    """
    return convert(read_file(path), arch=arch, format=format, num_classes=num_classes, source=str(path))


def checkpoint_payload(state: Mapping[str, torch.Tensor], spec: Mapping[str, Any],
                       info: Mapping[str, Any]) -> dict[str, Any]:
    """The motionprep checkpoint of imported weights: tensors and plain values only. ``method`` is
    ``"import"``, ``classes`` empty (a published file names no classes), ``input`` None (the modality is
    the user's choice), ``source`` what was imported."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "method": "import",
            "model_spec": dict(spec), "model": dict(state), "classes": [], "input": None,
            "source": {"path": str(info.get("source")), "format": str(info.get("format")),
                       "classifier": str(info.get("classifier")),
                       "dropped": [str(k) for k in info.get("dropped", [])],
                       "notes": [str(n) for n in info.get("notes", [])]}}


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (serialised in memory, then a temporary renamed)."""
    buf = io.BytesIO()
    torch.save(dict(payload), buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def import_weights(src: str | Path, out: str | Path, arch: str | None = None, format: str = "auto",
                   num_classes: int | None = None) -> dict[str, Any]:
    """Convert ``src`` (:func:`load_pretrained`) and write a motionprep checkpoint to ``out`` atomically;
    returns ``info``. Nothing is written when the conversion fails."""
    state, spec, info = load_pretrained(src, arch=arch, format=format, num_classes=num_classes)
    save_checkpoint(out, checkpoint_payload(state, spec, info))
    return {**info, "out": str(out)}


__all__ = ["FORMATS", "MAPPERS", "Mapped", "TORCHVISION_HOOKS", "TorchvisionHook", "WeightsError", "convert",
           "detect_format", "import_weights", "load_pretrained", "read_file", "replace_classifier",
           "resnet_shape", "strip_module", "unwrap", "verify"]
