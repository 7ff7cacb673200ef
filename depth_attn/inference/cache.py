"""The artefact cache: ONNX files and engines built once and reused, in ``$DEPTH_ATTN_HOME/artefacts``.

An entry is a folder named after a readable label and a digest of its key (every input that
changes the artefact: configuration, weights checksum, input shape, precision, backend version,
device name, ...). Beside the artefact, ``meta.json`` records the key and the artefact's sha256
and size. On a lookup the artefact must match its record and pass a loadability check; anything
else (truncated, edited, unloadable, half-written) is rebuilt, with a warning that says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional

from depth_attn.paths import home_dir, sha256_file

log = logging.getLogger(__name__)

META_FILE = "meta.json"
FORMAT_VERSION = 1


class CacheWarning(UserWarning):
    """A cached artefact was unusable and is being rebuilt."""


class CacheReadOnlyError(RuntimeError):
    """An artefact must be built but the cache cannot be written (a robot's read-only image)."""


def artefacts_dir() -> Path:
    return home_dir() / "artefacts"


def key_digest(key: Mapping[str, object]) -> str:
    """A stable digest of a key: JSON with sorted keys, so dict order never matters."""
    text = json.dumps(dict(key), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _safe_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]


@dataclass(frozen=True)
class CacheResult:
    path: Path
    hit: bool  # True: reused as it was; False: built now
    reason: str  # why it was built ("" on a hit)
    loaded: object = field(default=None, repr=False, compare=False)  # what get_or_build's validate returned

    @property
    def status(self) -> str:
        return "hit" if self.hit else f"built ({self.reason})"


@dataclass(frozen=True)
class CacheEntry:
    folder: Path
    kind: str
    label: str
    filename: str
    key: Dict[str, object]
    sha256: str
    size: int
    created: float

    @property
    def path(self) -> Path:
        return self.folder / self.filename


class ArtefactCache:
    """``get_or_build(kind, label, key, filename, build, validate)`` is the only way artefacts are
    made: ``build(tmp_path)`` writes the artefact, ``validate(path)`` raises if it cannot be used (and
    may return it loaded)."""

    def __init__(self, root: Optional[Path] = None) -> None:
        self.root = Path(root) if root is not None else artefacts_dir()

    def entry_folder(self, kind: str, label: str, key: Mapping[str, object]) -> Path:
        return self.root / kind / f"{_safe_label(label)}-{key_digest(key)[:16]}"

    def get_or_build(
        self,
        kind: str,
        label: str,
        key: Mapping[str, object],
        filename: str,
        build: Callable[[Path], None],
        validate: Optional[Callable[[Path], object]] = None,
        force: bool = False,
    ) -> CacheResult:
        """``validate(path)`` raises if the artefact cannot be used; what it returns is ``result.loaded``,
        so a check that is the load itself (an engine that takes seconds to deserialise) runs once on a
        hit, not once to check and again to use. An entry that fails it is rebuilt."""
        folder = self.entry_folder(kind, label, key)
        checked: Dict[str, object] = {}

        def check_and_keep(path: Path) -> None:
            checked["loaded"] = validate(path)

        check = check_and_keep if validate is not None else None
        target = folder / filename
        if not force and target.is_file():
            # A complete entry is only read: no lock, no write, so a read-only cache (a robot's
            # read-only image) serves it. Builders write atomically, so it is never half-seen.
            if self._problem(folder, filename, key, check) is None:
                log.debug("artefact cache hit: %s", target)
                return CacheResult(target, True, "", checked.get("loaded"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / ".lock", "a"):
                pass
        except OSError as exc:
            why = "forced rebuild" if force else (self._problem(folder, filename, key, check) or "not cached yet")
            raise CacheReadOnlyError(
                f"the artefact cache {self.root} cannot be written ({exc.strerror or exc}) and its {kind} for {label} "
                f"must be built ({why}). Build it once where the cache is writable (same machine, same "
                "DEPTH_ATTN_HOME: `depth-attn export` / `depth-attn build-engine`, or start the node there) and "
                "ship the cache with it, or set DEPTH_ATTN_HOME to a writable folder"
            ) from None
        with _locked(folder / ".lock"):
            # Checked under the lock: another process may have just finished building it.
            problem = "forced rebuild" if force else self._problem(folder, filename, key, check)
            if problem is None:
                log.debug("artefact cache hit: %s", target)
                return CacheResult(target, True, "", checked.get("loaded"))
            if problem != "not cached yet":
                message = f"cached {kind} {target} is unusable ({problem}); rebuilding it"
                log.warning(message)
                warnings.warn(message, CacheWarning, stacklevel=2)
            self._build(folder, filename, key, kind, label, build, check)
        return CacheResult(target, False, problem, checked.get("loaded"))

    def _problem(
        self, folder: Path, filename: str, key: Mapping[str, object], validate: Optional[Callable[[Path], None]]
    ) -> Optional[str]:
        """None when the entry is usable, else what is wrong with it."""
        target = folder / filename
        meta_path = folder / META_FILE
        if not target.exists() and not meta_path.exists():
            return "not cached yet"
        if not target.is_file():
            return "the artefact file is missing"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            return f"its record {META_FILE} is missing or unreadable: {exc}"
        if meta.get("format") != FORMAT_VERSION or meta.get("key_digest") != key_digest(key):
            return "its record is for another key or cache format"
        size = target.stat().st_size
        if size != meta.get("size"):
            return f"size {size} bytes, recorded {meta.get('size')} (truncated or replaced)"
        if sha256_file(target) != meta.get("sha256"):
            return "checksum differs from the recorded one (corrupt or edited)"
        if validate is not None:
            try:
                validate(target)
            except Exception as exc:  # any failure to load means: rebuild
                return f"cannot be loaded: {type(exc).__name__}: {exc}"
        return None

    def _build(
        self,
        folder: Path,
        filename: str,
        key: Mapping[str, object],
        kind: str,
        label: str,
        build: Callable[[Path], None],
        validate: Optional[Callable[[Path], None]],
    ) -> None:
        (folder / META_FILE).unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            build(tmp)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise RuntimeError(f"building {kind} {label} produced no file")
            if validate is not None:
                validate(tmp)
            meta = {
                "format": FORMAT_VERSION,
                "kind": kind,
                "label": label,
                "filename": filename,
                "key": dict(key),
                "key_digest": key_digest(key),
                "sha256": sha256_file(tmp),
                "size": tmp.stat().st_size,
                "created": time.time(),
            }
            os.replace(tmp, folder / filename)
            _write_atomic(folder / META_FILE, json.dumps(meta, indent=2, sort_keys=True, default=str))
        finally:
            tmp.unlink(missing_ok=True)

    def entries(self, kind: Optional[str] = None) -> List[CacheEntry]:
        """Every recorded entry (unreadable records are skipped)."""
        found = []
        for meta_path in sorted(self.root.glob(f"{kind or '*'}/*/{META_FILE}")):
            try:
                meta = json.loads(meta_path.read_text())
                found.append(
                    CacheEntry(
                        meta_path.parent,
                        meta["kind"],
                        meta["label"],
                        meta["filename"],
                        meta["key"],
                        meta["sha256"],
                        meta["size"],
                        meta["created"],
                    )
                )
            except (OSError, ValueError, KeyError):
                continue
        return found

    def remove(self, kind: Optional[str] = None, label_contains: str = "") -> List[CacheEntry]:
        """Delete the entries of ``kind`` whose label contains ``label_contains``; returns them."""
        removed = []
        for entry in self.entries(kind):
            if label_contains not in entry.label:
                continue
            with _locked(entry.folder / ".lock"):
                for path in entry.folder.iterdir():
                    if path.name != ".lock":
                        path.unlink(missing_ok=True)
            (entry.folder / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                entry.folder.rmdir()
            removed.append(entry)
        return removed


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock across processes (two nodes starting at once build an engine once)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
