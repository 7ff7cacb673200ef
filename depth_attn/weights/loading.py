"""Loading a checkpoint safely (always ``weights_only=True``: a file that needs code to unpickle is
refused, never run) and what it leaves of a network uncovered."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Dict

import torch

from depth_attn.weights.catalogue import WeightsError


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


