"""``prep-cli``: every stage of the pipeline as a subcommand.

Each stage module defines its click command(s) in a ``commands`` list; this file only assembles them, so
``prep-cli <name>`` lives in ``pipeline/<name>.py`` (dashes become underscores).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from . import __version__

# Modules that contribute commands (each has a module-level ``commands`` list of click commands).
COMMAND_MODULES = (
    "pipeline.make_demo",
    "pipeline.manifest_stage",
    "pipeline.decode",
    "pipeline.shards_cli",
    "pipeline.extract_flow",
    "pipeline.visualize_flow",
    "pipeline.reencode",
    "pipeline.extract_mv",
    "pipeline.residual_frames",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="prep-cli (motionprep)")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """motionprep: frames, TV-L1 flow, motion vectors and residuals for action recognition, in HDF5 shards."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        for cmd in module.commands:
            cli.add_command(cmd)


_register()


def main() -> None:
    """Console entry point; user errors exit with status 2 and a one-line message naming stage and video."""
    from .config import ConfigError
    from .manifest import ManifestError
    from .shards import ShardError
    from .stage import StageError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ConfigError, ManifestError, ShardError, StageError, FileNotFoundError) as exc:
        click.echo(f"prep-cli: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
