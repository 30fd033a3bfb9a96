"""``prep-cli``: every stage of the pipeline as a subcommand, plus tools to look at and convert shards.

The stage commands are generated from the stages' declarations (:mod:`.stage_commands`): ``prep-cli X-Y``
is the stage ``X_Y`` of ``pipeline/steps/X_Y.py``. The other commands: ``shards`` (:mod:`.shards`),
``models`` (:mod:`.models`) and ``visualize-flow`` / ``visualize-mv`` (:mod:`.visualize`).
"""

from __future__ import annotations

import logging
import sys

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="prep-cli (motionprep)")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """motionprep: frames, TV-L1 flow, motion vectors and residuals for action recognition, in HDF5 shards."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from ..steps import all_stages
    from .models import models_group
    from .shards import shards_group
    from .stage_commands import stage_command
    from .visualize import visualize_flow_cmd, visualize_mv_cmd

    for stage in all_stages():
        cli.add_command(stage_command(stage))
    for cmd in (shards_group, models_group, visualize_flow_cmd, visualize_mv_cmd):
        cli.add_command(cmd)


_register()


def main() -> None:
    """Console entry point. A user error (bad config, manifest, shard, a stage that cannot complete) exits
    with status 2 and a one-line message naming the stage and the video; a bug exits with a traceback."""
    from ..core.errors import MotionprepError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MotionprepError as exc:
        click.echo(f"prep-cli: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
