"""What a finished run ships: its held-out metrics and the card beside its weights (what the network
is, what it was trained from and on, how, and how it scores)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from depth_attn.paths import sha256_file
from depth_attn.training.config import TrainConfig
from depth_attn.training.data import FrameDataset
from depth_attn.training.validate import validate

SUBSET_FRAMES = 20  # large held-out sets are also recorded on their first frames: a quick check for tests


def heldout_metrics(model: nn.Module, sets: Dict[str, FrameDataset], input_hw: Tuple[int, int], to_metres: float,
                    crop: str = "none", device: torch.device = torch.device("cpu")) -> Dict[str, Dict[str, float]]:
    """Mean metrics on every held-out set, plus ``<set>_first20`` for sets larger than that."""
    out: Dict[str, Dict[str, float]] = {}
    for name, data in sets.items():
        out[name] = validate(model, data, input_hw, to_metres, crop=crop, device=device)
        if len(data) > SUBSET_FRAMES:
            subset = FrameDataset(data.sources, cache=False)
            subset.index = subset.index[:SUBSET_FRAMES]
            out[f"{name}_first{SUBSET_FRAMES}"] = validate(model, subset, input_hw, to_metres, crop=crop, device=device)
    return out


def weights_name(config: TrainConfig) -> str:
    """The shipped weights' name: ``output.name``, else network-size-variant-placement-dataset."""
    return config.output.name or f"{config.model.config.name}-{config.output.dataset}"


def training_card(config: TrainConfig, *, name: str, weights_path: Path, input_hw: Tuple[int, int], unit: str,
                  to_metres: float, init_report, teacher: Optional[Dict[str, Any]], train_set: FrameDataset,
                  feature_layers: List[str], steps: int, processes: int, device: torch.device,
                  heldout: Dict[str, Dict[str, float]], argv: Sequence[str]) -> Dict[str, Any]:
    """The card of the weights at ``weights_path`` (hashed here), as ``report.write_card`` writes it."""
    c = config
    return {
        "name": name,
        "file": weights_path.name,
        "sha256": sha256_file(weights_path),
        **dataclasses.asdict(c.model.config),
        "dataset": c.output.dataset,
        "input_hw": list(input_hw),
        "output_unit": unit,
        "to_metres": to_metres,
        "max_depth_m": c.objective.max_depth,
        "init": c.model.init,
        "init_report": init_report.as_dict() if init_report else None,
        "teacher": teacher,
        "data": {"train": train_set.describe(), "frames": len(train_set),
                 "frames_with_gt": train_set.frames_with_gt()},
        "objective": dataclasses.asdict(c.objective),
        "feature_layers": feature_layers,
        "steps": steps,
        "batch_size": c.schedule.batch_size,
        "processes": processes,
        "device": str(device),
        "heldout": {k: {mk: round(mv, 6) for mk, mv in v.items()} for k, v in heldout.items()},
        "heldout_crop": c.output.crop,
        "command": " ".join(argv),
        "config": c.raw,
        "created": dt.date.today().isoformat(),
    }
