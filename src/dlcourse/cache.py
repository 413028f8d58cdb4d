"""The on-disk results store: one folder per run key, written atomically, checked on every read.

Why this shape:
- An entry is written into a temporary folder and renamed into place, so a process killed at
  any moment leaves either a whole entry or none (plus a `.tmp-*` folder that is ignored and
  later swept away). A rename is atomic against other processes and against SIGKILL; we do not
  fsync, so a power cut is not covered.
- Each entry carries a manifest (`entry.json`) with the size and SHA-256 of every file, so a
  truncated or edited entry is detected and reported instead of silently read.
- Nothing is ever unpickled: specs, metrics and the manifest are JSON, histories CSV, tensors
  safetensors.
- A per-key file lock (`filelock`) makes two processes that miss on the same key train it once;
  the kernel drops the lock of a killed process, so a crash never wedges the cache.

The store knows nothing about training; `dlcourse.runs` decides what goes into an entry.
This module keeps its imports light (no torch) so that `dlcourse runs ls` starts fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

#: The files of a run entry (those `dlcourse.runs` writes; the store itself only needs MANIFEST).
MANIFEST = "entry.json"
SPEC = "spec.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
STEPS = "steps.csv"
WEIGHTS = "weights.safetensors"
SNAPSHOTS = "snapshots.safetensors"
FORMAT = 1
_PARTIAL = (".tmp-", ".trash-")


class CacheWarning(UserWarning):
    """A cache entry was found partial or corrupt and is being recomputed."""


class CorruptEntry(Exception):
    """An entry exists but does not validate; the message says why."""


@dataclass(frozen=True)
class EntryInfo:
    """What `dlcourse runs ls` shows of one entry."""

    key: str
    path: Path
    size: int
    created: float
    valid: bool
    reason: str | None
    spec: dict | None
    metrics: dict | None

    @property
    def age(self) -> float:
        return time.time() - self.created


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """A folder of run entries: `<root>/<key>/` plus `.locks/` and transient `.tmp-*` folders.

    `root`: the argument, else $DLCOURSE_CACHE, else `.cache/dlcourse` in the project.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            from .settings import cache_root  # lazy: settings imports torch

            root = cache_root()
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, key: str) -> Path:
        return self.root / key

    def lock(self, key: str) -> FileLock:
        """An inter-process lock for `key` (re-entrant within one process)."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(locks / f"{key}.lock"))

    # -- reading --------------------------------------------------------------------------
    def read(self, key: str) -> dict[str, bytes] | None:
        """The files of entry `key` as bytes, checked against its manifest.

        None if there is no entry; CorruptEntry if there is one that does not validate.
        """
        folder = self.path(key)
        if not folder.is_dir():
            return None
        try:
            manifest = json.loads((folder / MANIFEST).read_bytes())
            files = manifest["files"]
            if manifest.get("format") != FORMAT or manifest.get("key") != key or not isinstance(files, dict):
                raise CorruptEntry(f"manifest does not describe entry {key} in format {FORMAT}")
        except FileNotFoundError:
            raise CorruptEntry(f"{MANIFEST} is missing") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptEntry(f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})") from None
        out = {}
        for name, meta in files.items():
            try:
                data = (folder / name).read_bytes()
            except FileNotFoundError:
                raise CorruptEntry(f"{name} is missing") from None
            if len(data) != meta.get("size"):
                raise CorruptEntry(f"{name} has {len(data)} bytes, the manifest says {meta.get('size')}")
            if _sha256(data) != meta.get("sha256"):
                raise CorruptEntry(f"{name} does not match its checksum")
            out[name] = data
        return out

    def validate(self, key: str) -> str | None:
        """None if entry `key` is whole, else the reason it is not."""
        try:
            return None if self.read(key) is not None else "missing"
        except CorruptEntry as exc:
            return str(exc)

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def partial(self) -> list[Path]:
        """Leftovers of writers that were killed (`.tmp-*`, `.trash-*`)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.name.startswith(_PARTIAL))

    def info(self, key: str) -> EntryInfo:
        folder = self.path(key)
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0
        created = folder.stat().st_mtime if folder.is_dir() else 0.0
        spec = metrics = None
        try:
            files = self.read(key)
            reason = None if files is not None else "missing"
            if files:
                spec = json.loads(files[SPEC]).get("spec") if SPEC in files else None
                metrics = json.loads(files[METRICS]) if METRICS in files else None
                created = json.loads((folder / MANIFEST).read_bytes()).get("created", created)
        except (CorruptEntry, ValueError) as exc:
            reason = str(exc)
        return EntryInfo(key, folder, size, created, reason is None, reason, spec, metrics)

    def entries(self) -> list[EntryInfo]:
        return [self.info(k) for k in self.keys()]

    # -- writing --------------------------------------------------------------------------
    def write(self, key: str, files: dict[str, bytes]) -> Path:
        """Write entry `key` atomically (temporary folder, then rename); replaces a bad entry.

        Callers hold `lock(key)` so that no one else writes the same key meanwhile.
        """
        if MANIFEST in files:
            raise ValueError(f"{MANIFEST} is the store's own file name")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            manifest = {"format": FORMAT, "key": key, "created": time.time(), "files": {}}
            for name, data in files.items():
                (tmp / name).write_bytes(data)
                manifest["files"][name] = {"size": len(data), "sha256": _sha256(data)}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            target = self.path(key)
            trash = None
            if target.exists():
                trash = self.root / f".trash-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.rename(target, trash)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return target

    def remove(self, key: str) -> int:
        """Delete entry `key`; returns the bytes freed."""
        folder = self.path(key)
        if not folder.exists():
            return 0
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        trash = self.root / f".trash-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, trash)  # readers see the entry vanish at once, never half-deleted
        shutil.rmtree(trash, ignore_errors=True)
        return size

    def clean_partial(self, only_dead: bool = True) -> int:
        """Remove leftovers of killed writers (those whose process is gone); returns how many."""
        n = 0
        for p in self.partial():
            try:
                pid = int(p.name.split("-")[-2])
            except (ValueError, IndexError):
                pid = -1
            if only_dead and pid > 0 and _pid_alive(pid):
                continue
            shutil.rmtree(p, ignore_errors=True)
            n += 1
        return n

    def clear(self, keys: list[str] | None = None) -> tuple[int, int]:
        """Delete the given entries (all when None) and every leftover; returns (entries, bytes)."""
        keys = self.keys() if keys is None else keys
        freed = sum(self.remove(k) for k in keys)
        self.clean_partial(only_dead=True)
        return len(keys), freed

    def resolve(self, prefix: str) -> str:
        """The one key that starts with `prefix` (so `runs show` takes short keys)."""
        hits = [k for k in self.keys() if k.startswith(prefix)]
        if len(hits) != 1:
            what = "no entry" if not hits else f"{len(hits)} entries ({', '.join(hits[:5])})"
            raise ValueError(f"key={prefix!r} is not valid: {what} in {self.root} match it")
        return hits[0]


# -- the `dlcourse runs` command ----------------------------------------------------------
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


def register_cli(sub) -> None:
    """Add `dlcourse runs ls | show KEY | clear` to the `dlcourse` command."""
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
