"""Training: the methods (:mod:`.methods`), their losses (:mod:`.losses`), checkpoints (:mod:`.checkpoint`),
several processes (:mod:`.distributed`) and the trainer (:mod:`.trainer`)."""

from .methods import METHODS, SOURCE_STAGE, Method, get
from .trainer import TrainRun, Trainer, load_model, train

__all__ = ["METHODS", "SOURCE_STAGE", "Method", "get", "TrainRun", "Trainer", "load_model", "train"]
