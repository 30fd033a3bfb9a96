"""Network features of every video (``prep-cli extract-features``): which feature sets a config asks for
(:mod:`.sets`) and running a trained network over every clip of every video (:mod:`.extract`), in batches
assembled across videos while DataLoader workers read the next ones."""

from .sets import FeatureSet, resolve_sets

__all__ = ["FeatureSet", "resolve_sets"]
