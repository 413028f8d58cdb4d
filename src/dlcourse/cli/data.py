"""`dlcourse data check` (what is found where) and `dlcourse data get` (download what is missing)."""

from __future__ import annotations

from ..vocabulary import DATASETS

ROOT_HELP = ("data root; when given, the only place looked at "
             "(default: $DLCOURSE_DATA, then data/ in the project)")


def _check(args) -> int:
    from ..data import data_report

    rows = data_report(args.root)
    missing = 0
    for row in rows:
        if row["found"]:
            print(f"{row['dataset']:14s} found   {row['where']}  train={row['train']:,} test={row['test']:,}")
        else:
            missing += 1
            print(f"{row['dataset']:14s} MISSING " + (row.get("error") or "looked in: " + ", ".join(row["looked"])))
    if missing:
        print("\nRun `dlcourse data get` (it downloads through $DLCOURSE_MIRROR, then torchvision's mirrors), "
              "or set DLCOURSE_DATA (or pass --root) to a folder holding MNIST/raw and FashionMNIST/raw.")
    return 1 if missing else 0


def _get(args) -> int:
    from ..data import DATASETS as SOURCES
    from ..data import get

    for name in args.names or DATASETS:
        place, fetched = get(name, args.root, log=lambda line: print(f"  {line}", flush=True))
        where = (place / SOURCES[name].folder / "raw").resolve()
        print(f"{name}: " + (f"downloaded {len(fetched)} files into {where}" if fetched else f"already in {where}"),
              flush=True)
    return 0


def register(sub) -> None:
    """`dlcourse data check | get`."""
    data = sub.add_parser("data", help="inspect and download the data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="which data sets were found where, and their sizes")
    check.add_argument("--root", default=None, help=ROOT_HELP)
    check.set_defaults(func=_check)
    get = data_sub.add_parser("get", help="download the data sets that are missing, checked, into the data root")
    get.add_argument("names", nargs="*", metavar="NAME",
                     help=f"data sets ({', '.join(DATASETS)}; default: all)")
    get.add_argument("--root", default=None, help=ROOT_HELP)
    get.set_defaults(func=_get)
