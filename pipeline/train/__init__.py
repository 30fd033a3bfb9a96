"""Training: the methods (:mod:`.methods`), their losses (:mod:`.losses`), checkpoints (:mod:`.checkpoint`),
several processes (:mod:`.distributed`) and the trainer (:mod:`.trainer`).

Importing the package gives the methods table alone (no torch), so that ``prep-cli`` and the Snakefile,
which read it, start fast; the trainer is imported from :mod:`.trainer` where a run needs it."""

from .methods import METHODS, SOURCE_STAGE, Method, get

__all__ = ["METHODS", "SOURCE_STAGE", "Method", "get"]
