"""The training configuration: a YAML file with sections model, teacher, data, augment, objective,
schedule and output, plus ``--set section.key=value`` overrides. Unknown keys are errors (a typo
must not silently train something else)."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from depth_attn import keyvalue
from depth_attn.models.registry import ModelConfig
from depth_attn.training.augment import AugmentConfig
from depth_attn.training.objectives import ObjectiveConfig

DECAYS = ("cosine", "poly", "constant")
AMP_MODES = ("none", "bf16", "fp16")
# meta students: the factor on the pre-norm in front of each pooling mixer at the start (training/init.py)
META_MIXER_STARTS = {"copied": 1.0, "halved": 0.5, "silenced": 0.0}


class TrainConfigError(ValueError):
    """A training configuration that cannot be run; the message names the key."""


@dataclass(frozen=True)
class ModelSection:
    """The student: its model identity (YAML keys network, size, variant, placement) and its start."""

    config: ModelConfig = field(default_factory=ModelConfig)
    init: Optional[str] = None  # checkpoint name or file the student starts from
    # meta students: "silenced" starts each pooling branch at zero (its pre-norm zeroed), "halved" at half
    # the output it has behind the pre-norm that fed the init network's attention ("copied")
    meta_mixers: str = "copied"
    input_size: Optional[Tuple[int, int]] = None  # network input (H, W); None: the init/teacher checkpoint's


@dataclass(frozen=True)
class TeacherSection:
    """The teacher: its model identity (YAML keys as the model section's) and its weights."""

    config: ModelConfig = field(default_factory=ModelConfig)
    weights: Optional[str] = None


@dataclass(frozen=True)
class ScheduleSection:
    steps: int = 1000
    batch_size: int = 4  # per process
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    decay: str = "cosine"
    min_lr_ratio: float = 0.0
    poly_power: float = 0.9
    clip_grad_norm: float = 1.0  # 0 = off
    freeze_bn: bool = True  # BatchNorm running statistics kept (small batches)
    trainable: Optional[Tuple[str, ...]] = None  # name prefixes that train; None = everything
    amp: str = "none"  # CUDA only: bf16 | fp16
    seed: int = 0
    threads: Optional[int] = None  # torch CPU threads per process
    device: str = "auto"  # auto: cuda:<local rank> when CUDA is there, else cpu
    channels_last: bool = True  # NHWC tensors: 20-30 % faster steps for METER on the CPU (docs/benchmarks.md)
    ema: float = 0.0  # decay of a moving average of the weights (e.g. 0.998): validated, kept and shipped; 0 = off


@dataclass(frozen=True)
class OutputSection:
    dir: str = "out/train/run"
    name: Optional[str] = None  # checkpoint name in the card (e.g. meter-xxs-meta-kitti)
    dataset: str = "kitti"
    checkpoint_every: int = 200
    validate_every: int = 200
    validate_on: Optional[str] = None  # which data.val set to validate on while training (default: the first)
    crop: str = "none"  # evaluation crop for validation
    check_sync: bool = False  # DDP: log the largest parameter difference between ranks every step
    log_shards: bool = False  # DDP: rank 0 logs every rank's frame indices per step (shards.jsonl)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    teacher: Optional[TeacherSection] = None
    train_data: Tuple[Dict[str, Any], ...] = ()
    val_data: Dict[str, Tuple[Dict[str, Any], ...]] = field(default_factory=dict)
    cache_frames: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    output: OutputSection = field(default_factory=OutputSection)
    raw: Dict[str, Any] = field(default_factory=dict, compare=False)

    def identity(self) -> Dict[str, Any]:
        """What a checkpoint must agree on to be resumed: the student's model identity."""
        return asdict(self.model.config)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _section(cls, values: Optional[Dict[str, Any]], where: str):
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**{k: _tuple(v) for k, v in values.items()})


def _identity_section(cls, values: Optional[Dict[str, Any]], where: str):
    """A section holding a model identity: its keys network/size/variant/placement make the ModelConfig."""
    values = dict(values or {})
    identity_keys = [f.name for f in fields(ModelConfig)]
    identity = {k: values.pop(k) for k in identity_keys if k in values}
    known = sorted(identity_keys + [f.name for f in fields(cls) if f.name != "config"])
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TrainConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        config = ModelConfig(**{k: str(v) for k, v in identity.items()})
    except ValueError as exc:
        raise TrainConfigError(f"{where}: {exc}") from exc
    return cls(config=config, **{k: _tuple(v) for k, v in values.items()})


