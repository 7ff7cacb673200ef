"""report.md of a study run: what was run where, the zoo, latency, accuracy, the Pareto fronts, the
embedding entropy and the claims, with the figures and CSVs beside it."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

from depth_attn.evaluation.study import StudyResult
from depth_attn.metrics import METRIC_NAMES


def _num(value: object, fmt: str) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    return format(v, fmt) if np.isfinite(v) else "-"


def _header(result: StudyResult) -> List[str]:
    s, m = result.settings, result.machine
    ev = s.evaluation
    frames = max((r.frames for r in result.rows), default=0)
    return [
        f"# The efficient-attention study on `{Path(s.data).name}` ({s.dataset})",
        "",
        f"- command: `{s.command or 'run_study(...)'}`",
        f"- date: {m['date_utc']}; run took {result.duration_s / 60:.1f} min",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}, torch {m['torch']} "
        f"({m['torch_threads']} threads); load average at the start (1/5/15 min): {m['load_average']}",
        f"- data: `{s.data}`, {frames} frames with ground truth; evaluated region: crop {ev.crop}, ground truth in "
        f"({ev.min_depth:g}, {ev.max_depth:g}) m",
        f"- backends: {', '.join(s.backends)} on {s.device}; accuracy and embeddings with {s.backends[0]}; "
        f"latency: {s.runs} runs after {s.warmup} warm-up per configuration and backend, all interleaved "
        "round-robin in one loop (network alone: `backend.run` on a preprocessed frame; whole estimate: "
        "pre-processing, network, post-processing on the evaluated frames in turn)",
        "- the numbers come from the code of `depth-attn eval` (accuracy, per-configuration files in `configs/`), "
        "`depth-attn bench` (latency) and `depth-attn zoo` (counts); CSVs: `zoo.csv`, `latency.csv`, "
        "`accuracy.csv`, `entropy.csv`, embeddings in `embeddings.npz`",
        "",
    ]


def _zoo(result: StudyResult) -> List[str]:
    lines = ["## The zoo", "", f"{len(result.zoo)} configurations, counted at the study's {result.settings.dataset} "
             "input sizes (multiply-accumulates of convolutions and matrix products, as the study counts).", "",
             "![zoo](zoo.png)", "", "| config | input | params (M) | GMACs | weights |",
             "| --- | --- | ---: | ---: | --- |"]
    for z in result.zoo:
        h, w = z["input_hw"]  # type: ignore[misc]
        lines.append(f"| {z['config'].name} | {h}x{w} | {z['params'] / 1e6:.3f} | {z['gmacs']:.3f} | "  # type: ignore
                     f"{z['weights']} |")
    return lines + [""]


def _latency(result: StudyResult) -> List[str]:
    lines = ["## Latency", "", "![latency](latency.png)", "",
             "| config | trained | backend | network p50 (ms) | p90 | whole p50 (ms) | p90 "
             "| network speed-up vs base |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in result.rows:
        base = result.row(f"{r.config.network}-{r.config.size}-base-full")
        for backend in result.settings.backends:
            if backend not in r.latency:
                continue
            net, whole = r.latency[backend]["network"], r.latency[backend]["end_to_end"]
            ratio = base.p50(backend, "network") / r.p50(backend, "network") if base else float("nan")
            lines.append(f"| {r.config.name} | {'yes' if r.trained else 'no'} | {backend} | {net.p50_ms:.1f} | "  # type: ignore
                         f"{net.p90_ms:.1f} | {whole.p50_ms:.1f} | {whole.p90_ms:.1f} | {_num(ratio, '.2f')} |")  # type: ignore
    return lines + [""]


def _accuracy(result: StudyResult) -> List[str]:
    rows = [r for r in result.rows if r.evaluated]
    lines = ["## Accuracy", ""]
    if not rows:
        return lines + ["No configuration with weights was evaluated.", ""]
    lines += ["| config | weights | frames | " + " | ".join(METRIC_NAMES) + " |",
              "| --- | --- | ---: | " + " | ".join("---:" for _ in METRIC_NAMES) + " |"]
    for r in rows:
        lines.append(f"| {r.config.name} | {r.weights} | {r.frames} | "
                     + " | ".join(_num(r.metrics[m], ".4f") for m in METRIC_NAMES) + " |")
    return lines + [""]


def _pareto(result: StudyResult) -> List[str]:
    lines = ["## Pareto fronts", "", "RMSE and abs_rel against the whole estimate's p50 latency, per backend; trained "
             "configurations are points, untrained ones (timed only) crosses on the latency axis.", "",
             "![pareto](pareto.png)", ""]
    for backend in result.settings.backends:
        for metric in ("rmse", "abs_rel"):
            front = sorted((r for r in result.rows if r.pareto.get((backend, metric))), key=lambda r: r.p50(backend))
            if front:
                lines.append(f"- {backend}, {metric}: " + ", ".join(
                    f"{r.config.name} ({r.p50(backend):.1f} ms, {r.metrics[metric]:.4f})" for r in front))
    return lines + [""]


def _entropy(result: StudyResult) -> List[str]:
    from depth_attn.evaluation.study_claims import spearman

    s = result.settings
    rows = [r for r in result.rows if r.evaluated]
    lines = ["## Embedding entropy", "",
             "Each frame's embedding: the last encoder stage's features, global-average-pooled (one C-vector per "
             "frame), from the PyTorch network fed the frame as `estimate` prepares it. Over the frames, the Gaussian "
             "entropy H = 1/2 (d ln(2 pi e) + ln det Sigma) and the Kozachenko-Leonenko estimator (k = "
             f"{s.knn_k}), in nats (`depth_attn.evaluation.entropy`). No regularisation is added to any covariance: "
             "where the frames are no more than the dimensions (n <= d) or the covariance is singular, the full-"
             f"dimensional value is not measurable and says why. The comparable values are taken on the embeddings' "
             f"{s.entropy_dims} leading principal components (each configuration's own; a rotation keeps entropy, "
             "the weaker directions are dropped), which n > d allows on a small test set.", "",
             "![embeddings](embeddings.png)", "", "![entropy](entropy.png)", ""]
    if not rows:
        return lines + ["No configuration with weights was evaluated.", ""]
    lines += [f"| config | n | d | Gaussian, d dims | k-NN, d dims | Gaussian, {s.entropy_dims} PCs | k-NN, "
              f"{s.entropy_dims} PCs | abs_rel | RMSE |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    notes = set()
    for r in rows:
        e = r.entropy
        lines.append(f"| {r.config.name} | {e.get('n')} | {e.get('d')} | {_num(e.get('gaussian_full'), '.2f')} | "
                     f"{_num(e.get('knn_full'), '.2f')} | {_num(e.get('gaussian'), '.2f')} | "
                     f"{_num(e.get('knn'), '.2f')} | {r.metrics['abs_rel']:.4f} | {r.metrics['rmse']:.3f} |")
        notes.update(str(v) for k, v in e.items() if k.endswith("_why"))
    lines.append("")
    for estimator in ("gaussian", "knn"):
        usable = [r for r in rows if np.isfinite(r.entropy.get(estimator, np.nan))]
        for metric in ("abs_rel", "rmse"):
            rho = spearman([r.entropy[estimator] for r in usable], [r.metrics[metric] for r in usable])  # type: ignore
            text = f"{rho[0]:+.2f} (p = {rho[1]:.2f})" if rho else "not measurable (fewer than 3 configurations)"
            lines.append(f"- Spearman rank correlation, {estimator} entropy vs {metric}, {len(usable)} "
                         f"configurations: {text}")
    if notes:
        lines += ["", "Not measurable: " + "; ".join(sorted(notes))]
    return lines + [""]


def _claims(result: StudyResult) -> List[str]:
    from depth_attn.evaluation.study_claims import check_claims

    lines = ["## The study's claims, checked", "", "| claim | verdict | figures | plot |", "| --- | --- | --- | --- |"]
    for c in check_claims(result):
        figure = f"[{c.figure}]({c.figure})" if c.figure else ""
        lines.append(f"| {c.claim} | **{c.verdict}** | {c.evidence} | {figure} |")
    return lines + [""]


def _errors(result: StudyResult) -> List[str]:
    lines = []
    for r in result.rows:
        for what, why in r.errors.items():
            lines.append(f"- {r.config.name}, {what}: {why}")
        if not r.trained:
            lines.append(f"- {r.config.name}: {r.status}; timed only")
    return (["## Not measured", "", *lines, ""]) if lines else []


def write_report(result: StudyResult) -> Path:
    from depth_attn.evaluation.study_figures import write_figures

    write_figures(result)
    text = _header(result) + _zoo(result) + _latency(result) + _accuracy(result) + _pareto(result) \
        + _entropy(result) + _claims(result) + _errors(result)
    path = result.settings.out / "report.md"
    path.write_text("\n".join(text))
    return path
