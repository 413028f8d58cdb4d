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
