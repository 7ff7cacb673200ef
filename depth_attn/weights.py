"""Known checkpoints, a checksummed cache, and safe loading (always ``weights_only=True``)."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from depth_attn.paths import home_dir, sha256_file, shared_weights_dir

METER_URL = "https://github.com/lorenzopapa5/METER/raw/main/models/build_model_best_{dataset}_{size}"


class WeightsError(RuntimeError):
    """A checkpoint that is missing, tampered with or not a plain state dict."""


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    network: str
    size: str  # study size: tiny | base | large
    dataset: str
    url: str
    sha256: Optional[str]  # None: not yet verified by this project
    input_hw: Tuple[int, int]
    output_unit: str
    to_metres: float  # multiply the network output by this to get metres
    max_depth_m: float
    units_verified: bool
    shared_file: Optional[str] = None  # relative to the shared weights folder

    @property
    def verified(self) -> bool:
        return self.sha256 is not None


def _meter(size: str, meter_name: str, dataset: str, sha256: Optional[str]) -> CheckpointInfo:
    kitti = dataset == "kitti"
    return CheckpointInfo(
        name=f"meter-{meter_name}-{dataset}",
        network="meter",
        size=size,
        dataset=dataset,
        url=METER_URL.format(dataset=dataset, size=meter_name),
        sha256=sha256,
        input_hw=(192, 636) if kitti else (192, 256),
        output_unit="dm" if kitti else "cm (unverified)",
        to_metres=0.1 if kitti else 0.01,
        max_depth_m=80.0 if kitti else 10.0,
        units_verified=kitti,
        shared_file=f"meter/meter_{meter_name}_{dataset}.pth" if meter_name == "xxs" else None,
    )


CHECKPOINTS: Dict[str, CheckpointInfo] = {
    info.name: info
    for info in (
        _meter("tiny", "xxs", "kitti", "e55544ae36f9ad74237017fd5f8e761db4b258dbed44623c71ce305d44488bea"),
        _meter("tiny", "xxs", "nyu", "327cddf3bfc85f4a13b8d18d2f13d8e40cdeb022ea397995c409ef1569bcbb53"),
        _meter("base", "xs", "kitti", None),
        _meter("base", "xs", "nyu", None),
        _meter("large", "s", "kitti", None),
        _meter("large", "s", "nyu", None),
    )
}


def weights_cache_dir() -> Path:
    return home_dir() / "weights"


def cached_path(name: str) -> Path:
    return weights_cache_dir() / f"{name}.pth"


def checkpoint_info(name: str) -> CheckpointInfo:
    try:
        return CHECKPOINTS[name]
    except KeyError:
        raise WeightsError(f"unknown checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}") from None


def identify(path: Path) -> Optional[CheckpointInfo]:
    """The known checkpoint whose checksum this file has, if any."""
    digest = sha256_file(path)
    return next((info for info in CHECKPOINTS.values() if info.sha256 == digest), None)


def _check_digest(info: CheckpointInfo, path: Path) -> None:
    if info.sha256 is None:
        return
    digest = sha256_file(path)
    if digest != info.sha256:
        raise WeightsError(
            f"{path} does not match the checksum of {info.name} (expected {info.sha256}, got {digest}); "
            "the file is corrupt or not that checkpoint: refusing to load it"
        )


def locate(name: str) -> Path:
    """The verified local file of a known checkpoint: the cache first, then the shared folder."""
    info = checkpoint_info(name)
    candidates = [cached_path(name)]
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
    if name_or_path in CHECKPOINTS:
        return locate(name_or_path), CHECKPOINTS[name_or_path]
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        known = ", ".join(CHECKPOINTS)
        raise WeightsError(f"weights {name_or_path!r} is neither a known checkpoint ({known}) nor a file")
    return path, identify(path)


def load_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """Load a plain state dict; anything that needs code to unpickle is refused, never run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint file not found: {path}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError) as exc:
        raise WeightsError(f"cannot load {path} as a weights-only checkpoint: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} is not a state dict of tensors")
    return state


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


def listing() -> List[Dict[str, str]]:
    rows = []
    for info in CHECKPOINTS.values():
        try:
            where = str(locate(info.name))
        except WeightsError:
            where = "-"
        rows.append(
            {
                "name": info.name,
                "network": f"{info.network}/{info.size}",
                "input": f"{info.input_hw[0]}x{info.input_hw[1]}",
                "unit": info.output_unit,
                "sha256": info.sha256[:12] if info.sha256 else "unverified",
                "local": where,
            }
        )
    return rows
