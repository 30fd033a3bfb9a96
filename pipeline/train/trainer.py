"""The trainer: one method (:mod:`pipeline.train.methods`) on the shards of one dataset.

What a run does, in order:

1. Splits the train split into training and validation videos (:func:`split_ids`: per class, by a hash of
   the video id and the seed; the test split is never looked at) and records both lists.
2. Builds the network (seeded), loads the frozen teacher when the method has one (``eval()``, no
   gradients), or starts from a pretrained checkpoint (``finetune``: the last block and the classifier,
   or all layers).
3. Runs the method's phases (MERS has two) epoch by epoch: SGD with the configured rate, momentum and
   weight decay, a schedule per phase, bf16 autocast on CUDA. Epoch ``e`` visits the training videos in an
   order drawn from ``(seed, e)`` and draws each clip's position, crop and mirror from ``(seed, e, item)``,
   so a run resumed from its checkpoint takes the same next step as one never interrupted.
4. After each epoch: validation loss and clip accuracy, the schedule's step, the resumable checkpoint
   ``last.pt`` and a line of ``log.jsonl``; at the end the final ``model.pt``. Every file is written under a
   temporary name and renamed.

Several processes (``torchrun``) share each global batch (:mod:`pipeline.train.distributed`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..core.atomic import write_text_atomic
from ..core.faults import fault_point
from ..core.config import ClipsConfig, RecipeConfig, TrainConfig, effective_recipe, recipe_defaults, section_values
from ..core.errors import CheckpointError, ConfigError, StageError
from ..core.paths import TRAIN_FILES
from ..data.dataset import ShardClips, validation_views, worker_init
from ..models import build_spec as build_model, config_fields
from ..models.dmc import DMCDiscriminator
from . import checkpoint as ckpt
from . import distributed as D
from . import dmc as DMC
from . import losses as L
from . import optim as O
from . import unsupervised as U
from .unsupervised import SCALE_WEIGHTS
from .inputs import dmc_target, network_input, scales_of
from .methods import MERS_JOINT, Method, Phase, get as get_method
from . import pretrained as P

log = logging.getLogger("motionprep")
#: the stacked temporal stream end to end: MotionNet's SGD rate relative to the temporal stream's (at the full
#: rate its unsupervised pre-training is lost, and the demo's run diverged to NaN with the losses beside)
HIDDEN_MOTIONNET_LR = 0.01


# ----------------------------------------------------------------------------------------------------------
# Pure helpers


def split_ids(videos: Sequence[tuple[str, int]], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """``(video id, label)`` pairs of the train split -> (training ids, validation ids).

    Per class, the videos are ordered by SHA-1 of ``"<seed>:<id>"`` and the first ``round(fraction * n)``
    (at least one when ``fraction > 0`` and the class has two or more) are held out, so every class is
    validated and the choice does not depend on file order."""
    by_class: dict[int, list[str]] = {}
    for vid, label in videos:
        by_class.setdefault(int(label), []).append(vid)
    train, val = [], []
    for label in sorted(by_class):
        ids = sorted(by_class[label], key=lambda v: hashlib.sha1(f"{seed}:{v}".encode()).hexdigest())
        k = int(round(fraction * len(ids)))
        if fraction > 0 and len(ids) >= 2:
            k = min(max(k, 1), len(ids) - 1)
        val += ids[:k]
        train += ids[k:]
    return sorted(train), sorted(val)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Epoch ``epoch``'s global batches of item indices ``0..n-1``: a permutation drawn from ``(seed, epoch)``
    cut into ``batch_size`` runs; the incomplete tail is dropped (kept when it is the only batch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def method_clips(method: Method, gop: int) -> dict[str, Any]:
    """The clip settings a method overrides: single-frame methods' length and anchor (and the GOP)."""
    out: dict[str, Any] = {}
    if method.length is not None:
        out["length"] = method.length
    if method.anchor is not None:
        out.update(anchor=method.anchor, gop=gop)
    return out


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA device is visible to PyTorch ({torch.__version__})")
    return dev


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "bf16" and device.type != "cuda":
        raise ConfigError("precision bf16 needs a CUDA device (use auto or fp32 on the CPU)")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def model_of(data: Mapping[str, Any], device: torch.device | str = "cpu") -> nn.Module:
    """The trained network of a checkpoint already read (:func:`checkpoint.load`), in eval mode."""
    model = build_model(data["model_spec"])
    model.load_state_dict(data["model"])
    return model.to(device).eval()


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained network from a checkpoint, in eval mode, and the checkpoint's other entries."""
    data = ckpt.load(path)
    return model_of(data, device), data


