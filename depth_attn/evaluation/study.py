"""The efficient-attention study (``specs/attention-variants.md``) in one run: the zoo (parameters,
GMACs), latency on one or more backends (every configuration and backend interleaved in one loop),
the nine accuracy metrics, the Pareto fronts, the embedding entropy and the study's claims checked.

Nothing here measures on its own: accuracy is ``offline.evaluate_bag`` (``depth-attn eval``),
latency is ``timing.measure_interleaved`` on ``backend.run`` and ``estimate`` (``depth-attn bench``),
the counts are ``models.stats.model_stats`` (``depth-attn zoo``), which checkpoint a configuration
has is ``sweep.trained_weights`` (``depth-attn sweep``). ``study_report`` writes what it found."""

from __future__ import annotations

import csv
import itertools
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from depth_attn.data import heldout
from depth_attn.evaluation.entropy import gaussian_entropy, knn_entropy, principal_components
from depth_attn.evaluation.offline import EvalSettings, evaluate_bag
from depth_attn.evaluation.sweep import frontier_mask, trained_weights
from depth_attn.metrics import METRIC_NAMES
from depth_attn.models.registry import NETWORKS, ModelConfig, list_configs
from depth_attn.models.spec import network_spec

# The study's input sizes per dataset (METER 192x636 / 192x256; Swin networks KB crop / NYU frame).
STUDY_INPUT_SIZES: Dict[str, Dict[str, Tuple[int, int]]] = {
    "kitti": {network: network_spec(network).input_hw for network in NETWORKS},
    "nyu": {"meter": (192, 256), "pixelformer": (480, 640), "newcrfs": (480, 640)},
}
DEFAULT_DATA = {"kitti": ("kitti", "kitti2015"), "nyu": ("nyu",)}  # under the shared data folder
GT_MAX_DEPTH = {"kitti": 80.0, "nyu": 10.0}


@dataclass
class StudySettings:
    data: Path
    out: Path
    dataset: str = "kitti"
    configs: Optional[Sequence[ModelConfig]] = None  # None: every configuration with weights for the dataset
    timed: Sequence[ModelConfig] = ()  # untrained configurations to time as well
    backends: Sequence[str] = ("torch", "onnxruntime")  # accuracy and embeddings use the first
    device: str = "cpu"
    evaluation: EvalSettings = field(default_factory=EvalSettings)
    runs: int = 30
    warmup: int = 3
    zoo: str = "all"  # all 72 configurations, or "chosen"
    entropy_dims: int = 8  # principal components the entropy is measured on
    knn_k: int = 5
    progress: bool = True
    command: str = ""


@dataclass
class StudyRow:
    config: ModelConfig
    weights: Optional[str]
    status: str
    frames: int = 0
    metrics: Dict[str, float] = field(default_factory=dict)
    latency: Dict[str, Dict[str, object]] = field(default_factory=dict)  # backend -> kind -> LatencyStats
    errors: Dict[str, str] = field(default_factory=dict)  # what could not be measured, and why
    entropy: Dict[str, object] = field(default_factory=dict)
    embeddings: Optional[np.ndarray] = None
    pareto: Dict[Tuple[str, str], bool] = field(default_factory=dict)  # (backend, metric) -> on the front

    @property
    def trained(self) -> bool:
        return self.weights is not None

    @property
    def evaluated(self) -> bool:
        return bool(self.metrics) and np.isfinite(self.metrics.get("abs_rel", np.nan))

    def p50(self, backend: str, kind: str = "end_to_end") -> float:
        stats = self.latency.get(backend, {}).get(kind)
        return float(stats.p50_ms) if stats is not None else float("nan")  # type: ignore[attr-defined]


@dataclass
class StudyResult:
    settings: StudySettings
    rows: List[StudyRow]
    zoo: List[Dict[str, object]]
    reference_gmacs: Dict[str, float]  # METER at 192x256, the spec's sanity figures
    machine: Dict[str, str]
    duration_s: float = 0.0

    def row(self, name: str) -> Optional[StudyRow]:
        return next((r for r in self.rows if r.config.name == name), None)


def default_data(dataset: str) -> Path:
    from depth_attn.paths import data_dir

    return data_dir().joinpath(*DEFAULT_DATA[dataset])


def machine_info() -> Dict[str, str]:
    import torch

    from depth_attn.cli.doctor import cpu_model

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu_model(), "cores": str(os.cpu_count()), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": str(torch.get_num_threads()),
            "load_average": " / ".join(f"{v:.2f}" for v in load),
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def choose_rows(settings: StudySettings) -> List[StudyRow]:
    """The configurations with weights (evaluated and timed), then the untrained ones asked for
    (timed only). A configuration named in ``configs`` or ``timed`` without weights is timed only."""
    chosen = list(settings.configs) if settings.configs is not None else list_configs()
    rows: List[StudyRow] = []
    for config in chosen:
        name, why = trained_weights(config, settings.dataset)
        if name or settings.configs is not None:
            rows.append(StudyRow(config, name, why))
    for config in settings.timed:  # one with weights after all is evaluated like the others
        if all(r.config != config for r in rows):
            rows.append(StudyRow(config, *trained_weights(config, settings.dataset)))
    if not rows:
        raise ValueError(f"no configuration to study: none has {settings.dataset} weights on this machine "
                         "(`depth-attn weights list`); name some with --configs or --timed")
    return rows


