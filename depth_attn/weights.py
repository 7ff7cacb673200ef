"""Known checkpoints, a checksummed cache, and safe loading (always ``weights_only=True``)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from depth_attn.paths import home_dir, package_weights_dir, sha256_file, shared_weights_dir

METER_URL = "https://github.com/lorenzopapa5/METER/raw/main/models/build_model_best_{dataset}_{size}"


# The camera each dataset's images come from: (focal length px, image width). KITTI: P_rect_02 of the
# 2011_09_26 calibration at 1242 px; NYU Depth v2: the Kinect's colour camera at 640 px.
DATASET_CAMERAS: Dict[str, Tuple[float, int]] = {"kitti": (721.5377, 1242), "nyu": (518.8579, 640)}


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
    package_file: Optional[str] = None  # shipped in the package's weights/ folder
    variant: str = "base"  # the attention variant the checkpoint trained (what it covers)
    placement: str = "full"
    card: Optional[str] = None  # the JSON card beside a trained checkpoint
    camera: Optional[Tuple[float, int]] = None  # the training camera: (focal px, at image width); None = the dataset's

    @property
    def training_camera(self) -> Tuple[float, int]:
        """(focal length in pixels, the image width it is at) of the camera the checkpoint learnt metres
        from: the canonical camera every frame is mapped into."""
        return self.camera or DATASET_CAMERAS.get(self.dataset, DATASET_CAMERAS["kitti"])

    @property
    def verified(self) -> bool:
        return self.sha256 is not None

    @property
    def covers(self) -> Tuple[str, str, str, str]:
        return (self.network, self.size, self.variant, self.placement)


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
        package_file="meter_xxs_kitti.pth" if (meter_name, dataset) == ("xxs", "kitti") else None,
    )


BUILTIN: Dict[str, CheckpointInfo] = {
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


def info_from_card(card_path: Path) -> CheckpointInfo:
    """A trained checkpoint's card (written by `depth-attn train`) -> its table entry."""
    try:
        card = json.loads(Path(card_path).read_text())
        hw = tuple(int(v) for v in card["input_hw"])
        return CheckpointInfo(
            name=str(card["name"]),
            network=str(card["network"]),
            size=str(card["size"]),
            dataset=str(card.get("dataset", "kitti")),
            url="",
            sha256=str(card["sha256"]),
            input_hw=(hw[0], hw[1]),
            output_unit=str(card.get("output_unit", "m")),
            to_metres=float(card["to_metres"]),
            max_depth_m=float(card.get("max_depth_m", 80.0)),
            units_verified=True,
            package_file=str(card.get("file", f"{card['name']}.pth")),
            variant=str(card.get("variant", "base")),
            placement=str(card.get("placement", "full")),
            card=str(card_path),
            camera=(float(card["camera"][0]), int(card["camera"][1])) if card.get("camera") else None,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"weights card {card_path} is unreadable or incomplete: {exc}") from exc


def _cards(folder: Path) -> List[CheckpointInfo]:
    if not folder.is_dir():
        return []
    found = []
    for card in sorted(folder.glob("*.json")):
        try:
            found.append(info_from_card(card))
        except WeightsError:
            continue  # a broken card in the cache must not hide the others; `weights list` shows what is known
    return found


def known_checkpoints() -> Dict[str, CheckpointInfo]:
    """The built-in table, the cards shipped in the package's weights/ and those imported into the cache."""
    table = dict(BUILTIN)
    for info in _cards(package_weights_dir()) + _cards(weights_cache_dir()):
        table.setdefault(info.name, info)
    return table


# The table as a user sees it at import time (shipped cards included); cache imports via known_checkpoints().
CHECKPOINTS: Dict[str, CheckpointInfo] = known_checkpoints()


def checkpoint_info(name: str) -> CheckpointInfo:
    table = known_checkpoints()
    try:
        return table[name]
    except KeyError:
        raise WeightsError(f"unknown checkpoint {name!r}; known: {', '.join(table)}") from None


def identify(path: Path) -> Optional[CheckpointInfo]:
    """The known checkpoint whose checksum this file has, if any."""
    digest = sha256_file(path)
    return next((info for info in known_checkpoints().values() if info.sha256 == digest), None)


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


def _why_refused(exc: BaseException) -> str:
    """torch's reason for refusing a pickle, without its advice to retry with weights_only=False (which
    would run the file's code)."""
    text = str(exc)
    for line in text.splitlines():
        if "WeightsUnpickler error" in line:
            return line.split(" was not an allowed global")[0].strip()
    if "weights_only" in text:
        return text.split(".")[0].strip() or type(exc).__name__
    return text


def load_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """Load a plain state dict; anything that needs code to unpickle is refused, never run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint file not found: {path}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError) as exc:
        raise WeightsError(f"cannot load {path} as a weights-only checkpoint: {_why_refused(exc)}. It needs code to "
                           "unpickle, which is never run; give a plain state dict instead: a known checkpoint "
                           "(`depth-attn weights list`), or `depth-attn weights import NAME FILE` of the network's "
                           "state_dict saved with torch.save(model.state_dict(), FILE)") from exc
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


AUTO = "auto"
UNTRAINED_NAMES = ("", "none", "untrained")


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


def coverage_gaps(model_state: Dict[str, torch.Tensor], checkpoint_state: Dict[str, torch.Tensor]) -> List[str]:
    """Where a checkpoint does not cover a network: its tensors that the checkpoint does not provide
    (missing, or another shape), and checkpoint tensors with no place in it (a meta network has no
    parameters where the base attention had them, so the base weights leave it untrained all the same)."""
    gaps = [f"{name} (missing)" for name, tensor in model_state.items()
            if name not in checkpoint_state or tuple(checkpoint_state[name].shape) != tuple(tensor.shape)]
    gaps += [f"{name} (unused)" for name in checkpoint_state if name not in model_state]
    return gaps


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
