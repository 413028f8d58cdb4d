"""The `dlcourse` command: check data, and (as the course grows) run labs, build the book, inspect runs.

Each sub-command is a thin wrapper over a package function, so that what the command does
can also be called from Python and tested there.
"""

from __future__ import annotations

import argparse
import sys


def _data_check(args) -> int:
    from .data import data_report

    rows = data_report(args.root)
    missing = 0
    for row in rows:
        if row["found"]:
            print(f"{row['dataset']:14s} found   {row['where']}  train={row['train']:,} test={row['test']:,}")
        else:
            missing += 1
            print(f"{row['dataset']:14s} MISSING " + (row.get("error") or "looked in: " + ", ".join(row["looked"])))
    if missing:
        print("\nSet DLCOURSE_DATA (or pass --root) to a folder holding MNIST/raw and FashionMNIST/raw, "
              "or run once with internet access so that torchvision can download them.")
    return 1 if missing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcourse", description="Tools of the dlcourse deep-learning course.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect the data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="which data sets were found where, and their sizes")
    check.add_argument("--root", default=None, help="data root (default: $DLCOURSE_DATA, then ./data)")
    check.set_defaults(func=_data_check)

    # Further command groups register here (runs, labs, book).
    for register in _REGISTRARS:
        register(sub)
    return parser


_REGISTRARS: list = []
from .cache import register_cli as _runs_cli; _REGISTRARS.append(_runs_cli)  # noqa: E402,E702
from .labs import register as _labs; _REGISTRARS.append(_labs)  # noqa: E402,E702
from .book import register as _book; _REGISTRARS.append(_book)  # noqa: E402,E702


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError) as exc:
        print(f"dlcourse: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