def count_zoo(settings: StudySettings, rows: Sequence[StudyRow]) -> List[Dict[str, object]]:
    from tqdm import tqdm

    from depth_attn.models.stats import model_stats

    configs = list_configs() if settings.zoo == "all" else [r.config for r in rows]
    sizes = STUDY_INPUT_SIZES[settings.dataset]
    out = []
    for config in tqdm(configs, desc="zoo", unit="config", disable=not settings.progress):
        stats = model_stats(config, sizes[config.network])
        weights, _ = trained_weights(config, settings.dataset)
        out.append({"config": config, "input_hw": stats.input_hw, "params": stats.params, "gmacs": stats.gmacs,
                    "weights": weights or "-"})
    return out


def reference_gmacs() -> Dict[str, float]:
    from depth_attn.models.stats import model_stats

    return {f"meter-{s}-{v}-full": model_stats(ModelConfig("meter", s, v), (192, 256)).gmacs
            for s in ("tiny", "base", "large") for v in ("base", "meta")}


def make_estimator(config: ModelConfig, weights: Optional[str], backend: str, settings: StudySettings):
    """The estimator ``depth-attn eval`` / ``bench`` build for these options (input size: the checkpoint's)."""
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    return DepthEstimator(EstimatorConfig(model=config, weights=weights, dataset=settings.dataset, backend=backend,
                                          device=settings.device))


def study_frames(settings: StudySettings, limit: Optional[int] = None):
    """The frames an evaluation scores (those with ground truth, up to ``--frames``), as RGB."""
    ev = settings.evaluation
    cap = min(v for v in (limit, ev.max_frames) if v) if (limit or ev.max_frames) else None
    for i, frame in enumerate(heldout.iter_frames(settings.data, ev.image_topic, ev.gt_topic, require_gt=True)):
        if cap is not None and i >= cap:
            return
        yield frame.rgb


def entropy_of(x: np.ndarray, dims: int, k: int) -> Dict[str, object]:
    """Both estimators on the embeddings as they are (d dimensions) and on their ``dims`` leading
    principal components; where one cannot be measured, why."""
    n, d = x.shape
    out: Dict[str, object] = {"n": n, "d": d, "dims": min(dims, d)}
    estimators: Dict[str, Callable[[np.ndarray], float]] = {"gaussian": gaussian_entropy,
                                                           "knn": lambda a: knn_entropy(a, k)}
    dims = int(out["dims"])  # type: ignore[call-overload]
    projected = principal_components(x, dims) if n > dims else None
    for name, fn in estimators.items():
        for suffix, sample in (("_full", x), ("", projected)):
            try:
                if sample is None:
                    raise ValueError(f"{n} frames are not more than the {dims} principal components")
                out[name + suffix] = fn(sample)
            except ValueError as exc:
                out[name + suffix] = float("nan")
                out[name + suffix + "_why"] = str(exc).split(": the covariance of so few")[0]
    return out


def _evaluate(row: StudyRow, estimator, settings: StudySettings) -> None:
    result = evaluate_bag(settings.data, estimator, settings.out / "configs" / row.config.name, settings.evaluation,
                          progress=settings.progress)
    row.metrics = {m: float(result.summary["metrics"][m]) for m in METRIC_NAMES}  # type: ignore[index]
    row.frames = int(result.summary["frames"]["received"])  # type: ignore[index]
    from depth_attn.evaluation.embeddings import embed_frames

    row.embeddings = embed_frames(estimator, study_frames(settings))
    row.entropy = entropy_of(row.embeddings, settings.entropy_dims, settings.knn_k)


def _time_all(rows: Sequence[StudyRow], estimators: Dict[Tuple[str, str], object], settings: StudySettings,
              frames: List[np.ndarray]) -> None:
    """Every (configuration, backend) in one interleaved loop per kind (network alone, whole estimate)."""
    from depth_attn.inference.timing import measure_interleaved

    sync = "cuda" if settings.device.startswith("cuda") or "tensorrt" in settings.backends else "cpu"
    if sync == "cuda":
        import torch

        sync = settings.device if settings.device.startswith("cuda") and torch.cuda.is_available() else "cpu"
    calls = {}
    for (name, backend), estimator in estimators.items():
        view = estimator.view_for(estimator.config.intrinsics, (frames[0].shape[1], frames[0].shape[0]))
        batch = estimator.preprocess(frames[0], view)
        calls[f"network|{name}|{backend}"] = lambda e=estimator, b=batch: e.backend.run(b)
        calls[f"end_to_end|{name}|{backend}"] = lambda e=estimator, it=itertools.cycle(frames): e.estimate(next(it))
    # one loop for both kinds, so that the network alone and the whole estimate see the same load
    stats = measure_interleaved(calls, settings.runs, settings.warmup, sync,
                                progress="latency" if settings.progress else None)
    by_name = {r.config.name: r for r in rows}
    for key, value in stats.items():
        kind, name, backend = key.split("|")
        by_name[name].latency.setdefault(backend, {})[kind] = value


