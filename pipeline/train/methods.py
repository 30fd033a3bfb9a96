"""The methods ``prep-cli train --method`` knows: what each reads, which network it trains, what it learns from.

=============  ====================  ==========  ==============  =================================================
method         loaded for training   test input  network         signal
=============  ====================  ==========  ==============  =================================================
flow           flow                  flow        ``arch``        cross-entropy; the teacher of mers/mars/d3d
rgb            rgb                   rgb         ``arch``        cross-entropy
mers           rgb + flow            rgb         ``arch``        alpha * feature MSE to the frozen teacher (all
                                                                 layers but the last) + the last layer's CE, each
                                                                 step (MARS code); two_step: the paper's 3.1
mars           rgb + flow            rgb         ``arch``        cross-entropy + alpha * feature MSE
d3d            rgb + flow            rgb         ``d3d_arch``    cross-entropy + lambda * logit MSE
resframe       resframe              resframe    resframe_arch   cross-entropy (the two-path motion path)
appearance     frame                 frame       appearance_arch cross-entropy (the two-path appearance path)
iframe         frame (at I-frames)   frame       iframe_arch     cross-entropy (CoViAR's I-frame stream)
mv             mv (one P-frame)      mv          coviar_arch     cross-entropy (CoViAR's motion-vector stream)
residual       residual (a P-frame)  residual    coviar_arch     cross-entropy (CoViAR's residual stream)
dmc            mv + residual + flow  mv +        dmcnet          1: flow MSE, generator only; 2: CE + alpha MSE;
                                     residual                    3: + lambda adversarial (DMC-Net 7.2, Adam)
spatial        frame                 frame       spatial_arch    cross-entropy (Hidden Two-Stream's spatial stream)
hidden         rgb                   rgb         ``hts_arch``    1: MotionNet alone, unsupervised (Adam); 2: the
                                                                 temporal stream, cross-entropy, MotionNet frozen
hidden_e2e     rgb                   rgb         ``hts_arch``    from hidden: end to end, cross-entropy
hidden_e2e_    rgb                   rgb         ``hts_arch``    from hidden: end to end, cross-entropy + gamma
unsup                                                            unsupervised (Hidden Two-Stream 3.2, 4.3)
=============  ====================  ==========  ==============  =================================================

The single-frame methods (iframe, mv, residual, dmc) read clips of ``length`` frames anchored at an
``anchor`` frame: the I-frames (``i``, frames ``k * gop``) or the P-frames (``p``) of the re-encoded video;
mv and residual see the anchor frame alone (the P-frame's vectors against the frame before it), dmc the
anchor's vectors and residual and the TV-L1 flow from the frame before it to the anchor (its target).
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
    loss: str           # ce | mars | mers | d3d | feature | dmc_flow | dmc | dmc_adversarial | unsupervised | ce_unsupervised
    trains: str         # all | backbone | classifier | generator | motionnet | temporal
    epochs: str = "epochs"
    optimizer: str | None = None    # sgd | adam; None: the method's recipe's


@dataclass(frozen=True)
class Method:
    name: str
    input: str                  # the modality the trained network sees (at test time too)
    arch_key: str               # the train-config key naming its architecture
    phases: tuple[Phase, ...]
    teacher: str | None = None  # the method whose frozen network teaches it (on flow)
    #: single-frame methods: clip length (None: clips.length), the frame the clip ends on (``p``: a P-frame,
    #: ``i``: an I-frame; None: any) and the modalities read at test time when not ``input`` alone
    length: int | None = None
    anchor: str | None = None
    test_inputs: tuple[str, ...] | None = None
    extra_loads: tuple[str, ...] = ()          # read for training only (dmc: the TV-L1 target flow)
    network: str | None = None                 # a composite network whose classifier is ``arch_key``'s
    init: str | None = None                    # the method whose trained model.pt this one starts from

    @property
    def inputs(self) -> tuple[str, ...]:
        """Modalities the network's input is made of (at test time too)."""
        return self.test_inputs or (self.input,)

    @property
    def loads(self) -> tuple[str, ...]:
        """Modalities read for training: the inputs, the teacher's input when there is a teacher, and any
        training-only target."""
        extra = (METHODS[self.teacher].input,) if self.teacher else ()
        return tuple(dict.fromkeys((*self.inputs, *extra, *self.extra_loads)))


_CE = (Phase("main", "ce", "all"),)
#: MERS as MARS's code trains it (MERS_train.py): every step, ``mars_alpha`` x the feature MSE trains all
#: layers but the classifier and the cross-entropy the classifier alone (on detached features), one step;
#: ``train.mers_schedule: two_step`` keeps the paper's two phases (the ``mers`` row below)
MERS_JOINT = (Phase("main", "mers", "all"),)
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("flow", "flow", "arch", _CE),
    Method("rgb", "rgb", "arch", _CE),
    Method("mers", "rgb", "arch", (Phase("features", "feature", "backbone"),
                                   Phase("classifier", "ce", "classifier", "mers_classifier_epochs")), "flow"),
    Method("mars", "rgb", "arch", (Phase("main", "mars", "all"),), "flow"),
    Method("d3d", "rgb", "d3d_arch", (Phase("main", "d3d", "all"),), "flow"),
    Method("resframe", "resframe", "resframe_arch", _CE),
    Method("appearance", "frame", "appearance_arch", _CE),
    Method("iframe", "frame", "iframe_arch", _CE, length=1, anchor="i"),
    Method("mv", "mv", "coviar_arch", _CE, length=1, anchor="p"),
    Method("residual", "residual", "coviar_arch", _CE, length=1, anchor="p"),
    Method("dmc", "dmc", "coviar_arch",
           (Phase("generator", "dmc_flow", "generator", "dmc_generator_epochs"),
            Phase("joint", "dmc", "all"),
            Phase("adversarial", "dmc_adversarial", "all", "dmc_adversarial_epochs")),
           length=2, anchor="p", test_inputs=("mv", "residual"), extra_loads=("flow",),
           network="dmcnet"),
    Method("spatial", "frame", "spatial_arch", _CE),
    Method("hidden", "rgb", "hts_arch", (Phase("motionnet", "unsupervised", "motionnet", "hts_motionnet_epochs", "adam"),
                                     Phase("temporal", "ce", "temporal")), network="hidden"),
    Method("hidden_e2e", "rgb", "hts_arch", (Phase("end_to_end", "ce", "all"),), network="hidden", init="hidden"),
    Method("hidden_e2e_unsup", "rgb", "hts_arch", (Phase("end_to_end", "ce_unsupervised", "all"),), network="hidden",
           init="hidden"),
)}


def get(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    return METHODS[name]
