"""The methods ``prep-cli train --method`` knows: what each reads, which network it trains, what it learns from.

=============  ====================  ==========  ==============  =================================================
method         loaded for training   test input  network         signal
=============  ====================  ==========  ==============  =================================================
flow           flow                  flow        ``arch``        cross-entropy; the teacher of mers/mars/d3d
rgb            rgb                   rgb         ``arch``        cross-entropy
mers           rgb + flow            rgb         ``arch``        1: feature MSE to the frozen teacher, all layers
                                                                 but the last; 2: the last layer, cross-entropy
mars           rgb + flow            rgb         ``arch``        cross-entropy + alpha * feature MSE
d3d            rgb + flow            rgb         ``arch``        cross-entropy + lambda * logit MSE
resframe       resframe              resframe    resframe_arch   cross-entropy (the two-path motion path)
appearance     frame                 frame       appearance_arch cross-entropy (the two-path appearance path)
=============  ====================  ==========  ==============  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError

#: input modality -> the stage whose shards hold it
SOURCE_STAGE = {"rgb": "decode", "frame": "decode", "flow": "extract_flow", "resframe": "resframe",
                "mv": "extract_mv", "residual": "extract_mv"}


@dataclass(frozen=True)
class Phase:
    """One part of a method's training: ``loss`` names the signal, ``trains`` what gets gradients
    (``all``, ``backbone``: everything but the classifier, ``classifier``: the last linear layer alone),
    ``epochs`` the train-config key of its length."""

    name: str
    loss: str           # ce | mars | d3d | feature
    trains: str         # all | backbone | classifier
    epochs: str = "epochs"


@dataclass(frozen=True)
class Method:
    name: str
    input: str                  # the modality the trained network sees (at test time too)
    arch_key: str               # the train-config key naming its architecture
    phases: tuple[Phase, ...]
    teacher: str | None = None  # the method whose frozen network teaches it (on flow)

    @property
    def loads(self) -> tuple[str, ...]:
        """Modalities read for training: the input, plus the teacher's input when there is a teacher."""
        return (self.input, METHODS[self.teacher].input) if self.teacher else (self.input,)


_CE = (Phase("main", "ce", "all"),)
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("flow", "flow", "arch", _CE),
    Method("rgb", "rgb", "arch", _CE),
    Method("mers", "rgb", "arch", (Phase("features", "feature", "backbone"),
                                   Phase("classifier", "ce", "classifier", "mers_classifier_epochs")), "flow"),
    Method("mars", "rgb", "arch", (Phase("main", "mars", "all"),), "flow"),
    Method("d3d", "rgb", "arch", (Phase("main", "d3d", "all"),), "flow"),
    Method("resframe", "resframe", "resframe_arch", _CE),
    Method("appearance", "frame", "appearance_arch", _CE),
)}


def get(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    return METHODS[name]