class _Both(nn.Module):
    """``x -> (features, logits, cue)`` through one forward pass (so DDP sees a single call); ``cue`` is
    DMC-Net's generated motion cue (None for the other networks). ``detach_features``: the classifier sees
    the features detached, so its loss trains the classifier alone (MERS in MARS's code)."""

    def __init__(self, model: nn.Module, detach_features: bool = False):
        super().__init__()
        self.model = model
        self.detach_features = detach_features

    def forward(self, x: torch.Tensor):
        if hasattr(self.model, "forward_parts"):
            f, cue = self.model.forward_parts(x)
        else:
            f, cue = self.model.forward_features(x), None
        return f, self.model.classify(f.detach() if self.detach_features else f), cue


def trainable_names(model: nn.Module, trains: str, finetune: str) -> set[str]:
    """Names of the parameters one phase trains: ``all``, ``backbone`` (all but ``fc``), ``classifier``
    (``fc`` alone) or one part of a composite network (``generator`` of DMC-Net, ``motionnet`` or ``temporal``
    of the stacked temporal stream), narrowed by ``finetune == "last"`` to the last block and ``fc``."""
    fc = {n for n, p in model.named_parameters() if any(p is q for q in model.fc.parameters())}
    names = {n for n, _ in model.named_parameters()}
    if trains in ("generator", "motionnet", "temporal"):   # one part of a composite network
        chosen = {n for n in names if n.startswith(trains + ".")}
    elif trains == "classifier":
        chosen = fc
    elif trains == "backbone":
        chosen = names - fc
    else:
        chosen = names
    if finetune == "last":
        last = {n for n, p in model.named_parameters() if any(p is q for q in model.last_block.parameters())}
        chosen &= last | fc
    return chosen


def freeze_frozen_statistics(model: nn.Module) -> None:
    """Batch norms whose parameters are not trained keep their running statistics (``eval()``): a layer
    that is not trained does not change at all, its normalization included."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine \
                and not any(p.requires_grad for p in m.parameters(recurse=False)):
            m.eval()


# ----------------------------------------------------------------------------------------------------------
# The run


@dataclass
class TrainRun:
    """Everything one training run needs. ``shards``: ``{shard source: [paths]}`` (``rgb``, ``flow``,
    ``resframe``, ``mv``), position k of every list being shard k; ``teacher``: the teacher's ``model.pt``."""

    method: str
    train: TrainConfig
    clips: ClipsConfig
    shards: Mapping[str, Sequence[Path]]
    out_dir: Path
    teacher: Path | None = None
    progress: bool = True
    provenance: Mapping[str, Any] = field(default_factory=dict)
    gop: int = 12                 # I-frames every gop frames in the re-encoded videos (anchored methods)
    init: Path | None = None      # the model.pt a method with ``init`` starts from
    recipe: RecipeConfig | None = None   # the method's recipe (None: its default, with train's and clips' overrides)

    def effective_recipe(self) -> RecipeConfig:
        """The recipe this run uses: ``recipe`` as given, or the method's default recipe with the non-null
        overrides of ``train`` and ``clips``."""
        if self.recipe is not None:
            return self.recipe
        return effective_recipe(recipe_defaults()[self.method], train=self.train, clips=self.clips)

    def path(self, kind: str) -> Path:
        return Path(self.out_dir) / TRAIN_FILES[kind]


def phase_epochs(ph: Phase, cfg: TrainConfig, recipe: RecipeConfig) -> int:
    """Epochs of one phase: the recipe's ``epochs``, or the train-config key the phase names."""
    return int(recipe.epochs if ph.epochs == "epochs" else getattr(cfg, ph.epochs))


def _phase_plan(method: Method, cfg: TrainConfig, recipe: RecipeConfig) -> list[tuple[int, int]]:
    """(phase index, epoch within the phase) of every global epoch."""
    return [(p, e) for p, ph in enumerate(method.phases) for e in range(phase_epochs(ph, cfg, recipe))]


