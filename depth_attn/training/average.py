"""`depth-attn weights average`: the uniform average of trained checkpoints of one configuration
(a "model soup"), measured on the held-out sets of the first one's config and carded like a trained one.

Averaging helps only when the inputs come from different lineages (different starts or runs): two
students fine-tuned from one parent sit in one basin and average to what either gives. The card keeps
every input's provenance, so the averaged file is reproducible from its ``command`` alone."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from depth_attn.models import build_model
from depth_attn.paths import sha256_file
from depth_attn.weights import load_state_dict

from .checkpoint import atomic_save
from .config import parse_config
from .data import build_dataset
from .loop import TrainError, heldout_metrics
from .report import write_card

# what must agree between the inputs' cards for their average to mean anything
SAME_ON_CARDS = ("network", "size", "variant", "placement", "dataset", "input_hw", "to_metres")


def read_card(weights_path: Path) -> Dict[str, Any]:
    card_path = Path(weights_path).with_suffix(".json")
    if not Path(weights_path).is_file():
        raise TrainError(f"checkpoint file not found: {weights_path}")
    if not card_path.is_file():
        raise TrainError(f"{weights_path} has no card {card_path.name} beside it: only checkpoints made by "
                         "`depth-attn train` (or by this command) can be averaged")
    try:
        card = json.loads(card_path.read_text())
    except ValueError as exc:
        raise TrainError(f"card {card_path} is unreadable: {exc}") from exc
    missing = [key for key in (*SAME_ON_CARDS, "config", "sha256") if key not in card]
    if missing:
        raise TrainError(f"card {card_path} is incomplete: no {', '.join(missing)}")
    return card


def provenance(card: Dict[str, Any]) -> List[str]:
    """The commands that made a checkpoint, first to last: a card's recorded stages, else its own command
    preceded by those of its ``init`` when that is a trained file with a card beside it."""
    if card.get("stages"):
        return [str(stage["command"]) for stage in card["stages"]]
    commands = [str(card.get("command", ""))]
    init = Path(str(card.get("init") or ""))
    if init.suffix == ".pth" and init.is_file() and init.with_suffix(".json").is_file():
        commands = provenance(json.loads(init.with_suffix(".json").read_text())) + commands
    return commands


def chain_commands(lineages: Sequence[Sequence[str]]) -> List[str]:
    """The lineages' commands in order, each once: a stage two inputs share (a common parent) runs once,
    as running it again would find its output folder taken."""
    chain: List[str] = []
    for command in (c for lineage in lineages for c in lineage):
        if command and command not in chain:
            chain.append(command)
    return chain


def average_state_dicts(states: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Uniform mean of floating tensors (summed in float64); integer buffers (BatchNorm's batch counters)
    are taken from the first state."""
    first = states[0]
    for index, state in enumerate(states[1:], start=2):
        if set(state) != set(first):
            extra, missing = sorted(set(state) - set(first)), sorted(set(first) - set(state))
            raise TrainError(f"input {index} has other tensors than input 1 (extra {extra[:3]}, missing "
                             f"{missing[:3]}): the checkpoints are not of one network")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                raise TrainError(f"input {index}: {key} is {tuple(tensor.shape)}, input 1 has "
                                 f"{tuple(first[key].shape)}")
    averaged: Dict[str, torch.Tensor] = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(state[key].double() for state in states)
            averaged[key] = (total / len(states)).to(tensor.dtype).contiguous()
        else:
            averaged[key] = tensor.clone()
    return averaged


def average_checkpoints(inputs: Sequence[Path], output: Path, argv: Sequence[str] = (),
                        name: Optional[str] = None) -> Dict[str, Any]:
    """Average ``inputs`` into ``output`` (+ its card, held-out metrics measured); returns the card."""
    inputs = [Path(p) for p in inputs]
    output = Path(output)
    if len(inputs) < 2:
        raise TrainError("averaging needs at least two checkpoints")
    if output.suffix != ".pth":
        raise TrainError(f"the output must be a .pth file, got {output}")
    if any(output.resolve() == p.resolve() for p in inputs):
        raise TrainError(f"the output {output} is one of the inputs; choose another file")
    cards = [read_card(p) for p in inputs]
    for path, card in zip(inputs[1:], cards[1:], strict=True):
        for key in SAME_ON_CARDS:
            if card[key] != cards[0][key]:
                raise TrainError(f"{path} has {key} {card[key]!r}, {inputs[0]} has {cards[0][key]!r}: "
                                 "only checkpoints of one configuration can be averaged")
    states = []
    for path, card in zip(inputs, cards, strict=True):
        if sha256_file(path) != card["sha256"]:
            raise TrainError(f"{path} does not match the sha256 on its card: the file changed after training")
        states.append(load_state_dict(path))
    averaged = average_state_dicts(states)

    first = cards[0]
    model = build_model(first["network"], first["size"], first["variant"], first["placement"])
    model.load_state_dict(averaged, strict=True)
    config = parse_config(first["config"])
    if not config.val_data:
        raise TrainError(f"{inputs[0]}'s config has no data.val sets to measure the average on")
    try:
        sets = {set_name: build_dataset(specs, cache=False) for set_name, specs in config.val_data.items()}
    except ValueError as exc:
        raise TrainError(f"data.val: {exc}") from exc
    crop = str(first.get("heldout_crop", "none"))
    heldout = heldout_metrics(model, sets, tuple(first["input_hw"]), float(first["to_metres"]), crop)

    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(averaged, output)
    lineages = [provenance(card) for card in cards]
    own_command = " ".join(argv)
    card = {key: value for key, value in first.items() if key not in ("stages", "init_report", "curves")}
    card.update({
        "name": name or first["name"],
        "file": output.name,
        "sha256": sha256_file(output),
        "init": None,
        "steps": sum(int(c.get("steps") or 0) for c in cards),
        "heldout": {k: {mk: round(mv, 6) for mk, mv in v.items()} for k, v in heldout.items()},
        "heldout_crop": crop,
        "command": " && ".join(chain_commands([*lineages, [own_command]])),
        "averaged_from": [
            {"file": str(path), "name": c["name"], "sha256": c["sha256"], "commands": lineage,
             "heldout": c.get("heldout")}
            for path, c, lineage in zip(inputs, cards, lineages, strict=True)
        ],
        "selection": f"the uniform average of {len(inputs)} trained checkpoints (`depth-attn weights average`)",
        "created": dt.date.today().isoformat(),
    })
    if all("training_time_s" in c for c in cards):
        card["training_time_s"] = sum(int(c["training_time_s"]) for c in cards)
    write_card(output.with_suffix(".json"), card)
    return card
