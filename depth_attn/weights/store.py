"""The checkpoint store: where each known checkpoint's file is on this machine (the cache, the
package's weights/, the shared folder), checked against its checksum (each file hashed once per
process), and how files get into the cache (download, import, a trained run's output)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from depth_attn.paths import package_weights_dir, sha256_file, shared_weights_dir, weights_cache_dir
from depth_attn.weights.catalogue import (
    CheckpointInfo,
    WeightsError,
    checkpoint_info,
    info_from_card,
    known_checkpoints,
)
from depth_attn.weights.loading import load_state_dict

_DIGESTS: Dict[Tuple[str, int, int, int], str] = {}  # (path, inode, mtime_ns, size) -> sha256


def file_digest(path: Path) -> str:
    """The sha256 of a checkpoint file, computed once per process for each version of it (by path,
    modification time and size): a node that checks, identifies and loads one file reads it once."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    digest = _DIGESTS.get(key)
    if digest is None:
        digest = _DIGESTS[key] = sha256_file(path)
    return digest


def cached_path(name: str) -> Path:
    return weights_cache_dir() / f"{name}.pth"


def identify(path: Path) -> Optional[CheckpointInfo]:
    """The known checkpoint whose checksum this file has, if any."""
    digest = file_digest(path)
    return next((info for info in known_checkpoints().values() if info.sha256 == digest), None)


def _check_digest(info: CheckpointInfo, path: Path) -> None:
    if info.sha256 is None:
        return
    digest = file_digest(path)
    if digest != info.sha256:
        raise WeightsError(
            f"{path} does not match the checksum of {info.name} (expected {info.sha256}, got {digest}); "
            "the file is corrupt or not that checkpoint: refusing to load it"
        )


def locate(name: str) -> Path:
    """The verified local file of a known checkpoint: the cache first, then the package's weights/,
    then the shared folder."""
    return _locate(checkpoint_info(name))


def _locate(info: CheckpointInfo) -> Path:
    name = info.name
    candidates = [cached_path(name)]
    if info.card and Path(info.card).parent == weights_cache_dir():
        candidates.append(weights_cache_dir() / (info.package_file or f"{name}.pth"))
    if info.package_file:
        candidates.append(package_weights_dir() / info.package_file)
    if info.shared_file:
        candidates.append(shared_weights_dir() / info.shared_file)
    for candidate in candidates:
        if candidate.is_file():
            _check_digest(info, candidate)
            return candidate
    raise WeightsError(
        f"checkpoint {name} is not on this machine (looked in {', '.join(map(str, candidates))}); "
        f"run `depth-attn weights fetch {name}` or `depth-attn weights import {name} FILE`"
    )


def resolve(name_or_path: str) -> Tuple[Path, Optional[CheckpointInfo]]:
    """A known name or a file path -> (file, what it is if known)."""
    table = known_checkpoints()
    if name_or_path in table:
        return locate(name_or_path), table[name_or_path]
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        known = ", ".join(table)
        raise WeightsError(f"weights {name_or_path!r} is neither a known checkpoint ({known}) nor a file")
    return path, identify(path)


def _install(info: CheckpointInfo, source: Path) -> Path:
    """Check ``source`` and move it into the cache atomically; nothing is left behind on failure."""
    try:
        _check_digest(info, source)
        load_state_dict(source)
    except WeightsError:
        source.unlink(missing_ok=True)
        raise
    target = cached_path(info.name)
    os.replace(source, target)
    return target


def _temp_in_cache(info: CheckpointInfo) -> Path:
    weights_cache_dir().mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{info.name}.", suffix=".part", dir=weights_cache_dir())
    os.close(fd)
    return Path(tmp)


def fetch(name: str, url: Optional[str] = None, progress: bool = True, timeout_s: float = 60.0) -> Path:
    """Download a known checkpoint into the cache, with a progress bar and a checksum check."""
    from tqdm import tqdm

    info = checkpoint_info(name)
    tmp = _temp_in_cache(info)
    try:
        with urllib.request.urlopen(url or info.url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as exc:  # HTTP errors, no network, timeouts, disk full
        tmp.unlink(missing_ok=True)
        raise WeightsError(
            f"could not download {name} from {url or info.url}: {exc}; download it by other means and run "
            f"`depth-attn weights import {name} FILE`"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _install(info, tmp)


def import_file(name: str, path: Path) -> Path:
    """Copy a local file into the cache as checkpoint ``name`` (checked like a download)."""
    info = checkpoint_info(name)
    tmp = _temp_in_cache(info)
    try:
        shutil.copyfile(path, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _install(info, tmp)


def import_trained(path: Path) -> Path:
    """Take a checkpoint made by `depth-attn train` (its NAME.json card beside it) into the cache, so
    every command and the node find it by name and ``weights: auto`` picks it."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not path.is_file():
        raise WeightsError(f"checkpoint file not found: {path}")
    if not card_path.is_file():
        raise WeightsError(f"{path} has no card {card_path.name} beside it; give a known name: "
                           "`depth-attn weights import NAME FILE`")
    info = info_from_card(card_path)
    _check_digest(info, path)
    load_state_dict(path)
    weights_cache_dir().mkdir(parents=True, exist_ok=True)
    target = cached_path(info.name)
    card = json.loads(card_path.read_text())
    card["file"] = target.name
    tmp = _temp_in_cache(info)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    card_target = weights_cache_dir() / f"{info.name}.json"
    card_tmp = card_target.with_suffix(".json.part")
    card_tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(card_tmp, card_target)
    return target


def available_for(network: str, size: str, variant: str, placement: str,
                  dataset: str = "kitti") -> List[CheckpointInfo]:
    """Checkpoints on this machine that cover a configuration for a dataset, best first (shipped
    and cached ones before those only in the shared folder)."""
    return [info for info in known_checkpoints().values()
            if info.covers == (network, size, variant, placement) and info.dataset == dataset and _is_here(info)]


def resolve_auto(network: str, size: str, variant: str, placement: str = "full", dataset: str = "kitti") -> str:
    """``weights: auto`` -> the name of the shipped or cached checkpoint that covers the configuration."""
    found = available_for(network, size, variant, placement, dataset)
    if found:
        return found[0].name
    covered = sorted({f"{i.network}-{i.size}-{i.variant}-{i.placement} ({i.name})"
                      for i in known_checkpoints().values() if i.dataset == dataset and _is_here(i)})
    raise WeightsError(
        f"no {dataset} checkpoint on this machine covers {network}-{size}-{variant}-{placement}; configurations "
        f"with weights: {', '.join(covered) or 'none'}. Train one with `depth-attn train --config "
        f"config/train/meter_tiny_meta_distill_cpu.yaml --set model.variant={variant}` and `depth-attn weights "
        f"import OUT/NAME.pth`, or choose weights by name"
    )


def _is_here(info: CheckpointInfo) -> bool:
    try:
        _locate(info)
        return True
    except WeightsError:
        return False


def listing() -> List[Dict[str, str]]:
    rows = []
    for info in known_checkpoints().values():
        try:
            where = str(_locate(info))
        except WeightsError:
            where = "-"
        rows.append(
            {
                "name": info.name,
                "covers": f"{info.network}-{info.size}-{info.variant}-{info.placement}",
                "dataset": info.dataset,
                "input": f"{info.input_hw[0]}x{info.input_hw[1]}",
                "unit": info.output_unit,
                "sha256": info.sha256[:12] if info.sha256 else "unverified",
                "local": where,
            }
        )
    return rows
