"""`dlcourse notebooks --student OUT | --instructor OUT`: the labs as clean notebooks to take home."""

from __future__ import annotations

from pathlib import Path

from .. import editions
from .. import labs as labs_mod
from .labs import ROOT_HELP, _overrides


def _notebooks(args) -> int:
    root = Path(args.root) if args.root else labs_mod.default_root()
    chosen = labs_mod.select(args.names, labs_mod.discover(root))
    if not chosen:
        raise ValueError(f"no labs found under {root / 'notebooks'}")
    kinds = {kind: getattr(args, kind) for kind in editions.EDITIONS if getattr(args, kind)}
    if not kinds:
        raise ValueError("give --student OUT, --instructor OUT or both")
    params = {}
    if args.profile or args.file or args.param:
        params = {lab.stem: labs_mod.resolve_parameters(lab, args.profile, args.file, args.param, root=root)
                  for lab in chosen}
    for kind, out in kinds.items():
        paths = editions.write(chosen, kind, out, params)
        print(f"{kind} edition: {len(paths)} notebooks in {out}")
    return 0


def register(sub) -> None:
    """`dlcourse notebooks`."""
    nb = sub.add_parser("notebooks", help="write the labs as clean notebooks: a student edition "
                                          "(no solutions) and an instructor edition")
    nb.add_argument("names", nargs="*", metavar="NAME", help="labs (short name, number or substring; default: all)")
    nb.add_argument("--student", metavar="OUT", help="write the student edition (solution cells removed) here")
    nb.add_argument("--instructor", metavar="OUT", help="write the instructor edition (solutions kept) here")
    nb.add_argument("--root", default=None, help=ROOT_HELP)
    nb.add_argument("--profile", default=None,
                    help="write this profile's values into each parameters cell (default: the lab's own)")
    _overrides(nb)
    nb.set_defaults(func=_notebooks)
