"""``python -m mmconcepts <stage> ...``: the one entry point every Snakemake rule calls.

Each stage takes all its settings as arguments (the rules pass them from
``params:``, so Snakemake notices when one changes) and writes its outputs
atomically. Bad input ends with one line naming the file, key or word.

One module per system (``shapes``, ``concepts``, ``shift``, ``steering``, ``mutual``); each command is declared by
``@command(name, help, *arguments)`` right above its handler.
"""

from __future__ import annotations

import argparse
import signal
import sys

from mmconcepts.cli.registry import COMMANDS
from mmconcepts.errors import MMConceptsError

# Importing a system's module registers its commands.
from mmconcepts.cli import concepts, index, mutual, shapes, shift, steering  # noqa: F401  isort: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmconcepts", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (fn, help, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help)
        p.set_defaults(fn=fn)
        for flags, kwargs in arguments:
            p.add_argument(*flags, **kwargs)
    return parser


def _terminate(signum, frame):
    # Turn SIGTERM (what Snakemake and SLURM send) into an exception so that
    # atomic writers remove their temporary outputs on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except MMConceptsError as e:
        print(f"mmconcepts {args.command}: error: {e}", file=sys.stderr)
        sys.exit(1)
