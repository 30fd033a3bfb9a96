"""motionprep: offline motion preparation for video action recognition.

Stages (each a ``prep-cli`` subcommand, a ``stages/<name>.smk`` rule file, a module ``pipeline/steps/<name>.py``
and a ``results/<name>/`` folder): ``make_demo``, ``manifest``, ``decode``, ``extract_flow``, ``reencode``,
``extract_mv``, ``resframe`` (:data:`pipeline.steps.NAMES`). docs/architecture.md describes the packages.
"""

__version__ = "0.1.0"
