"""`dlcourse labs list | run | params` and `dlcourse book`: the lab notebooks from the command line."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from pathlib import Path

from .. import book, execution, planning, settings
from .. import labs as labs_mod

ROOT_HELP = "course checkout (default: the cwd if it holds notebooks/)"


def _rooted(args):
    args.root = Path(args.root) if args.root else labs_mod.default_root()
    return args


def _out_dir(args) -> Path:
    return Path(args.out) if args.out else Path(args.root) / "book" / "labs"


def _list(args) -> int:
    args = _rooted(args)
    found = labs_mod.discover(args.root)
    out_dir = _out_dir(args)
    for lab in found:
        record = execution.made(lab.output(out_dir))
        if not record:
            state = "not executed"
        elif record.get("stale"):
            state = f"STALE ({record['stale']}); the next `dlcourse book` re-executes it"
        else:
            state = f"executed ({record.get('profile') or '?'} profile)"
        print(f"{lab.number:2d}  {lab.name:16s} {lab.path.relative_to(args.root)}  {state}")
    if not found:
        print(f"no labs found under {Path(args.root) / 'notebooks'}")
    return 0


def _chosen(args) -> list[tuple[labs_mod.Lab, dict]]:
    """(lab, parameters) of each lab named, every name checked before anything runs."""
    found = labs_mod.discover(args.root)
    chosen = labs_mod.select(args.names, found)
    if not chosen:
        raise ValueError(f"no labs found under {Path(args.root) / 'notebooks'}")
    todo = []
    for lab in chosen:
        params = labs_mod.resolve_parameters(lab, args.profile, args.file, args.param, root=args.root)
        labs_mod.check_names(lab, params)
        todo.append((lab, params))
    return todo


@contextlib.contextmanager
def _placed(args):
    """--backend, --address and --threads reach the labs' kernels (and their sweeps) as
    $DLCOURSE_BACKEND, $RAY_ADDRESS and $DLCOURSE_THREADS (kernels inherit this environment);
    the caller's environment is restored afterwards (`main` may be called in-process)."""
    values = {"DLCOURSE_BACKEND": None if args.backend is None else settings.backend(args.backend),
              "RAY_ADDRESS": args.address or None,
              "DLCOURSE_THREADS": None if args.threads is None else str(settings.threads(args.threads))}
    values = {k: v for k, v in values.items() if v is not None}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _plan(args, todo: list[tuple[labs_mod.Lab, dict]]) -> int:
    """--plan of `labs run` and `book`: each lab executed in plan mode (`dlcourse.planning`), one table."""
    if getattr(args, "pdf", False):
        raise ValueError("pdf=True is not valid with plan=True; --plan builds nothing (drop --pdf, or --plan)")
    if settings.backend() == "ray":
        raise ValueError("backend='ray' is not valid with plan=True; --plan estimates training on this machine "
                         "(drop --backend ray, or --plan)")
    print(f"plan (profile {args.profile}): executing {len(todo)} lab(s) with stand-in runs ...", flush=True)
    start = time.perf_counter()
    plans = planning.plan(todo, root=args.root, timeout=args.timeout, log=functools.partial(print, flush=True))
    print(planning.table(plans))
    print(f"the plan took {time.perf_counter() - start:.0f} s", flush=True)
    failed = [p["error"] for p in plans if "error" in p]
    if failed:
        raise execution.LabError("\n".join(failed))
    return 0


def _run(args) -> int:
    execution.exit_on_sigterm()
    args = _rooted(args)
    with _placed(args):
        return _run_labs(args)


def _run_labs(args) -> int:
    todo = _chosen(args)
    if args.plan:
        return _plan(args, todo)
    fingerprint = execution.code_fingerprint()
    for lab, params in todo:
        print(f"{lab.stem}: running with profile {args.profile} ...", flush=True)
        start = time.perf_counter()
        target = execution.execute(lab, params, _out_dir(args), root=args.root, timeout=args.timeout,
                                   progress=not args.quiet, profile=str(args.profile), fingerprint=fingerprint)
        print(f"{lab.stem}: done in {time.perf_counter() - start:.0f} s -> {target}", flush=True)
    return 0