class Trainer:
    def __init__(self, run: TrainRun):
        self.run = run
        self.method = get_method(run.method)
        self.cfg = run.train
        if self.method.name == "mers" and self.cfg.mers_schedule == "joint":    # MARS's code: one phase
            self.method = dataclasses.replace(self.method, phases=MERS_JOINT)
        self.recipe = run.effective_recipe()
        self.device = resolve_device(self.cfg.device)
        self.world = D.setup(self.device)
        if self.device.type == "cuda" and self.world.size > 1:
            self.device = torch.device("cuda", self.world.local_rank)
            torch.cuda.set_device(self.device)
        self.bf16 = use_bf16(self.cfg.precision, self.device)
        if self.method.teacher and run.teacher is None:
            raise ConfigError(f"method {self.method.name} needs the trained {self.method.teacher} teacher "
                              "(its model.pt)")
        self._datasets()
        self._networks()
        self.plan = _phase_plan(self.method, self.cfg, self.recipe)
        self.phase = -1
        self.optimizer = self.scheduler = None
        self.history: list[dict] = []

    # -- set-up -------------------------------------------------------------------------------------------
    def _dataset(self, mode: str, ids: Iterable[str], seed: int | None = None, static: bool = False,
                 recipe: RecipeConfig | None = None) -> ShardClips:
        return ShardClips.from_config(self.run.shards, "+".join(self.method.loads), self.run.clips,
                                      recipe or self.recipe, mode=mode, split="train", seed=seed, ids=ids,
                                      static=static, **method_clips(self.method, self.run.gop))

    def _datasets(self) -> None:
        full = self._dataset("test", None, recipe=validation_views(self.recipe))
        if not full.videos:
            raise ConfigError(f"train {self.method.name}: the shards hold no video of the train split")
        self.classes = list(full.classes)
        self.train_ids, self.val_ids = split_ids([(v.video_id, v.label) for v in full.videos],
                                                 self.cfg.val_fraction, self.cfg.seed)
        self.train_set = self._dataset("train", self.train_ids, seed=self.cfg.seed)
        self.scales = scales_of(self.train_set)
        self.val_set = (self._dataset("test", self.val_ids, recipe=validation_views(self.recipe))
                        if self.val_ids else None)
        bs = self.recipe.batch_size
        if bs % self.world.size:
            raise ConfigError(f"batch size {bs} is not a multiple of the {self.world.size} processes")
        self.batch_size = min(bs, len(self.train_set) - len(self.train_set) % self.world.size)
        if self.batch_size < self.world.size:
            raise ConfigError(f"train {self.method.name}: {len(self.train_set)} training videos for "
                              f"{self.world.size} processes")

    def _in_channels(self) -> int:
        sample = {k: v[None] for k, v in self.train_set[0].items()}
        return int(network_input(self.method, sample, self.scales).shape[1])

    def _networks(self) -> None:
        cfg = self.cfg
        arch = getattr(cfg, self.method.arch_key)
        spec: dict[str, Any] = {"arch": arch, "in_channels": self._in_channels(), "num_classes": len(self.classes)}
        if self.method.network == "dmcnet":     # DMC-Net: the generator, then the arch_key's network
            spec = {**spec, "arch": "dmcnet", "classifier": arch}
        elif self.method.network == "hidden":   # MotionNet, then the arch_key's network on its flow
            if self.recipe.size % 2 ** cfg.hts_scales:
                raise ConfigError(f"train {self.method.name}: the input size {self.recipe.size} is not a multiple of "
                                  f"2**hts_scales = {2 ** cfg.hts_scales} (MotionNet's strides)")
            spec = {**spec, "arch": "hidden", "temporal": arch, "frames": self.train_set.length,
                    "motionnet_width": cfg.hts_motionnet_width, "scales": cfg.hts_scales,
                    "flow_mean": self.run.clips.flow_mean, "rgb_mean": list(self.run.clips.rgb_mean)}
        takes = config_fields(spec["arch"])     # VGG has no blocks per stage: train.layers does not apply
        if cfg.width is not None and "width" in takes:
            spec["width"] = cfg.width
        if cfg.layers is not None and "layers" in takes:
            spec["layers"] = list(cfg.layers)
        weights = None
        if cfg.pretrained and not self.method.init:       # the file's network, the run's inputs and classes
            weights = P.read(cfg.pretrained, cfg.pretrained_format)
            spec = P.run_spec(spec, weights, self.method.arch_key)
        torch.manual_seed(cfg.seed)
        model = build_model(spec)
        self.pretrained_info = None
        if self.method.init:
            self._load_init(model)
        elif weights is not None:
            self.pretrained_info = P.load_into(model, weights, cfg.cross_modality)
        elif cfg.finetune is not None:
            raise ConfigError(f"train.finetune {cfg.finetune!r} needs train.pretrained (weights to start from)")
        self.spec = spec
        # what trains from pretrained weights: train.finetune, else the recipe's (MARS: the last block + fc)
        self.finetune_layers = cfg.finetune or (self.recipe.finetune_layers if self.pretrained_info else "all")
        self.model = model.to(self.device)
        if self.world.size > 1:
            self.model = D.convert_batchnorm(self.model, self.device)
        self.teacher = None
        if self.method.teacher:
            teacher, data = load_model(self.run.teacher, self.device)
            if data.get("method") != self.method.teacher or list(data.get("classes", [])) != self.classes:
                raise CheckpointError(f"{self.run.teacher} is not a {self.method.teacher} teacher of these "
                                      f"classes (method {data.get('method')!r})")
            for p in teacher.parameters():
                p.requires_grad_(False)
            self.teacher = teacher.eval()
            self.teacher_source = str(self.run.teacher)
        self.disc = self.disc_opt = None
        if any(ph.loss == "dmc_adversarial" for ph in self.method.phases):     # DMC-Net's discriminator
            torch.manual_seed(cfg.seed + 1)
            self.disc_module = DMCDiscriminator().to(self.device)
            self.disc_opt = O.build_optimizer([{"params": list(self.disc_module.parameters())}], self.recipe)
            self.disc = self.disc_module if self.world.size == 1 else nn.parallel.DistributedDataParallel(
                D.convert_batchnorm(self.disc_module, self.device),
                device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _load_init(self, model: nn.Module) -> None:
        """Start from the trained ``init`` method (the stacked temporal stream fine-tuned end to end)."""
        path = self.run.init
        if path is None:
            raise ConfigError(f"method {self.method.name} starts from the trained {self.method.init} (its model.pt)")
        data = ckpt.load(path)
        if data.get("method") != self.method.init or list(data.get("classes", [])) != self.classes:
            raise CheckpointError(f"{path} is not a {self.method.init} model of these classes (method "
                                  f"{data.get('method')!r})")
        model.load_state_dict(data["model"])
        log.info("started from %s", path)

    @staticmethod
    def spec_name(model: nn.Module) -> str:
        return type(model).__name__

    # -- phases -------------------------------------------------------------------------------------------
    def _enter_phase(self, p: int) -> None:
        ph = self.method.phases[p]
        names = trainable_names(self.model, ph.trains, self.finetune_layers)
        for n, prm in self.model.named_parameters():
            prm.requires_grad_(n in names)
        if hasattr(self.model, "detach_cue"):      # DMC-Net's joint step: the CE trains the classifier alone
            self.model.detach_cue = ph.loss == "dmc"
        groups = O.param_groups(self.model, names, self.recipe, motionnet_mult=HIDDEN_MOTIONNET_LR,
                                pretrained=bool(self.cfg.pretrained or self.method.init))
        if ph.optimizer == "adam" and self.method.network == "hidden":     # MotionNet's unsupervised Adam
            self.optimizer = O.build_optimizer(groups, self.recipe, optimizer="adam", lr=self.cfg.hts_lr,
                                               weight_decay=0.0)       # the authors' solver: Adam, no decay
        else:
            self.optimizer = O.build_optimizer(groups, self.recipe)
        self.scheduler = O.build_scheduler(self.optimizer, self.recipe, phase_epochs(ph, self.cfg, self.recipe))
        net = _Both(self.model, detach_features=ph.loss == "mers")
        if self.world.size > 1:
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.net = net
        self.phase = p

    def _loss(self, ph: Phase, batch: Mapping[str, torch.Tensor], feats: torch.Tensor, logits: torch.Tensor,
              cue: torch.Tensor | None = None, train: bool = True):
        y = batch["label"]
        if ph.loss == "ce":
            loss = L.cross_entropy(logits, y)
            return loss, {"ce": loss.detach().item()}
        if ph.loss in ("unsupervised", "ce_unsupervised"):       # Hidden Two-Stream: cue = (flows, frames)
            flows, frames = cue
            weights = SCALE_WEIGHTS[-len(flows):]
            unsup, parts = U.motionnet_loss(frames.float(), [f.float() for f in flows], weights=weights)
            parts = {k: parts[k] for k in ("pixel", "smooth", "ssim")}
            if ph.loss == "unsupervised":
                return unsup, {"unsup": unsup.detach().item(), **parts}
            ce = L.cross_entropy(logits, y)
            return ce + self.cfg.hts_gamma * unsup, {"ce": ce.detach().item(), "unsup": unsup.detach().item()}
        if ph.loss.startswith("dmc"):
            target = dmc_target(batch, self.scales)
            if ph.loss == "dmc_flow":
                loss = DMC.flow_mse(cue.float(), target)
                return loss, {"mse": loss.detach().item()}
            d_fake = None
            if ph.loss == "dmc_adversarial" and train:   # fakes then reals in one batch, as the authors' code
                d_fake = self.disc(torch.cat([cue.float(), target.float()]))[:len(cue)]
            return DMC.dmc_loss(logits, y, cue.float(), target, d_fake, self.cfg.dmc_alpha, self.cfg.dmc_lambda)
        with torch.no_grad(), self._autocast():
            t_feats = self.teacher.forward_features(batch[get_method(self.method.teacher).input])
            t_logits = self.teacher.classify(t_feats)
        if ph.loss == "feature":
            loss = L.feature_mse(feats, t_feats)
            return loss, {"mse": loss.detach().item()}
        if ph.loss == "mers":           # the classifier's logits come from detached features (_Both)
            return L.mars_loss(logits, feats, t_feats, y, self.cfg.mars_alpha)
        if ph.loss == "mars":
            return L.mars_loss(logits, feats, t_feats, y, self.cfg.mars_alpha)
        if ph.loss == "d3d":
            return L.d3d_loss(logits, t_logits, y, self.cfg.d3d_lambda, self.cfg.d3d_reduction)
        raise ValueError(f"unknown loss {ph.loss!r}")

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16) if self.device.type == "cuda" \
            else torch.autocast("cpu", enabled=False)

    def _to_device(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _loader(self, dataset: ShardClips, batches: list[list[int]]) -> DataLoader:
        w = self.cfg.workers
        return DataLoader(dataset, batch_sampler=batches, num_workers=w, worker_init_fn=worker_init,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          prefetch_factor=4 if w else None)

    # -- one epoch ----------------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> dict:
        ph = self.method.phases[self.phase]
        self.train_set.seed = self.cfg.seed * 1_000_003 + epoch      # clip draws of this epoch
        batches = [D.rank_slice(b, self.world)
                   for b in epoch_batches(len(self.train_set), self.batch_size, self.cfg.seed, epoch)]
        self.model.train()
        if not (self.pretrained_info and self.recipe.finetune_bn == "train"):   # MARS's fine-tuning: they update
            freeze_frozen_statistics(self.model)  # MERS step 2, finetune "last": frozen layers stay as they are
        bar = tqdm(total=len(batches), desc=f"{self.method.name} epoch {epoch + 1}/{len(self.plan)}",
                   unit="batch", disable=not (self.run.progress and self.world.main), dynamic_ncols=True,
                   leave=False)
        total = correct = 0
        loss_sum = 0.0
        parts_sum: dict[str, float] = {}
        wait = 0.0
        start = time.perf_counter()
        t0 = start
        for batch in self._loader(self.train_set, batches):
            wait += time.perf_counter() - t0
            batch = self._to_device(batch)
            x = network_input(self.method, batch, self.scales)
            with self._autocast():
                feats, logits, cue = self.net(x)
                if ph.loss == "dmc_adversarial":
                    parts_d = self._discriminator_step(cue, batch)
                loss, parts = self._loss(ph, batch, feats, logits, cue)
                if ph.loss == "dmc_adversarial":
                    parts = {**parts, **parts_d}
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            fault_point("train.step")
            n = len(x)
            total += n
            loss_sum += loss.detach().item() * n
            correct += int((logits.argmax(1) == batch["label"]).sum())
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v * n
            elapsed = time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / total:.4f}", clips_s=f"{total * self.world.size / elapsed:.1f}")
            t0 = time.perf_counter()
        bar.close()
        seconds = time.perf_counter() - start
        if not math.isfinite(loss_sum):
            raise StageError(f"train {self.method.name}: the loss is {loss_sum} in epoch {epoch + 1} (phase "
                             f"{ph.name}): training diverged; lower the learning rate (now {self.recipe.lr}: train.lr or recipes.{self.method.name}.lr)")
        out = {"train_loss": D.all_mean(loss_sum / max(total, 1), self.world),
               "train_acc": D.all_mean(correct / max(total, 1), self.world),
               **{f"train_{k}": D.all_mean(v / max(total, 1), self.world) for k, v in parts_sum.items()},
               "clips": total * self.world.size, "seconds": seconds,
               "clips_per_s": total * self.world.size / max(seconds, 1e-9),
               "data_wait": wait / max(seconds, 1e-9)}
        if self.device.type == "cuda":
            out["gpu_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        return out

    def _discriminator_step(self, cue: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One update of DMC-Net's discriminator: TV-L1 flow is real, the (detached) DMC generated; the
        generator's adversarial term is then computed against the updated discriminator."""
        self.disc.train()
        fake = cue.detach().float()
        logits = self.disc(torch.cat([fake, dmc_target(batch, self.scales).float()]))   # one batch, as the authors
        loss = DMC.discriminator_loss(logits[len(fake):], logits[:len(fake)])
        self.disc_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.disc_opt.step()
        return {"disc": loss.detach().item()}

    @torch.no_grad()
    def _validate(self) -> dict:
        if self.val_set is None:
            return {}
        ph = self.method.phases[self.phase]
        self.model.eval()
        items = list(range(len(self.val_set)))[self.world.rank::self.world.size]
        bs = max(1, self.batch_size // self.world.size)
        batches = [items[i:i + bs] for i in range(0, len(items), bs)]
        stats = torch.zeros(3, dtype=torch.float64)          # loss sum, correct, clips
        for batch in self._loader(self.val_set, batches):
            batch = self._to_device(batch)
            with self._autocast():
                feats, logits, cue = _Both(self.model)(network_input(self.method, batch, self.scales))
                loss, _ = self._loss(ph, batch, feats, logits, cue, train=False)
            n = len(logits)
            stats += torch.tensor([loss.item() * n, float((logits.argmax(1) == batch["label"]).sum()), n],
                                  dtype=torch.float64)
        if self.world.size > 1:
            torch.distributed.all_reduce(stats)
        return {"val_loss": float(stats[0] / max(stats[2], 1)), "val_acc": float(stats[1] / max(stats[2], 1))}

    # -- checkpoints --------------------------------------------------------------------------------------
    def _payload(self) -> dict:
        return {"method": self.method.name, "model_spec": self.spec, "model": self.model.state_dict(),
                "classes": self.classes, "input": self.method.input, "seed": self.cfg.seed, "gop": self.run.gop,
                "settings": json.loads(json.dumps(self.settings()))}

    def settings(self) -> dict:
        return {"method": self.method.name, "train": section_values(self.cfg),
                "clips": section_values(self.run.clips), "recipe": section_values(self.recipe), "teacher": str(self.run.teacher or ""),
                "world_size": self.world.size, "device": str(self.device), "bf16": self.bf16,
                "batch_size": self.batch_size, "finetune_layers": self.finetune_layers,
                "pretrained": self.pretrained_info or {}, **dict(self.run.provenance)}

    def _save_resumable(self, epoch: int) -> None:
        if not self.world.main:
            return
        ckpt.save(self.run.path("checkpoint"), {
            **self._payload(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "phase": self.phase, "epoch": epoch, "rng": ckpt.rng_state(), "history": self.history,
            **({"discriminator": self.disc_module.state_dict(), "discriminator_optimizer": self.disc_opt.state_dict()}
               if self.disc is not None else {})})

    def _resume(self) -> int:
        path = self.run.path("checkpoint")
        if not path.exists():
            return 0
        data = ckpt.load(path)
        if data.get("method") != self.method.name or data.get("model_spec") != self.spec:
            raise CheckpointError(f"{path} belongs to another run (method {data.get('method')!r}, network "
                                  f"{data.get('model_spec')}); remove it or use another --out")
        changed = settings_diff(data.get("settings", {}), json.loads(json.dumps(self.settings())))
        if changed:         # the workflow always asks to resume: a run of other settings starts over
            log.warning("%s: %s was written with other settings (%s); training starts from epoch 1 and "
                        "replaces it", self.method.name, path, ", ".join(changed[:8]))
            return 0
        self.model.load_state_dict(data["model"])
        self._enter_phase(int(data["phase"]))
        self.optimizer.load_state_dict(data["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(data["scheduler"])
        ckpt.set_rng_state(data["rng"])
        if self.disc is not None:
            self.disc_module.load_state_dict(data["discriminator"])
            self.disc_opt.load_state_dict(data["discriminator_optimizer"])
        self.history = list(data.get("history", []))
        log.info("resumed %s from %s after epoch %d", self.method.name, path, int(data["epoch"]) + 1)
        return int(data["epoch"]) + 1

    def _write_log(self) -> None:
        if self.world.main:
            write_text_atomic(self.run.path("log"), "".join(json.dumps(h) + "\n" for h in self.history))

    # -- main loop ----------------------------------------------------------------------------------------
    def fit(self, resume: bool = False, stop_after: int | None = None) -> dict:
        """Train (from the last checkpoint when ``resume``); ``stop_after``: stop after that many global
        epochs (an interruption, for tests). Returns a summary."""
        out = Path(self.run.out_dir)
        if self.world.main:
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.run.path("config"), json.dumps(self.settings(), indent=1) + "\n")
            write_text_atomic(self.run.path("split"), json.dumps(
                {"rule": f"per class, SHA-1 of '<seed>:<video id>', first round({self.cfg.val_fraction} n) "
                         "held out; from the train split only", "seed": self.cfg.seed,
                 "train": self.train_ids, "val": self.val_ids}, indent=1) + "\n")
        start = self._resume() if resume else 0
        for epoch in range(start, len(self.plan)):
            if stop_after is not None and epoch >= stop_after:
                return {"stopped_after": epoch}
            p, _ = self.plan[epoch]
            if p != self.phase:
                self._enter_phase(p)
            t = time.perf_counter()
            row = {"epoch": epoch + 1, "phase": self.method.phases[p].name,
                   "lr": self.optimizer.param_groups[0]["lr"], **self._train_epoch(epoch), **self._validate()}
            row["epoch_seconds"] = time.perf_counter() - t
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(row.get("val_loss", row["train_loss"]))
            elif self.scheduler is not None:
                self.scheduler.step()
            self.history.append(row)
            self._save_resumable(epoch)
            self._write_log()
            log.info("%s epoch %d/%d: %s", self.method.name, epoch + 1, len(self.plan),
                     ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
        if self.world.main:
            ckpt.save(self.run.path("model"), {**self._payload(), "history": self.history})
        last = self.history[-1] if self.history else {}
        return {"method": self.method.name, "model": str(self.run.path("model")), "epochs": len(self.plan),
                "train_videos": len(self.train_ids), "val_videos": len(self.val_ids),
                "val_acc": last.get("val_acc"), "train_acc": last.get("train_acc"),
                "resumed_after": start}

    def close(self) -> None:
        D.teardown(self.world)


#: settings that may change between an interrupted run and its resumption (where it runs, not what it learns)
RESUMABLE_CHANGES = ("device", "train.device", "train.workers")


def _flat(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def settings_diff(old: Mapping, new: Mapping) -> list[str]:
    """Dotted keys whose values differ between two runs' :meth:`Trainer.settings` (``train.lr``, ...),
    except :data:`RESUMABLE_CHANGES`."""
    a, b = _flat(old), _flat(new)
    return sorted(k for k in set(a) | set(b) if k not in RESUMABLE_CHANGES and a.get(k) != b.get(k))


def train(run: TrainRun, resume: bool = False) -> dict:
    """Train one method; see :class:`Trainer`."""
    trainer = Trainer(run)
    try:
        return trainer.fit(resume=resume)
    finally:
        trainer.close()


__all__ = ["TrainRun", "Trainer", "train", "split_ids", "epoch_batches", "resolve_device", "build_model",
           "load_model", "model_of", "trainable_names", "method_clips"]