def mark_fronts(rows: Sequence[StudyRow], backends: Sequence[str]) -> None:
    for backend in backends:
        evaluated = [r for r in rows if r.evaluated]
        for metric in ("rmse", "abs_rel"):
            mask = frontier_mask([r.p50(backend) for r in evaluated], [r.metrics[metric] for r in evaluated])
            for row, on_front in zip(evaluated, mask, strict=True):
                row.pareto[(backend, metric)] = on_front


def run_study(settings: StudySettings, log: Callable[[str], None] = print) -> StudyResult:
    from tqdm import tqdm

    from depth_attn.evaluation.study_report import write_report

    start = time.perf_counter()
    if settings.runs < 1 or settings.warmup < 0:
        raise ValueError("--runs must be >= 1 and --warmup >= 0")
    if not heldout.is_frame_folder(settings.data) and not Path(settings.data).exists():
        raise FileNotFoundError(f"--data {settings.data} is neither a held-out frame folder nor a bag")
    settings.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    rows = choose_rows(settings)
    zoo = count_zoo(settings, rows)
    estimators: Dict[Tuple[str, str], object] = {}
    accuracy_backend = settings.backends[0]
    for row in tqdm([r for r in rows if r.trained], desc="accuracy + embeddings", unit="config",
                    disable=not settings.progress):
        try:
            estimator = make_estimator(row.config, row.weights, accuracy_backend, settings)
            _evaluate(row, estimator, settings)
            estimators[(row.config.name, accuracy_backend)] = estimator
        except Exception as exc:  # noqa: BLE001  one configuration that cannot run must not end the study
            row.errors["accuracy"] = f"{type(exc).__name__}: {exc}"
            log(f"study: {row.config.name}: accuracy not measured: {exc}")
    for row in tqdm(rows, desc="building backends", unit="config", disable=not settings.progress):
        for backend in settings.backends:
            if (row.config.name, backend) in estimators or (row.trained and "accuracy" in row.errors):
                continue
            try:
                estimators[(row.config.name, backend)] = make_estimator(row.config, row.weights, backend, settings)
            except Exception as exc:  # noqa: BLE001  e.g. TensorRT on a machine without it
                row.errors[backend] = f"{type(exc).__name__}: {exc}"
                log(f"study: {row.config.name} on {backend}: not timed: {exc}")
    frames = list(study_frames(settings, limit=max(1, min(settings.runs, 20))))
    if not frames:
        raise ValueError(f"{settings.data} has no frame with ground truth")
    if estimators:
        _time_all(rows, estimators, settings, frames)
    mark_fronts(rows, settings.backends)
    result = StudyResult(settings, rows, zoo, reference_gmacs(), machine, time.perf_counter() - start)
    write_csvs(result)
    write_report(result)
    return result


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if not np.isfinite(value) else f"{value:.10g}"
    return value


def _write(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[_cell(v) for v in row] for row in rows])


def write_csvs(result: StudyResult) -> None:
    out = result.settings.out
    _write(out / "zoo.csv", ("config", "input", "params", "gmacs", "weights"),
           [(z["config"].name, "x".join(map(str, z["input_hw"])), z["params"], z["gmacs"], z["weights"])  # type: ignore
            for z in result.zoo])
    _write(out / "accuracy.csv", ("config", "weights", "frames", *METRIC_NAMES),
           [(r.config.name, r.weights, r.frames, *(r.metrics[m] for m in METRIC_NAMES))
            for r in result.rows if r.evaluated])
    latency = []
    for r in result.rows:
        for backend, kinds in r.latency.items():
            for kind, s in kinds.items():
                latency.append((r.config.name, "yes" if r.trained else "no", backend, kind, s.runs,  # type: ignore
                                s.p50_ms, s.p90_ms, s.mean_ms))  # type: ignore[attr-defined]
    _write(out / "latency.csv", ("config", "trained", "backend", "kind", "runs", "p50_ms", "p90_ms", "mean_ms"),
           latency)
    keys = ("n", "d", "gaussian_full", "knn_full", "dims", "gaussian", "knn")
    _write(out / "entropy.csv", ("config", *keys, "abs_rel", "rmse"),
           [(r.config.name, *(r.entropy.get(k, "") for k in keys), r.metrics["abs_rel"], r.metrics["rmse"])
            for r in result.rows if r.evaluated])
    if any(r.embeddings is not None for r in result.rows):
        np.savez_compressed(out / "embeddings.npz", **{r.config.name: r.embeddings for r in result.rows
                                                        if r.embeddings is not None})


def command_line() -> str:
    return " ".join(["depth-attn", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("depth-attn") else ""
