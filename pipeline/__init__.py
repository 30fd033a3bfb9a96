"""motionprep: offline motion preparation for video action recognition.

Stages (each a ``prep-cli`` subcommand, a ``stages/<name>.smk`` rule file, a module here and a
``results/<name>/`` folder): ``make_demo``, ``manifest``, ``decode``, ``extract_flow``, ``reencode``,
``extract_mv``, ``residual_frames``, ``train``.
"""

__version__ = "0.1.0"