def set_override(raw: Dict[str, Any], assignment: str) -> None:
    """``a.b.c=value`` (value parsed as YAML) into the nested dict ``raw``."""
    try:
        key, text = keyvalue.split_assignment(assignment, "key=value")
    except ValueError as exc:
        raise TrainConfigError(f"--set {exc}") from None
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise TrainConfigError(f"--set {key}: {part} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(text)


def parse_config(raw: Dict[str, Any]) -> TrainConfig:
    raw = copy.deepcopy(raw)
    sections = {"model", "teacher", "data", "augment", "objective", "schedule", "output"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise TrainConfigError(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(sorted(sections))}")
    model = _identity_section(ModelSection, raw.get("model"), "model")
    teacher = _identity_section(TeacherSection, raw["teacher"], "teacher") if raw.get("teacher") else None
    data = dict(raw.get("data") or {})
    unknown = sorted(set(data) - {"train", "val", "cache"})
    if unknown:
        raise TrainConfigError(f"unknown key(s) in data: {', '.join(unknown)}; known: cache, train, val")
    train = data.get("train") or []
    if not isinstance(train, list) or not train:
        raise TrainConfigError("data.train must list at least one source (type: kitti_raw | images | bag, path: ...)")
    val = data.get("val") or {}
    if isinstance(val, list):
        val = {"val": val}
    if not isinstance(val, dict):
        raise TrainConfigError("data.val must map a set name to a list of sources")
    augment_raw = dict(raw.get("augment") or {})
    if "crop" in augment_raw:
        augment_raw["crop_hw"] = augment_raw.pop("crop")
    augment = _section(AugmentConfig, augment_raw, "augment")
    objective = _section(ObjectiveConfig, raw.get("objective"), "objective")
    schedule = _section(ScheduleSection, raw.get("schedule"), "schedule")
    output = _section(OutputSection, raw.get("output"), "output")
    config = TrainConfig(
        model=model,
        teacher=teacher,
        train_data=tuple(train),
        val_data={k: tuple(v) for k, v in val.items() if v},  # an emptied set (--set data.val.x=[]) is dropped
        cache_frames=bool(data.get("cache", True)),
        augment=augment,
        objective=objective,
        schedule=schedule,
        output=output,
        raw=raw,
    )
    check(config)
    return config


def check(config: TrainConfig) -> None:
    s = config.schedule
    if s.steps < 1 or s.batch_size < 1:
        raise TrainConfigError("schedule.steps and schedule.batch_size must be >= 1")
    if config.model.meta_mixers not in META_MIXER_STARTS:
        raise TrainConfigError(f"model.meta_mixers must be one of {', '.join(META_MIXER_STARTS)}, "
                               f"got {config.model.meta_mixers!r}")
    if s.decay not in DECAYS:
        raise TrainConfigError(f"schedule.decay must be one of {', '.join(DECAYS)}")
    if s.amp not in AMP_MODES:
        raise TrainConfigError(f"schedule.amp must be one of {', '.join(AMP_MODES)}")
    if s.lr <= 0 or s.warmup_steps < 0:
        raise TrainConfigError("schedule.lr must be > 0 and warmup_steps >= 0")
    if not 0.0 <= s.ema < 1.0:
        raise TrainConfigError(f"schedule.ema is a decay in [0, 1) (0 = off), got {s.ema}")
    try:
        config.objective.check()
        config.augment.check()
    except ValueError as exc:
        raise TrainConfigError(str(exc)) from exc
    if config.objective.needs_teacher and config.teacher is None:
        raise TrainConfigError("distillation terms need a teacher section (network, size, variant, weights)")
    if config.output.validate_on and config.output.validate_on not in config.val_data:
        raise TrainConfigError(f"output.validate_on {config.output.validate_on!r} is not a data.val set")
    if min(config.output.checkpoint_every, config.output.validate_every) < 1:
        raise TrainConfigError("output.checkpoint_every and validate_every must be >= 1")


def load_config(path: Optional[Path], overrides: Sequence[str] = ()) -> TrainConfig:
    raw: Dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise TrainConfigError(f"training config not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise TrainConfigError(f"{path} must hold a mapping of sections")
    for assignment in overrides:
        set_override(raw, assignment)
    return parse_config(raw)


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.raw, sort_keys=False)


__all__: List[str] = ["TrainConfig", "TrainConfigError", "load_config", "parse_config", "dump_config"]
