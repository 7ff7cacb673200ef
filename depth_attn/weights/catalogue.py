"""The catalogue of checkpoints: the built-in table (the official METER checkpoints), the cards of
trained ones (shipped in the package's weights/ or imported into the cache), and what each covers.
Reading the catalogue reads the cards on disk; importing this module does not."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from depth_attn.models.spec import network_spec
from depth_attn.paths import package_weights_dir, weights_cache_dir

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
    spec = network_spec("meter")  # the KITTI checkpoints are what the spec describes; NYU's differ
    return CheckpointInfo(
        name=f"meter-{meter_name}-{dataset}",
        network="meter",
        size=size,
        dataset=dataset,
        url=METER_URL.format(dataset=dataset, size=meter_name),
        sha256=sha256,
        input_hw=spec.input_hw if kitti else (192, 256),
        output_unit=spec.output_unit if kitti else "cm (unverified)",
        to_metres=spec.to_metres if kitti else 0.01,
        max_depth_m=spec.max_depth_m if kitti else 10.0,
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


def checkpoint_info(name: str) -> CheckpointInfo:
    table = known_checkpoints()
    try:
        return table[name]
    except KeyError:
        raise WeightsError(f"unknown checkpoint {name!r}; known: {', '.join(table)}") from None


AUTO = "auto"
UNTRAINED_NAMES = ("", "none", "untrained")
