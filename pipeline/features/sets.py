"""The feature sets of ``extract_features.sets``: pure resolution of the config into :class:`FeatureSet` values.

A set is a trained method's name (``mars``: the set ``mars``, the dataset's trained ``mars`` model) or a
mapping ``{name, method | checkpoint, layer, pool, length, stride, view, dtype, logits}`` whose keys replace
the section's (the section holds every default, from the schema)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from ..core.errors import ConfigError

#: the keys of a set that default to the section's
SET_KEYS = ("layer", "pool", "length", "stride", "view", "dtype", "logits")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class FeatureSet:
    """One feature set: its ``name`` (the folder ``<name>/``), the network (``method``'s trained model, or
    ``checkpoint`` when given), the ``layer`` (``pooled`` or a module name) and its ``pool`` (mean | none),
    clip ``length`` and ``stride`` in frames (None: the recipe's length; stride None: the length), the
    spatial ``view`` (test | center | ten_crop), the storage ``dtype`` and whether ``logits`` are stored."""

    name: str
    method: str | None
    checkpoint: str | None
    layer: str
    pool: str
    length: int | None
    stride: int | None
    view: str
    dtype: str
    logits: bool

    def record(self) -> dict[str, Any]:
        """The set's settings as plain values (provenance)."""
        return {k: getattr(self, k) for k in ("name", "method", "checkpoint", *SET_KEYS)}


def _one(item: str | Mapping, cfg: Any) -> FeatureSet:
    base = {k: getattr(cfg, k) for k in SET_KEYS}
    if isinstance(item, str):
        return FeatureSet(name=item, method=item, checkpoint=None, **base)
    given = dict(item)
    name = given.get("name")
    if not name or not _NAME.match(str(name)):
        raise ConfigError(f"extract_features.sets: {item!r} needs a name of letters, digits, '_', '.', '-'")
    ck = given.get("checkpoint")
    method = given.get("method") or (None if ck else name)
    return FeatureSet(name=str(name), method=method, checkpoint=str(ck) if ck else None,
                      **{k: given[k] if k in given else base[k] for k in SET_KEYS})


def resolve_sets(cfg: Any, only: str | None = None, method: str | None = None,
                 checkpoint: str | None = None) -> list[FeatureSet]:
    """The sets of an ``extract_features`` section (:class:`ExtractFeaturesConfig`), or one set: ``only``
    (a configured set's name), or an ad-hoc one of ``method`` / ``checkpoint`` (named ``only``, else the
    method, else the checkpoint's parent folder name). Names must be unique."""
    if method or checkpoint:
        name = only or method or Path(str(checkpoint)).resolve().parent.name
        return [_one({"name": name, "method": method, "checkpoint": checkpoint}, cfg)]
    sets = [_one(item, cfg) for item in cfg.sets]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ConfigError(f"extract_features.sets: the names {names} are not unique")
    if only is not None:
        sets = [s for s in sets if s.name == only]
        if not sets:
            raise ConfigError(f"extract_features: no set {only!r}; sets: {names} (or give --method / --checkpoint)")
    return sets


def with_stride(fs: FeatureSet, length: int) -> FeatureSet:
    """``fs`` with its clip length and stride filled in (``length``: the recipe's, when the set has none)."""
    n = fs.length or length
    return replace(fs, length=n, stride=fs.stride or n)


__all__ = ["FeatureSet", "SET_KEYS", "resolve_sets", "with_stride", "view_name"]


def view_name(view: str, recipe_view: str) -> str:
    """The :mod:`pipeline.data.views` test view of a set's ``view`` for a method whose recipe tests with
    ``recipe_view``: ``test`` -> the recipe's; ``center`` -> its centre (:data:`views.CENTRE_VIEW`);
    ``ten_crop`` -> the 10 crops of its resize (squashed for a squashing recipe)."""
    from ..data.views import CENTRE_VIEW
    if view == "test":
        return recipe_view
    if view == "center":
        return CENTRE_VIEW[recipe_view]
    if view == "ten_crop":
        return "squash_ten_crop" if recipe_view.startswith("squash") else "ten_crop"
    raise ConfigError(f"extract_features.view: {view!r} is not one of test, center, ten_crop")
