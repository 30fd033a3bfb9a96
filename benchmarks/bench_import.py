"""Time of converting a published checkpoint (``prep-cli models import``), against the floor of reading
the same file and loading it into the network with plain torch, in one run.

Sources, random weights at full size in their authors' key layouts (the layouts of
``tests/data/weights/README.md``):

* ``mars``: craston/MARS's RGB ResNeXt-101 (3D, 32 groups, 400 classes, 48.3 M parameters), saved as its
  training script does: ``{"state_dict": ...}`` with DataParallel's ``module.`` prefix;
* ``torchvision``: ``resnext101_32x8d`` (2D, 1000 classes, 88.8 M parameters), a bare state dict.

Per source, best of ``--rounds``:

* ``import``: :func:`pipeline.models.weights.import_weights` (read with ``weights_only``, detect, map,
  verify key for key against the network, write the motionprep checkpoint atomically);
* ``floor``: ``torch.load(weights_only=True)``, strip the prefix by hand, ``torch.save`` of the same
  tensors: what a conversion cannot avoid (reading and writing the bytes).

    python benchmarks/bench_import.py [--rounds 3] [--workdir .bench/import]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from pipeline.models import build
from pipeline.models.weights import import_weights


def sources(workdir: Path) -> dict[str, tuple[Path, str, int]]:
    """Write the two source files once (seeded random weights); ``{name: (path, arch, classes)}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, arch, classes, wrap in (("mars", "resnext3d-101", 400, True),
                                      ("torchvision", "resnext2d-101", 1000, False)):
        path = workdir / f"{name}_{arch}.pth"
        if not path.exists():
            torch.manual_seed(0)
            state = build(arch, num_classes=classes).state_dict()
            obj = {"state_dict": {f"module.{k}": v for k, v in state.items()}} if wrap else state
            tmp = path.with_suffix(".tmp")
            torch.save(obj, tmp)
            os.replace(tmp, path)
        out[name] = (path, arch, classes)
    return out


def floor(path: Path, dst: Path) -> None:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj)
    torch.save({k.removeprefix("module."): v for k, v in state.items()}, dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(".bench/import"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    res = {}
    for name, (path, arch, classes) in sources(args.workdir).items():
        t = {"import": [], "floor": []}
        for _ in range(args.rounds):
            for kind in t:                           # alternating: the same page cache for both
                dst = args.workdir / f"out_{name}_{kind}.pt"
                t0 = time.perf_counter()
                if kind == "import":
                    import_weights(path, dst, arch=arch)
                else:
                    floor(path, dst)
                t[kind].append(time.perf_counter() - t0)
                dst.unlink()
        best = {k: min(v) for k, v in t.items()}
        res[name] = {"arch": arch, "parameters": sum(p.numel() for p in build(arch, num_classes=classes).parameters()),
                     "file_mb": round(path.stat().st_size / 1e6, 1),
                     "import_s": round(best["import"], 2), "floor_s": round(best["floor"], 2),
                     "import_over_floor": round(best["import"] / best["floor"], 2)}
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "rounds": args.rounds, "results": res}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
