"""``prep-cli models ...``: the networks of :mod:`pipeline.models` (torch is imported only when one runs)."""

from __future__ import annotations

import json

import click


def human(n: int, digits: int = 2) -> str:
    """A count in a short human form: ``33.15 M``, ``8.30 G``, ``512``."""
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return str(n)


@click.group("models")
def models_group() -> None:
    """The networks: parameters and multiply-adds of each architecture; published weights imported."""


@models_group.command("list")
def list_cmd() -> None:
    """Print the architecture names, one a line, with their input kind and config fields."""
    from .. import models

    for arch in models.ARCHS:
        kind = "clips (N, C, T, H, W)" if models.input_dims_of(arch) == 3 else "images (N, C, H, W)"
        click.echo(f"{arch:16s} {kind:22s} {', '.join(models.config_fields(arch))}")


@models_group.command("summary")
@click.argument("arch")
@click.option("--in-channels", default=None, type=click.IntRange(min=1),
              help="Input channels (3 RGB or residual frames, 2 flow). [default: the architecture's own: 3; "
                   "5 for dmcnet]")
@click.option("--classes", default=400, show_default=True, type=click.IntRange(min=1),
              help="Classifier outputs.")
@click.option("--frames", default=16, show_default=True, type=click.IntRange(min=1),
              help="Clip length T of 3D models (ignored by 2D ones).")
@click.option("--size", default=None, type=click.IntRange(min=1),
              help="Crop size S: input (1, C, T, S, S) or (1, C, S, S). [default: 112 for 3D, 224 for 2D and "
                   "for s3dg/s3d]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (integer parameters and macs).")
def summary_cmd(arch: str, in_channels: int, classes: int, frames: int, size: int | None,
                as_json: bool) -> None:
    """Parameters and multiply-adds (per clip or image) of the network ARCH (see `prep-cli models list`)."""
    from ..models.summary import describe

    try:
        info = describe(arch, in_channels=in_channels, classes=classes, frames=frames, size=size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ARCH") from None
    if as_json:
        click.echo(json.dumps(info))
        return
    shape = " x ".join(map(str, info["input_shape"]))
    click.echo(f"{arch}: input {shape}, {classes} classes, feature dim {info['feature_dim']}")
    click.echo(f"  parameters     {human(info['parameters'])}")
    click.echo(f"  multiply-adds  {human(info['macs'], 1)} (convolutions {human(info['conv_macs'], 1)}, "
               f"linear {human(info['linear_macs'], 1)})")


@models_group.command("import")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("--arch", default=None,
              help="The motionprep architecture to load into (see `prep-cli models list`); only input channels, "
                   "classes, width and shortcut follow the file, so another depth is refused. [default: detected "
                   "from the tensors]")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The motionprep checkpoint to write (atomically; tensors and plain values only).")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", "torchvision", "kenshohara", "mars", "coviar", "dmcnet", "motionprep"]),
              help="The layout of SRC; auto detects it from the keys (docs/weights.md).")
@click.option("--classes", default=None, type=click.IntRange(min=1),
              help="Replace the classifier by a fresh one of N outputs (everything else loaded). [default: keep "
                   "the file's]")
def import_cmd(src: str, arch: str | None, out: str, fmt: str, classes: int | None) -> None:
    """Convert the published weights SRC (torchvision, kenshohara/3D-ResNets-PyTorch, MARS, CoViAR, DMC-Net or
    a motionprep checkpoint) into a motionprep checkpoint whose model_spec rebuilds the network. Every tensor
    must fit the network by name and shape: anything missing, unexpected or mis-shaped is an error naming the
    keys, and nothing is written."""
    from ..models.weights import import_weights

    info = import_weights(src, out, arch=arch, format=fmt, num_classes=classes)
    how = "detected" if info["detected"] else "given"
    unwrapped = "/".join(info["wrappers"]) + (" module." if info["module_prefix"] else "")
    click.echo(f"{src}: format {info['format']} ({how}){f', unwrapped {unwrapped.strip()}' if unwrapped.strip() else ''}")
    click.echo(f"  arch {info['arch']}, {info['num_classes']} classes (classifier {info['classifier']}), "
               f"{info['tensors']} tensors")
    click.echo(f"  model_spec {json.dumps(info['model_spec'])}")
    if info["dropped"]:
        click.echo(f"  dropped {len(info['dropped'])} source tensors: {', '.join(info['dropped'][:5])}"
                   f"{' ...' if len(info['dropped']) > 5 else ''}")
    for note in info["notes"]:
        click.echo(f"  note: {note}")
    click.echo(f"wrote {out}")
