"""The study's trade-off report on a user's bag: offline evaluation over model configurations,
``sweep.csv``, ``pareto.png`` (RMSE against p50 latency, the frontier drawn) and ``pareto.md``.

Configurations without trained weights on this machine are timed only (same frames, same input
size) and marked untrained; they appear on the latency axis but never on the frontier."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from depth_attn.data import heldout
from depth_attn.evaluation.offline import EvalSettings, evaluate_bag
from depth_attn.evaluation.records import percentiles
from depth_attn.models.registry import ModelConfig, list_configs

SWEEP_COLUMNS = ("config", "network", "size", "variant", "placement", "trained", "weights", "status", "frames",
                 "abs_rel", "rmse", "delta1", "latency_p50_ms", "latency_p90_ms", "network_p50_ms", "pareto")


@dataclass
class SweepRow:
    config: ModelConfig
    trained: bool
    weights: str
    status: str = "ok"
    frames: int = 0
    abs_rel: float = float("nan")
    rmse: float = float("nan")
    delta1: float = float("nan")
    latency_p50_ms: float = float("nan")
    latency_p90_ms: float = float("nan")
    network_p50_ms: float = float("nan")
    pareto: bool = False
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        c = self.config
        return f"{c.network}/{c.size}/{c.variant}/{c.placement}"

    def as_dict(self) -> Dict[str, object]:
        c = self.config
        return {"config": c.name, "network": c.network, "size": c.size, "variant": c.variant,
                "placement": c.placement, "trained": self.trained, "weights": self.weights, "status": self.status,
                "frames": self.frames, "abs_rel": self.abs_rel, "rmse": self.rmse, "delta1": self.delta1,
                "latency_p50_ms": self.latency_p50_ms, "latency_p90_ms": self.latency_p90_ms,
                "network_p50_ms": self.network_p50_ms, "pareto": self.pareto}


def parse_configs(spec: str) -> List[ModelConfig]:
    """'all' (every configuration of the registry), a file with one name per line (# comments), or
    comma-separated names such as 'meter-tiny-base,meter-tiny-pyra'."""
    spec = spec.strip()
    if spec == "all":
        return list_configs()
    path = Path(spec)
    if path.is_file():
        names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    elif "," in spec or spec.count("-") >= 2:
        names = spec.split(",")
    else:
        raise FileNotFoundError(f"--configs: {spec!r} is neither 'all', a file, nor config names")
    configs = [ModelConfig.parse(n) for n in names if n.strip()]
    if not configs:
        raise ValueError(f"--configs {spec!r} names no configuration")
    return configs


def trained_weights(config: ModelConfig, dataset: str = "kitti") -> Tuple[Optional[str], str]:
    """(checkpoint name, why) for a configuration: the checkpoint on this machine that covers it
    (network, size, variant, placement), as ``weights: auto`` picks it; untrained configurations are
    timed only."""
    from depth_attn import weights

    found = weights.available_for(config.network, config.size, config.variant, config.placement, dataset)
    if found:
        return found[0].name, "trained"
    known = [i for i in weights.known_checkpoints().values()
             if (i.network, i.size, i.dataset) == (config.network, config.size, dataset)]
    if not known:
        return None, f"untrained (no {dataset} checkpoint for {config.network}/{config.size})"
    if any(i.covers == (config.network, config.size, config.variant, config.placement) for i in known):
        return None, "untrained (its checkpoint is not on this machine)"
    return None, f"untrained (no checkpoint covers {config.variant} attention; depth-attn train makes one)"


def _estimator(config: ModelConfig, weights_name: Optional[str], backend: str, input_hw, device: str):
    from depth_attn.inference import DepthEstimator, EstimatorConfig

    return DepthEstimator(EstimatorConfig(model=config, weights=weights_name, backend=backend, device=device,
                                          input_hw=input_hw))


def time_only(estimator, bag: Path, settings: EvalSettings, min_runs: int = 10) -> Dict[str, object]:
    """Latency on the frames an evaluation would use (those with ground truth, up to max_frames),
    cycled until at least ``min_runs`` timed runs, after ``settings.warmup`` untimed ones."""
    images = []
    for frame in heldout.iter_frames(bag, settings.image_topic, settings.gt_topic):
        if frame.gt is not None:
            images.append(frame.rgb)
        if settings.max_frames and len(images) >= settings.max_frames:
            break
    if not images:
        raise ValueError(f"{bag} has no frames with ground truth on {settings.gt_topic}")
    for _ in range(settings.warmup):
        estimator.estimate(images[0])
    latencies: List[float] = []
    network: List[float] = []
    runs = max(min_runs, len(images))
    for i in range(runs):
        t0 = time.perf_counter()
        estimator.estimate(images[i % len(images)])
        latencies.append((time.perf_counter() - t0) * 1e3)
        network.append(estimator.last_timing.network_ms)
    return {"frames": len(images), "runs": runs, "latency": percentiles(latencies), "network": percentiles(network)}


def run_sweep(
    bag: Path,
    configs: Sequence[ModelConfig],
    out_dir: Path,
    settings: Optional[EvalSettings] = None,
    dataset: str = "kitti",
    backend: str = "torch",
    device: str = "cpu",
    input_hw: Optional[Tuple[int, int]] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    timing_runs: int = 10,
) -> List[SweepRow]:
    from tqdm import tqdm

    settings = settings or EvalSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: List[SweepRow] = []
    csv_path = out_dir / "sweep.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS)
        writer.writeheader()
        for config in tqdm(configs, desc="sweep", unit="config", disable=not progress):
            weights_name, why = trained_weights(config, dataset)
            row = SweepRow(config, trained=weights_name is not None, weights=weights_name or "-", status=why)
            try:
                estimator = _estimator(config, weights_name, backend, input_hw, device)
                if weights_name:
                    result = evaluate_bag(bag, estimator, out_dir / "configs" / config.name, settings, progress=False)
                    s = result.summary
                    row.abs_rel = s["metrics"]["abs_rel"]  # type: ignore[index]
                    row.rmse = s["metrics"]["rmse"]  # type: ignore[index]
                    row.delta1 = s["metrics"]["delta1"]  # type: ignore[index]
                # every configuration is timed the same way, trained or not
                timed = time_only(estimator, bag, settings, min_runs=timing_runs)
                row.frames = int(timed["frames"])  # type: ignore[arg-type]
                latency, network = timed["latency"], timed["network"]
                row.latency_p50_ms = latency["p50"]  # type: ignore[index]
                row.latency_p90_ms = latency["p90"]  # type: ignore[index]
                row.network_p50_ms = network["p50"]  # type: ignore[index]
            except Exception as exc:  # noqa: BLE001  one configuration that cannot run must not end the sweep
                row.status = f"error: {exc}"
                log(f"sweep: {config.name}: {exc}")
            rows.append(row)
            writer.writerow({k: _cell(v) for k, v in row.as_dict().items()})
            f.flush()
    mark_frontier(rows)
    # rewrite with the frontier column filled in (rows were flushed as they came, for interrupted runs)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.as_dict().items()})
    plot_pareto(rows, out_dir / "pareto.png", title=f"accuracy vs latency on {Path(bag).name}")
    (out_dir / "pareto.md").write_text(pareto_markdown(rows, bag, backend, device, input_hw))
    return rows


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if not np.isfinite(value) else f"{value:.6g}"
    return value


def frontier_mask(latency: Sequence[float], error: Sequence[float]) -> List[bool]:
    """For each point, whether no other point is both at least as fast and strictly more accurate
    (lower ``error``); points with a non-finite value are never on the frontier."""
    order = sorted((i for i in range(len(latency)) if np.isfinite(latency[i]) and np.isfinite(error[i])),
                   key=lambda i: (latency[i], error[i]))
    mask, best = [False] * len(latency), float("inf")
    for i in order:
        if error[i] < best:
            mask[i], best = True, error[i]
    return mask


def mark_frontier(rows: Sequence[SweepRow]) -> List[SweepRow]:
    """Trained configurations that no other is both faster (p50) and more accurate (RMSE) than."""
    trained = [r for r in rows if r.trained]
    mask = frontier_mask([r.latency_p50_ms for r in trained], [r.rmse for r in trained])
    for row in rows:
        row.pareto = False
    for row, on_front in zip(trained, mask, strict=True):
        row.pareto = on_front
    return sorted((r for r in trained if r.pareto), key=lambda r: r.latency_p50_ms)


def plot_pareto(rows: Sequence[SweepRow], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in rows if r.trained and np.isfinite(r.rmse)]
    timed = [r for r in rows if not r.trained and np.isfinite(r.latency_p50_ms)]
    if timed:
        fig, (ax, strip) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    else:
        fig, ax = plt.subplots(figsize=(9, 6))
        strip = None
    for r in trained:
        ax.scatter(r.latency_p50_ms, r.rmse, s=50, color="tab:red" if r.pareto else "tab:blue", zorder=3)
        ax.annotate(r.label, (r.latency_p50_ms, r.rmse), textcoords="offset points", xytext=(5, 5), fontsize=8)
    frontier = sorted((r for r in trained if r.pareto), key=lambda r: r.latency_p50_ms)
    if frontier:
        ax.step([r.latency_p50_ms for r in frontier], [r.rmse for r in frontier], where="post", color="tab:red",
                label="Pareto frontier", zorder=2)
        ax.legend(loc="upper right", fontsize=8)
    if strip is not None:
        # untrained: no accuracy, so they sit on a latency-only strip under the plot
        strip.scatter([r.latency_p50_ms for r in timed], [0.0] * len(timed), marker="x", color="grey")
        for k, r in enumerate(timed):
            strip.annotate(r.label, (r.latency_p50_ms, 0.0), textcoords="offset points", xytext=(3, 4 + 8 * (k % 3)),
                           fontsize=7, color="grey")
        strip.set_yticks([])
        strip.set_ylabel("untrained\n(timed only)", fontsize=8)
        strip.grid(alpha=0.3, axis="x")
        strip.set_xlabel("p50 latency per frame (ms)")
    if strip is None:
        ax.set_xlabel("p50 latency per frame (ms)")
    ax.set_ylabel("RMSE (m)")
    ax.grid(alpha=0.3)
    ax.set_title(title or "accuracy vs latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def pareto_markdown(rows: Sequence[SweepRow], bag: Path, backend: str, device: str, input_hw) -> str:
    def num(v: float, fmt: str) -> str:
        return format(v, fmt) if np.isfinite(v) else "-"

    lines = [
        f"# Accuracy / latency sweep on `{Path(bag).name}`",
        "",
        f"Backend {backend} on {device}; network input {input_hw[0]}x{input_hw[1]}" if input_hw
        else f"Backend {backend} on {device}; each checkpoint's own input size",
        "Latency: one frame through DepthEstimator (pre-processing, network, post-processing), p50 over at least "
        "10 timed runs on the evaluated frames, after a warm-up run.",
        "Untrained configurations are timed only (no accuracy); * marks the Pareto frontier (RMSE vs p50 latency).",
        "",
        "| config | trained | frames | abs_rel | RMSE (m) | delta1 | p50 latency (ms) | p90 (ms) | network p50 (ms) "
        "| frontier |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(rows, key=lambda r: (not np.isfinite(r.latency_p50_ms), r.latency_p50_ms)):
        trained = r.status if r.status.startswith("error") or not r.trained else "yes"
        lines.append(
            f"| {r.label} | {trained} | {r.frames} | {num(r.abs_rel, '.4f')} | "
            f"{num(r.rmse, '.3f')} | {num(r.delta1, '.4f')} | {num(r.latency_p50_ms, '.1f')} | "
            f"{num(r.latency_p90_ms, '.1f')} | {num(r.network_p50_ms, '.1f')} | {'*' if r.pareto else ''} |"
        )
    return "\n".join(lines) + "\n"
