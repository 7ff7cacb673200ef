"""Training and distillation (core: no ROS). ``depth-attn train --config FILE`` in one process, or
``torchrun --nproc-per-node N -m depth_attn.training --config FILE`` for DDP over processes, GPUs
and nodes. Modules: data (sources), augment, objectives, init (student initialisation), loop, run_folder,
card, taps (feature distillation), optim, checkpoint, distributed, validate, report, config."""

from depth_attn.training.config import TrainConfig, TrainConfigError, load_config
from depth_attn.training.run_folder import TrainError

__all__ = ["TrainConfig", "TrainConfigError", "TrainError", "TrainResult", "load_config", "train"]


def __getattr__(name: str):
    # the loop (and with it the estimator and its backends) is imported when first asked for, so that
    # ``validate``, ``data`` and the other light modules load without it
    if name in ("TrainResult", "train"):
        from depth_attn.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
