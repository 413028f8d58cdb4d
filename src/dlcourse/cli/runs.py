"""`dlcourse runs ls | show KEY | clear | export`: inspect, clear and export the results cache
(`dlcourse.cache.Store`; `export --tensorboard` through `dlcourse.tensorboard_export`)."""

from __future__ import annotations

import json
import sys

from ..cache import HISTORY, METRICS, SPEC, Store


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{seconds:.0f}s"


def _summary(spec: dict | None) -> str:
    if not spec:
        return "?"
    arch = spec.get("hidden") if spec.get("model") == "mlp" else f"c{spec.get('channels')} d{spec.get('dense')}"
    return (f"{spec.get('dataset')} n={spec.get('train_size') or 'all'} {spec.get('model')}{list(arch or [])} "
            f"{spec.get('optimizer')} lr={spec.get('lr')} b={spec.get('batch_size')} e={spec.get('epochs')} "
            f"seed={spec.get('seed')}")


def _ls(args) -> int:
    store = Store(args.cache)
    infos = store.entries()
    total = sum(i.size for i in infos)
    print(f"{store.root}: {len(infos)} entries, {_size(total)}")
    for i in sorted(infos, key=lambda i: i.created):
        acc = (i.metrics or {}).get("test_acc")
        acc = f"test_acc={acc:.4f}" if isinstance(acc, float) and acc == acc else ""
        status = "ok     " if i.valid else "CORRUPT"
        print(f"{i.key}  {status} {_age(i.age):>4s} {_size(i.size):>9s}  {_summary(i.spec)}  {acc}"
              + ("" if i.valid else f"  ({i.reason})"))
    leftovers = store.partial()
    if leftovers:
        print(f"{len(leftovers)} partial write(s) of killed processes (removed by `dlcourse runs clear`)")
    return 0


def _show(args) -> int:
    store = Store(args.cache)
    key = store.resolve(args.key)
    info = store.info(key)
    print(f"key      {key}\npath     {info.path}\nsize     {_size(info.size)}\nage      {_age(info.age)}")
    if not info.valid:
        print(f"status   CORRUPT: {info.reason} (it will be recomputed when asked for)")
        return 1
    files = store.read(key)
    spec = json.loads(files[SPEC])
    print("spec     " + json.dumps(spec.get("spec"), sort_keys=True))
    print("metrics  " + json.dumps(json.loads(files[METRICS]), sort_keys=True))
    print("env      " + json.dumps(spec.get("env"), sort_keys=True))
    print("files    " + ", ".join(f"{n} ({_size(len(b))})" for n, b in sorted(files.items())))
    print("history:")
    print(files[HISTORY].decode().rstrip())
    return 0


def _clear(args) -> int:
    store = Store(args.cache)
    keys = [store.resolve(k) for k in args.keys] if args.keys else store.keys()
    size = sum(store.info(k).size for k in keys)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"would delete {len(keys)} entries ({_size(size)}) in {store.root}; pass --yes to do it")
            return 1
        answer = input(f"Delete {len(keys)} entries ({_size(size)}) in {store.root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    n, freed = store.clear(keys)
    print(f"deleted {n} entries ({_size(freed)}) from {store.root}")
    return 0


def _export(args) -> int:
    from ..tensorboard_export import export  # lazy: it imports torch's SummaryWriter

    keys = list(args.keys)
    for name in args.lab:
        keys += _lab_keys(name, args)
    if args.lab and not keys:
        print("the executed labs name no runs", file=sys.stderr)
        return 1
    written, skipped = export(args.tensorboard, keys, cache=args.cache)
    for run in written:
        print(f"{run.key}  {run.epochs} epochs, {run.steps} steps, {len(run.tags)} scalar tags, "
              f"{len(run.hparams)} hparams -> {run.folder}")
    for key, reason in skipped:
        print(f"{key}  SKIPPED: corrupt ({reason})")
    print(f"wrote {len(written)} runs to {args.tensorboard}; view them with: tensorboard --logdir {args.tensorboard}")
    return 1 if skipped else 0


def _lab_keys(name: str, args) -> list[str]:
    """The keys of the runs lab `name` used in its last execution (kept in the executed notebook)."""
    from .. import execution, labs
    from .labs import _out_dir, _rooted

    args = _rooted(args)
    lab = labs.select([name], labs.discover(args.root))[0]
    notebook = lab.output(_out_dir(args))
    record = execution.made(notebook)
    if "runs" not in record:
        raise ValueError(f"lab={name!r} is not valid: {notebook} is missing or was executed before labs listed "
                         f"their runs; run `dlcourse labs run {lab.name}` first")
    return list(record["runs"])


def register(sub) -> None:
    """Add `dlcourse runs ls | show KEY | clear | export` to the `dlcourse` command."""
    runs = sub.add_parser("runs", help="inspect and clear the results cache")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    cache_help = "cache folder (default: $DLCOURSE_CACHE, then .cache/dlcourse in the project)"
    ls = runs_sub.add_parser("ls", help="list cached runs: key, status, age, size, spec, test accuracy")
    ls.add_argument("--cache", default=None, help=cache_help)
    ls.set_defaults(func=_ls)
    show = runs_sub.add_parser("show", help="one run: spec, metrics, environment, history")
    show.add_argument("key", help="the run key (a unique prefix is enough)")
    show.add_argument("--cache", default=None, help=cache_help)
    show.set_defaults(func=_show)
    clear = runs_sub.add_parser("clear", help="delete cached runs (all, or the given keys)")
    clear.add_argument("keys", nargs="*", help="keys or unique prefixes (default: every entry)")
    clear.add_argument("--yes", action="store_true", help="do not ask")
    clear.add_argument("--cache", default=None, help=cache_help)
    clear.set_defaults(func=_clear)
    export = runs_sub.add_parser("export", help="write cached runs as TensorBoard event files (one folder per key)")
    export.add_argument("keys", nargs="*", help="keys or unique prefixes (default, without --lab: every entry)")
    export.add_argument("--tensorboard", required=True, metavar="DIR",
                        help="folder for `tensorboard --logdir DIR` (a run's earlier export there is replaced)")
    export.add_argument("--lab", action="append", default=[], metavar="NAME",
                        help="also the runs this lab's last execution used (repeatable)")
    export.add_argument("--root", default=None, help="the course (default: the project holding dlcourse)")
    export.add_argument("--out", default=None, help="the executed labs (default: <root>/book/labs)")
    export.add_argument("--cache", default=None, help=cache_help)
    export.set_defaults(func=_export)
