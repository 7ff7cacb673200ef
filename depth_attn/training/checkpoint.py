"""Training checkpoints, written atomically (temporary file in the same folder, then rename): a
reader never sees half a file, and a crash while writing leaves the previous one intact.

A resume checkpoint holds model, optimiser, scheduler, step, RNG states and the configuration; it
loads with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only). Shipped weights
are plain state dicts (``save_state_dict``)."""

from __future__ import annotations

import math
import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A resume checkpoint that is missing, corrupt, or of another configuration."""


def atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_state_dict(model: torch.nn.Module, path: Path) -> None:
    atomic_save({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}, path)


def rng_state() -> Dict[str, Any]:
    state: Dict[str, Any] = {"torch": torch.get_rng_state()}
    np_state = np.random.get_state()
    state["numpy"] = {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])}
    py = random.getstate()
    state["python"] = {"version": py[0], "state": list(py[1]), "gauss": py[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_resume(path: Path) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"resume checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text here advises weights_only=False: never run a file's pickle
        raise CheckpointError(
            f"cannot load {path} as a training checkpoint: it is corrupt, or holds objects other than tensors and "
            "plain values (not a depth_attn checkpoint); it was not loaded. Resume from an intact one or start "
            "a new run") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot load {path} as a training checkpoint: it is corrupt or truncated ({reason}); "
                              "resume from an intact one or start a new run") from None
    needed = {"model", "optimizer", "scheduler", "step", "identity", "config"}
    if not isinstance(state, dict) or not needed <= set(state):
        raise CheckpointError(f"{path} is not a depth_attn training checkpoint (needs {', '.join(sorted(needed))})")
    return state


def save_resume(path: Path, *, model: torch.nn.Module, optimizer, scheduler, scaler, ema, step: int, identity: str,
                config_text: str, best_abs_rel: float, elapsed_s: float) -> None:
    """A resume checkpoint of everything the run needs to go on exactly where it stopped."""
    atomic_save(
        {
            "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "step": step,
            "rng": rng_state(),
            "identity": identity,
            "config": config_text,
            "best_abs_rel": best_abs_rel,
            "elapsed_s": elapsed_s,
            **({"ema": ema.state_dict()} if ema is not None else {}),
        },
        path,
    )


def restore_resume(path: Path, identity: str, *, model: torch.nn.Module, optimizer, scheduler, scaler,
                   ema) -> Tuple[int, float, float]:
    """Load a resume checkpoint of the run ``identity`` into the run's parts: (step, best validation
    abs_rel, seconds trained so far); CheckpointError where it is of another run or lacks a part."""
    state = load_resume(path)
    if state["identity"] != identity:
        raise CheckpointError(
            f"--resume {path} is a checkpoint of {state['identity']}, but this configuration trains "
            f"{identity}; resume with the configuration that made it, or start a new run"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if "scaler" in state and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    if "rng" in state:
        restore_rng(state["rng"])
    if ema is not None:
        if "ema" not in state:
            raise CheckpointError(f"--resume {path} was written without schedule.ema; resume it without "
                                  "the weight average, or start a new run")
        ema.load_state_dict(state["ema"])
    # train.csv's elapsed_s goes on from the stopped run's training time (older checkpoints lack it)
    return int(state["step"]), float(state.get("best_abs_rel", math.inf)), float(state.get("elapsed_s", 0.0))
