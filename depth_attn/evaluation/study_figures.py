"""The study report's figures (PNG): the zoo's counts, latency per backend, the Pareto fronts, the
embedding distributions and entropy against accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from depth_attn.evaluation.study import StudyResult, StudyRow

VARIANT_COLOURS = {"base": "tab:grey", "meta": "tab:blue", "pyra": "tab:green", "moh": "tab:red"}
BACKEND_MARKERS = ["o", "s", "^", "D", "v"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def label(row: StudyRow, rows: Sequence[StudyRow]) -> str:
    """variant/placement, with the network and size where the rows mix them."""
    c = row.config
    short = f"{c.variant}/{c.placement}"
    if len({(r.config.network, r.config.size) for r in rows}) > 1:
        return f"{c.network}-{c.size} {short}"
    return short


def plot_zoo(result: StudyResult, path: Path) -> Path:
    plt = _plt()
    zoo = result.zoo
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.22 * len(zoo) + 2), 7), sharex=True)
    x = np.arange(len(zoo))
    colours = [VARIANT_COLOURS[z["config"].variant] for z in zoo]  # type: ignore[attr-defined]
    axes[0].bar(x, [z["params"] / 1e6 for z in zoo], color=colours)  # type: ignore[operator]
    axes[1].bar(x, [z["gmacs"] for z in zoo], color=colours)
    for ax, name in zip(axes, ("parameters (M)", "GMACs at the study's input"), strict=True):
        ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, axis="y")
    axes[1].set_xticks(x)
    axes[1].set_xticklabels([z["config"].name.replace("-full", "") for z in zoo], rotation=90,  # type: ignore
                            fontsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VARIANT_COLOURS.values()]
    axes[0].legend(handles, list(VARIANT_COLOURS), fontsize=8, ncol=4, loc="upper left")
    axes[0].set_title(f"the zoo: {len(zoo)} configurations ({result.settings.dataset} input sizes)")
    return _save(fig, path)


def plot_latency(result: StudyResult, path: Path) -> Path:
    plt = _plt()
    rows = [r for r in result.rows if r.latency]
    backends = list(result.settings.backends)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(1, len(rows)) * len(backends)))
    height = 0.8 / max(1, len(backends))
    for b, backend in enumerate(backends):
        for i, r in enumerate(rows):
            stats = r.latency.get(backend, {}).get("network")
            if stats is None:
                continue
            y = i + b * height
            ax.barh(y, stats.p50_ms, height, color=VARIANT_COLOURS[r.config.variant],  # type: ignore[attr-defined]
                    hatch=None if r.trained else "//", alpha=1.0 - 0.35 * b, edgecolor="black", linewidth=0.3)
            ax.plot([stats.p50_ms, stats.p90_ms], [y, y], color="black", linewidth=1)  # type: ignore[attr-defined]
            ax.text(stats.p90_ms, y, f" {backend} {stats.p50_ms:.1f}", va="center", fontsize=7)  # type: ignore
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    ax.set_yticklabels([label(r, rows) + ("" if r.trained else " (untrained)") for r in rows], fontsize=8)
    ax.set_xlabel("network p50 latency, ms (line to p90; hatched: untrained, timed only)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("latency, all configurations and backends interleaved in one run")
    return _save(fig, path)


def plot_pareto(result: StudyResult, path: Path) -> Path:
    plt = _plt()
    rows = result.rows
    backends = list(result.settings.backends)
    timed = [r for r in rows if not r.evaluated and r.latency]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, metric, unit in ((axes[0], "rmse", "RMSE (m)"), (axes[1], "abs_rel", "abs_rel")):
        for b, backend in enumerate(backends):
            marker = BACKEND_MARKERS[b % len(BACKEND_MARKERS)]
            points = [r for r in rows if r.evaluated and np.isfinite(r.p50(backend))]
            for r in points:
                ax.scatter(r.p50(backend), r.metrics[metric], marker=marker, s=55, zorder=3,
                           color=VARIANT_COLOURS[r.config.variant], edgecolor="black" if r.pareto.get(
                               (backend, metric)) else "none")
                ax.annotate(f"{label(r, rows)} ({backend})", (r.p50(backend), r.metrics[metric]),
                            textcoords="offset points", xytext=(5, 4), fontsize=7)
            front = sorted((r for r in points if r.pareto.get((backend, metric))), key=lambda r: r.p50(backend))
            if front:
                ax.step([r.p50(backend) for r in front], [r.metrics[metric] for r in front], where="post",
                        color="black", alpha=0.6, linewidth=1, label=f"Pareto front, {backend}")
        if timed:
            low = ax.get_ylim()[0]
            for b, backend in enumerate(backends):
                xs = [r.p50(backend) for r in timed if np.isfinite(r.p50(backend))]
                ax.scatter(xs, [low] * len(xs), marker="x", color="grey", zorder=3,
                           label="untrained, timed only (no accuracy)" if b == 0 else None)
                for k, r in enumerate(t for t in timed if np.isfinite(t.p50(backend))):
                    ax.annotate(label(r, rows), (r.p50(backend), low), textcoords="offset points",
                                xytext=(3, 4 + 8 * (k % 3)), fontsize=6, color="grey")
        ax.set_xlabel("p50 latency per frame, whole estimate (ms)")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right")
        ax.set_title(f"{unit} against latency")
    fig.suptitle("colour = variant, marker = backend, outlined = on the front", fontsize=9)
    return _save(fig, path)


def plot_embeddings(result: StudyResult, path: Path) -> Path:
    """Per configuration, the frames' embeddings on their first two principal components; and the
    spread of every principal direction (the covariance spectrum), which the entropies sum up."""
    plt = _plt()
    rows = [r for r in result.rows if r.embeddings is not None and len(r.embeddings) > 1]
    fig, axes = plt.subplots(1, len(rows) + 1, figsize=(3.2 * (len(rows) + 1), 3.4), squeeze=False)
    spectra: Dict[str, np.ndarray] = {}
    for ax, r in zip(axes[0][:-1], rows, strict=True):
        x = r.embeddings - r.embeddings.mean(axis=0)  # type: ignore[operator]
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        proj = x @ vt[:2].T
        ax.scatter(proj[:, 0], proj[:, 1] if proj.shape[1] > 1 else np.zeros(len(proj)), s=8,
                   color=VARIANT_COLOURS[r.config.variant])
        ax.set_title(label(r, rows), fontsize=9)
        ax.set_xlabel("PC 1", fontsize=8)
        ax.set_ylabel("PC 2", fontsize=8)
        ax.tick_params(labelsize=7)
        spectra[label(r, rows)] = (s / np.sqrt(max(len(x) - 1, 1)))[: max(len(x) - 1, 1)]  # rank <= n - 1
    ax = axes[0][-1]
    for name, spread in spectra.items():
        ax.semilogy(np.arange(1, len(spread) + 1), spread, label=name)
    if spectra:
        ax.axvline(result.settings.entropy_dims, color="black", linestyle=":", linewidth=1)
        ax.legend(fontsize=7)
    ax.set_xlabel("principal direction", fontsize=8)
    ax.set_ylabel("standard deviation", fontsize=8)
    ax.set_title(f"spread per direction ({result.settings.entropy_dims} kept)", fontsize=9)
    return _save(fig, path)


def plot_entropy(result: StudyResult, path: Path) -> Path:
    plt = _plt()
    rows = [r for r in result.rows if r.evaluated]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, estimator, title in ((axes[0], "gaussian", "Gaussian"), (axes[1], "knn", "Kozachenko-Leonenko k-NN")):
        usable = [r for r in rows if np.isfinite(r.entropy.get(estimator, np.nan))]
        for r in usable:
            ax.scatter(r.entropy[estimator], r.metrics["abs_rel"], color=VARIANT_COLOURS[r.config.variant], s=50)
            ax.annotate(label(r, rows), (r.entropy[estimator], r.metrics["abs_rel"]), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)
        ax.set_xlabel(f"{title} entropy of the embeddings (nats, {result.settings.entropy_dims} principal dims)")
        ax.set_ylabel("abs_rel")
        ax.grid(alpha=0.3)
        ax.set_title(title if usable else f"{title}: not measurable", fontsize=10)
    return _save(fig, path)


def write_figures(result: StudyResult) -> List[Path]:
    out = result.settings.out
    return [plot_zoo(result, out / "zoo.png"), plot_latency(result, out / "latency.png"),
            plot_pareto(result, out / "pareto.png"), plot_embeddings(result, out / "embeddings.png"),
            plot_entropy(result, out / "entropy.png")]
