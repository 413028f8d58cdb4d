"""The `dlcourse` command: data, runs, labs and book. All argparse code of the package lives here.

Each sub-command is a thin wrapper over a package function, so that what the command does
can also be called from Python and tested there. One module per command group:
`cli.data` (data check | get), `cli.runs` (runs ls | show | clear), `cli.labs` (labs list |
run | params, and book), `cli.notebooks` (the student and instructor editions).
"""

from __future__ import annotations

import argparse
import sys

from . import data, labs, notebooks, runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcourse", description="Tools of the dlcourse deep-learning course.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (data, runs, labs, notebooks):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError) as exc:
        print(f"dlcourse: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
