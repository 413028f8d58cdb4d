"""Download a data set into a data root: mirrors first, every file checked, nothing half-written.

Where from, in order: each base URL in $DLCOURSE_MIRROR (separated by spaces; http(s)://,
file:// or a plain folder), then torchvision's own mirrors, unless $DLCOURSE_MIRROR_ONLY=1
(behind a firewall, and in the tests, where nothing may reach the internet). A mirror is laid
out like a data root, `<base>/MNIST/raw/train-images-idx3-ubyte.gz`, so any data folder served
over HTTP (`python -m http.server -d ../shared/data`) is one; torchvision's mirrors are flat.

How files are checked: a file passes when it matches torchvision's MD5 (the files torchvision
publishes), or else when the mirror serves a `SHA256SUMS` file (`sha256sum` format, paths
relative to the base) that lists it with its SHA-256. The second rule exists because a mirror
may serve other files on purpose: the course's MNIST holds a 10,000-image training subset,
which no MD5 of torchvision matches. It catches truncated and corrupted transfers; it cannot
catch a mirror that lies, so choose mirrors as you would a package index. A file that fails
its check is an error naming the file and the mirror, and no other mirror is tried: a corrupt
mirror should be seen and fixed, not hidden.

Why this shape: one download per data root and data set at a time (a file lock in the system's
temporary folder, so the data root holds nothing but data); files go into a `.tmp-` folder
inside the data root (same file system), are checked and unpacked there and only then renamed
into `<root>/<Folder>/raw/`, so a failure leaves nothing, and a kill leaves only the `.tmp-`
folder that the next download of that data set removes (whoever holds the lock is the only
writer, so any such folder it finds is a dead one's; the pid in its name is for people).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

TIMEOUT = 30  # seconds a mirror may stay silent before the next one is tried
_CHUNK = 1 << 20


class DataError(RuntimeError):
    """Data missing, truncated or corrupt: says what, where it looked, and how to fix it."""


@dataclass(frozen=True)
class Fetched:
    """One file brought in: its name, the mirror it came from, and the check it passed."""

    file: str
    mirror: str
    check: str


def mirrors(tv_class) -> list[tuple[str, bool]]:
    """(base URL, laid out like a data root) pairs, in the order they are tried."""
    bases = [(_as_url(b), True) for b in os.environ.get("DLCOURSE_MIRROR", "").split()]
    if os.environ.get("DLCOURSE_MIRROR_ONLY", "") not in ("", "0"):
        return bases
    return bases + [(b, False) for b in tv_class.mirrors]


def _as_url(base: str) -> str:
    if "://" not in base:  # a plain folder (a USB stick, a network share)
        base = Path(base).expanduser().resolve().as_uri()
    return base.rstrip("/") + "/"


def _lock(root: Path, folder: str) -> FileLock:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return FileLock(str(Path(tempfile.gettempdir()) / f"dlcourse-data-{key}-{folder}.lock"), mode=0o666)


def _remove_dead_temporaries(root: Path, folder: str) -> None:
    """`.tmp-<Folder>-<pid>-<random>` folders of killed downloads (call it holding the lock)."""
    for tmp in root.glob(f".tmp-{folder}-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _get(url: str, dest: Path | None = None) -> bytes | None:
    """The body of `url` (into `dest` when given); URLError/OSError when it cannot be had."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        if dest is None:
            return response.read()
        with open(dest, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    return None


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _sums(base: str, cache: dict) -> dict[str, str]:
    """The mirror's SHA256SUMS as {relative path: sha256}; empty when it serves none."""
    if base not in cache:
        try:
            text = _get(base + "SHA256SUMS").decode()
        except (OSError, UnicodeDecodeError):
            text = ""
        sums = {}
        for line in text.splitlines():
            digest, _, name = line.strip().partition(" ")
            if name:
                sums[name.strip().lstrip("*")] = digest.lower()
        cache[base] = sums
    return cache[base]


def _check(path: Path, relative: str, md5: str, base: str, sums: dict[str, str]) -> str:
    """Which check `path` passed; DataError naming the file and the mirror when none."""
    got_md5 = _digest(path, "md5")
    if got_md5 == md5:
        return "md5 of torchvision"
    expected = sums.get(relative)
    if expected is not None:
        got = _digest(path, "sha256")
        if got == expected:
            return "sha256 in the mirror's SHA256SUMS"
        detail = f"sha256 {got}, the mirror's SHA256SUMS says {expected}"
    else:
        detail = f"md5 {got_md5}, torchvision says {md5}, and the mirror's SHA256SUMS does not list it"
    raise DataError(f"{relative} from the mirror {base} does not match its checksum ({detail}). "
                    f"The file is corrupt or is not the data set: nothing was written; fix or leave that mirror.")


def fetch(root: str | os.PathLike, folder: str, tv_class, *, present=lambda: False, log=None) -> list[Fetched]:
    """Download `tv_class`'s files (torchvision's MNIST or FashionMNIST) into `root/folder/raw/`.

    `present()` is asked again once the lock is held: another process may have just finished
    the same download, and then nothing is fetched. Returns what was fetched, from where.
    """
    root = Path(root)
    with _lock(root, folder):
        if present():
            return []
        try:
            root.mkdir(parents=True, exist_ok=True)
            _remove_dead_temporaries(root, folder)
            tmp = root / f".tmp-{folder}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
        except OSError as exc:
            raise DataError(f"cannot write into the data root {root}: {exc}") from exc
        try:
            done = [_fetch_one(tmp, folder, name, md5, tv_class, log) for name, md5 in tv_class.resources]
            unpacked = []
            for item in done:
                raw = tmp / item.file.removesuffix(".gz")
                try:
                    with gzip.open(tmp / item.file) as src, open(raw, "wb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)
                except (OSError, EOFError) as exc:
                    raise DataError(f"{folder}/raw/{item.file} from {item.mirror} passed its checksum but "
                                    f"does not unpack ({exc}); nothing was written") from exc
                unpacked.append(raw)
            final = root / folder / "raw"
            final.mkdir(parents=True, exist_ok=True)
            for path in [tmp / item.file for item in done] + unpacked:  # the unpacked files last:
                os.replace(path, final / path.name)                      # they are what readers look for
            return done
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _fetch_one(tmp: Path, folder: str, name: str, md5: str, tv_class, log) -> Fetched:
    relative = f"{folder}/raw/{name}"
    failures, sums = [], {}
    for base, like_root in mirrors(tv_class):
        url = base + (relative if like_root else name)
        try:
            _get(url, tmp / name)
        except (OSError, ValueError) as exc:  # URLError, HTTPError, refused, timed out, bad URL
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            continue
        check = _check(tmp / name, relative, md5, base, _sums(base, sums) if like_root else {})
        if log:
            log(f"{relative}: downloaded from {base} ({check})")
        return Fetched(name, base, check)
    tried = "\n".join(f"  - {f}" for f in failures) or \
        "  (no mirror: DLCOURSE_MIRROR_ONLY is set and DLCOURSE_MIRROR is empty)"
    raise DataError(f"{relative} could not be downloaded from any mirror:\n{tried}")
