"""``python -m pipeline.cli``: the same as ``prep-cli``."""

from . import main

main()
