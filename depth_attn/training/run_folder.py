"""A training run's output folder: where its resume checkpoint is, whether the folder may be written
(never over another run), and the files that mark it as this run's (``run.json``, ``config.yaml``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Optional, Sequence

from depth_attn.training.config import TrainConfig, dump_config

RUN_FILE = "run.json"  # marks an output folder as holding a run, with that run's configuration


class TrainError(RuntimeError):
    """A run that cannot start (output folder, resume checkpoint, data); nothing was overwritten."""


def resume_checkpoint(out_dir: Path, resume: Optional[str]) -> Optional[Path]:
    """The checkpoint ``--resume`` names: none, ``auto`` (this folder's last one) or a path."""
    if resume is None:
        return None
    if resume == "auto":
        return out_dir / "checkpoints" / "last.pt"
    return Path(resume).expanduser()


def check_output_dir(out_dir: Path, resume_path: Optional[Path], identity: str) -> None:
    """An output folder that holds another run is never written over: resume it or choose another."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainError(f"output.dir {out_dir} is a file; name a folder (it is made if missing)")
    run_file = out_dir / RUN_FILE
    if not run_file.is_file():
        if out_dir.is_dir() and any(out_dir.iterdir()) and resume_path is None:
            raise TrainError(f"output folder {out_dir} is not empty and holds no run of ours; choose another "
                             "output.dir")
        return
    try:
        previous = json.loads(run_file.read_text())
    except (OSError, json.JSONDecodeError):
        previous = {}
    if resume_path is None:
        raise TrainError(
            f"output folder {out_dir} holds another run ({previous.get('model', 'unknown model')}); "
            f"continue it with --resume {out_dir / 'checkpoints' / 'last.pt'} "
            "or set output.dir to a new folder"
        )
    if previous.get("identity") not in (None, identity):
        raise TrainError(f"output folder {out_dir} holds a run of {previous.get('identity')}, not {identity}")


def write_run_files(out_dir: Path, config: TrainConfig, argv: Sequence[str]) -> None:
    """Mark ``out_dir`` as this run's: ``run.json`` (model, identity, start, command) and ``config.yaml``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RUN_FILE).write_text(json.dumps({
        "model": config.model.config.name,
        "identity": config.identity(), "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(argv)}, indent=2) + "\n")
    (out_dir / "config.yaml").write_text(dump_config(config))
