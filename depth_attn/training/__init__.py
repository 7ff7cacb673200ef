"""Training and distillation (core: no ROS). ``depth-attn train --config FILE`` in one process, or
``torchrun --nproc-per-node N -m depth_attn.training --config FILE`` for DDP over processes, GPUs
and nodes. Modules: data (sources), augment, objectives, init (student initialisation), loop,
checkpoint, distributed, validate, report, config."""

from depth_attn.training.config import TrainConfig, TrainConfigError, load_config
from depth_attn.training.loop import TrainError, TrainResult, train

__all__ = ["TrainConfig", "TrainConfigError", "TrainError", "TrainResult", "load_config", "train"]