def _params(args) -> int:
    args = _rooted(args)
    (lab, params), = _chosen(args)
    sys.stdout.write(labs_mod.params_yaml(params))
    return 0


def _book(args) -> int:
    execution.exit_on_sigterm()
    args = _rooted(args)
    with _placed(args):
        return _build_book(args)


def _build_book(args) -> int:
    if args.plan:
        todo = book.stale_labs(args.root, args.profile, force=args.force)
        current = [lab.stem for lab in labs_mod.discover(args.root) if lab.stem not in {t.stem for t, _ in todo}]
        if current:
            print(f"current in book/labs (not planned; --force plans them too): {', '.join(current)}")
        return _plan(args, todo)
    book.build(args.root, args.profile, force=args.force, timeout=args.timeout, progress=args.progress, pdf=args.pdf)
    return 0


def _common(parser) -> None:
    """Options shared by `labs run`, `labs params` and `book`: where the course is, which profile."""
    parser.add_argument("--root", default=None, help=ROOT_HELP)
    parser.add_argument("--profile", default="laptop",
                        help="smoke, laptop (default), full, or a path to a YAML parameter file")


def _overrides(parser) -> None:
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (a YAML scalar; lists go in a -f file)")
    parser.add_argument("-f", "--file", action="append", default=[], metavar="PARAMS.yml",
                        help="YAML file of parameters (top-level keys, and a section per lab)")


def _placement(parser) -> None:
    """Options of `labs run` and `book`: where the labs' sweeps train."""
    parser.add_argument("--backend", default=None, choices=settings.BACKENDS,
                        help="where sweeps train: local (this machine) or ray (default: $DLCOURSE_BACKEND, else local)")
    parser.add_argument("--address", default=None,
                        help="the Ray cluster for --backend ray (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per training, and CPUs per Ray task (default: $DLCOURSE_THREADS, "
                             "else torch's default; 1 per Ray task)")


def _planning(parser) -> None:
    parser.add_argument("--plan", action="store_true",
                        help="train nothing: print per lab its runs, how many are cached, and estimated times "
                             "(each lab runs with stand-in runs; book/labs and the cache are left alone)")


def _timeout(parser, what: str) -> None:
    parser.add_argument("--timeout", type=float, default=execution.DEFAULT_TIMEOUT,
                        help=f"seconds allowed per {what} (default {execution.DEFAULT_TIMEOUT}; 0: no limit)")


def register(sub) -> None:
    """`dlcourse labs list | run | params` and `dlcourse book`."""
    labs = sub.add_parser("labs", help="list and execute the lab notebooks")
    labs_sub = labs.add_subparsers(dest="labs_command", required=True)

    lst = labs_sub.add_parser("list", help="the labs found, and whether an executed copy exists and is current")
    lst.add_argument("--root", default=None, help=ROOT_HELP)
    lst.add_argument("--out", default=None, help="executed notebooks (default: <root>/book/labs)")
    lst.set_defaults(func=_list)

    run = labs_sub.add_parser("run", help="execute labs with papermill into book/labs/")
    run.add_argument("names", nargs="*", metavar="NAME",
                     help="labs to run (short name, number or substring; default: all)")
    _common(run)
    _overrides(run)
    run.add_argument("--out", default=None, help="where executed notebooks go (default: <root>/book/labs)")
    _timeout(run, "cell")
    _placement(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _planning(run)
    run.set_defaults(func=_run)

    params = labs_sub.add_parser(
        "params", help="print the flat YAML parameters one lab gets (for `papermill LAB OUT -f params.yml`)")
    params.add_argument("names", nargs=1, metavar="NAME", help="the lab (short name, number or substring)")
    _common(params)
    _overrides(params)
    params.set_defaults(func=_params)

    bk = sub.add_parser("book", help="execute the stale labs, then build the HTML book into _build/html")
    _common(bk)
    bk.add_argument("--force", action="store_true", help="execute every lab and rebuild every page")
    _timeout(bk, "notebook cell")
    _placement(bk)
    bk.add_argument("--progress", action="store_true", help="show papermill's progress bar per lab")
    bk.add_argument("--pdf", action="store_true",
                    help="then print it with Chromium: _build/pdf/<lab>.pdf per lab and _build/pdf/book.pdf")
    _planning(bk)
    bk.set_defaults(func=_book)
