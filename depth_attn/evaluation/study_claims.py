"""The study's claims (``specs/attention-variants.md``, "Findings to reproduce" and the counts
measured with its code), each checked against what one ``run_study`` measured: holds, does not
hold, or not measurable here, with the figures behind the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from depth_attn.evaluation.study import StudyResult, StudyRow

HOLDS, FAILS, UNMEASURABLE = "holds", "does not hold", "not measurable here"
SWIN_NETWORKS = ("pixelformer", "newcrfs")
# The spec's METER counts at 192x256 (base and meta, XXS / XS / S).
SPEC_METER_GMACS = {"meter-tiny-base-full": 0.223, "meter-base-base-full": 0.629, "meter-large-base-full": 1.116,
                    "meter-tiny-meta-full": 0.204, "meter-base-meta-full": 0.606, "meter-large-meta-full": 1.086}


@dataclass
class Claim:
    claim: str
    verdict: str
    evidence: str
    figure: Optional[str] = None


def _verdict(results: Sequence[bool]) -> str:
    if not results:
        return UNMEASURABLE
    return HOLDS if all(results) else FAILS


def _groups(rows: Sequence[StudyRow]) -> Dict[Tuple[str, str], Dict[str, StudyRow]]:
    """(network, size) -> {"variant/placement": row}."""
    out: Dict[Tuple[str, str], Dict[str, StudyRow]] = {}
    for r in rows:
        out.setdefault((r.config.network, r.config.size), {})[f"{r.config.variant}/{r.config.placement}"] = r
    return out


def _zoo_groups(result: StudyResult) -> Dict[Tuple[str, str], Dict[str, Dict[str, object]]]:
    out: Dict[Tuple[str, str], Dict[str, Dict[str, object]]] = {}
    for z in result.zoo:
        c = z["config"]
        out.setdefault((c.network, c.size), {})[f"{c.variant}/{c.placement}"] = z  # type: ignore[attr-defined]
    return out


def _speedups(result: StudyResult, backend: str) -> Dict[Tuple[str, str], Dict[str, float]]:
    """base network p50 / variant network p50 per timed (network, size) group."""
    out = {}
    for key, group in _groups(result.rows).items():
        base = group.get("base/full")
        if base is None or not np.isfinite(base.p50(backend, "network")):
            continue
        ratios = {name: base.p50(backend, "network") / r.p50(backend, "network") for name, r in group.items()
                  if name != "base/full" and np.isfinite(r.p50(backend, "network"))}
        if ratios:
            out[key] = ratios
    return out


def _fmt_ratios(ratios: Dict[str, float]) -> str:
    return ", ".join(f"{name} {ratio:.2f}x" for name, ratio in sorted(ratios.items()))


def meta_fastest(result: StudyResult) -> Claim:
    checks, lines = [], []
    for backend in result.settings.backends:
        for (network, size), ratios in _speedups(result, backend).items():
            for placement in ("full", "encoder", "decoder"):
                here = {n: v for n, v in ratios.items() if n.endswith("/" + placement)}
                if f"meta/{placement}" in here and len(here) > 1:
                    fastest = max(here, key=here.get)  # type: ignore[arg-type]
                    checks.append(fastest == f"meta/{placement}")
                    lines.append(f"{backend}, {network}-{size} {placement}: {_fmt_ratios(here)} (speed-up over base)")
    return Claim("Meta gives the largest speed-up", _verdict(checks),
                 "; ".join(lines) or "no timed group holds base, meta and another variant", "latency.png")


def meta_smallest_parameters(result: StudyResult) -> Claim:
    checks, failures = [], []
    for (network, size), group in _zoo_groups(result).items():
        for placement in ("full", "encoder", "decoder"):
            here = {n: int(z["params"]) for n, z in group.items()  # type: ignore[call-overload]
                    if n.endswith("/" + placement) or n == "base/full"}
            if f"meta/{placement}" not in here:
                continue
            smallest = min(here, key=here.get)  # type: ignore[arg-type]
            checks.append(smallest == f"meta/{placement}")
            if not checks[-1]:
                failures.append(f"{network}-{size} {placement}: {smallest} has fewer ({here[smallest]:,} against "
                                f"meta's {here[f'meta/{placement}']:,})")
    tiny = _zoo_groups(result).get(("meter", "tiny"), {})
    example = ", ".join(f"{n} {int(z['params']):,}" for n, z in sorted(tiny.items()))  # type: ignore[call-overload]
    evidence = f"meta has the fewest parameters in {sum(checks)} of {len(checks)} (network, size, placement) groups"
    if failures:
        evidence += "; not in " + "; ".join(failures)
    if example:
        evidence += f". METER-tiny: {example}"
    return Claim("Meta has the smallest parameter footprint", _verdict(checks), evidence, "zoo.png")


def meta_memory(result: StudyResult) -> Claim:
    return Claim("Meta has the smallest memory footprint", UNMEASURABLE,
                 "run-time memory is not measured: every configuration runs in one process (interleaved timing), "
                 "whose allocator does not tell one network's activations from another's; the weights' memory is "
                 "4 bytes per parameter (the parameter claim above)")


def _accuracy_pairs(result: StudyResult, variant: str) -> List[Tuple[str, StudyRow, StudyRow]]:
    pairs = []
    for (network, size), group in _groups(result.rows).items():
        base = group.get("base/full")
        for name, r in group.items():
            if name.startswith(variant + "/") and base is not None and base.evaluated and r.evaluated:
                pairs.append((f"{network}-{size} {name}", base, r))
    return pairs


def meta_accuracy_cost(result: StudyResult) -> Claim:
    pairs = _accuracy_pairs(result, "meta")
    lines = [f"{label}: abs_rel {r.metrics['abs_rel']:.4f} vs base {b.metrics['abs_rel']:.4f}, RMSE "
             f"{r.metrics['rmse']:.3f} vs {b.metrics['rmse']:.3f} m" for label, b, r in pairs]
    checks = [r.metrics["abs_rel"] > b.metrics["abs_rel"] or r.metrics["rmse"] > b.metrics["rmse"]
              for _, b, r in pairs]
    return Claim("Meta often costs some accuracy", _verdict(checks),
                 "; ".join(lines) or "no trained meta configuration beside its trained base", "pareto.png")


def pyra_balance(result: StudyResult) -> Claim:
    backend = result.settings.backends[0]
    checks, lines = [], []
    for (network, size), group in _groups(result.rows).items():
        base, meta = group.get("base/full"), group.get("meta/full")
        pyra = group.get("pyra/full")
        if not (base and meta and pyra and base.evaluated and meta.evaluated and pyra.evaluated):
            continue
        faster = pyra.p50(backend, "network") < base.p50(backend, "network")
        better = all(pyra.metrics[m] < meta.metrics[m] for m in ("abs_rel", "rmse"))
        front = pyra.pareto.get((backend, "rmse"), False)
        checks.append(faster and (better or front))
        lines.append(f"{network}-{size} ({backend}): pyra network p50 {pyra.p50(backend, 'network'):.1f} ms vs base "
                     f"{base.p50(backend, 'network'):.1f} ms; abs_rel pyra {pyra.metrics['abs_rel']:.4f}, meta "
                     f"{meta.metrics['abs_rel']:.4f}, base {base.metrics['abs_rel']:.4f}; RMSE pyra "
                     f"{pyra.metrics['rmse']:.3f}, meta {meta.metrics['rmse']:.3f}, base {base.metrics['rmse']:.3f}; "
                     f"on the RMSE Pareto front: {'yes' if front else 'no'}")
    return Claim("Pyra balances speed and accuracy (faster than base, more accurate than meta or on the front)",
                 _verdict(checks), "; ".join(lines) or "needs trained base, meta and pyra of one network", "pareto.png")


def moh_little_gain(result: StudyResult) -> Claim:
    checks, lines = [], []
    for backend in result.settings.backends:
        for (network, size), ratios in _speedups(result, backend).items():
            for name, ratio in ratios.items():
                if name.startswith("moh/"):
                    checks.append(ratio < 1.1)
                    lines.append(f"{backend}, {network}-{size} {name}: {ratio:.2f}x")
    return Claim("MoH gains little time (under 10 % over base)", _verdict(checks),
                 "; ".join(lines) or "no timed moh configuration beside its base", "latency.png")


def moh_jetson(result: StudyResult) -> Claim:
    return Claim("MoH suffers most on the Jetson (routing overhead)", UNMEASURABLE,
                 f"no Jetson here ({result.machine['cpu']}); run `depth-attn study --backends tensorrt` on one")


def _swin_rows(result: StudyResult) -> List[StudyRow]:
    return [r for r in result.rows if r.config.network in SWIN_NETWORKS and r.evaluated]


def _placement_pairs(result: StudyResult) -> List[Tuple[str, StudyRow, StudyRow]]:
    groups = _groups(_swin_rows(result))
    return [(f"{n}-{s} {v}", g[f"{v}/decoder"], g[f"{v}/encoder"]) for (n, s), g in groups.items()
            for v in ("meta", "pyra", "moh") if f"{v}/decoder" in g and f"{v}/encoder" in g]


def _no_swin_reason(result: StudyResult,
                    need: str = "with the variant in the encoder and in the decoder") -> str:
    import torch

    gpu = "a CUDA GPU" if torch.cuda.is_available() else "no GPU"
    return (f"needs trained PixelFormer/NeWCRFs networks {need}; none of the 60 Swin configurations has "
            f"{result.settings.dataset} weights on this machine "
            f"({result.machine['cpu']}, {result.machine['cores']} cores, {gpu}): training Swin-T/B/L depth networks "
            "takes GPUs. Their latency and counts are measurable (--timed, the zoo)")


def decoder_over_encoder(result: StudyResult) -> Claim:
    pairs = _placement_pairs(result)
    if not pairs:
        return Claim("Optimising the decoder (not the encoder) keeps or improves accuracy (PixelFormer, NeWCRFs)",
                     UNMEASURABLE, _no_swin_reason(result))
    checks = [d.metrics["abs_rel"] <= e.metrics["abs_rel"] for _, d, e in pairs]
    lines = [f"{label}: decoder abs_rel {d.metrics['abs_rel']:.4f}, encoder {e.metrics['abs_rel']:.4f}"
             for label, d, e in pairs]
    return Claim("Optimising the decoder (not the encoder) keeps or improves accuracy (PixelFormer, NeWCRFs)",
                 _verdict(checks), "; ".join(lines), "pareto.png")


def decoder_concentrates(result: StudyResult) -> Claim:
    pairs = [p for p in _placement_pairs(result) if np.isfinite(p[1].entropy.get("knn", np.nan))
             and np.isfinite(p[2].entropy.get("knn", np.nan))]
    if not pairs:
        return Claim("Optimised decoders give more concentrated embeddings than optimised encoders", UNMEASURABLE,
                     _no_swin_reason(result))
    checks = [d.entropy["knn"] < e.entropy["knn"] for _, d, e in pairs]  # type: ignore[operator]
    lines = [f"{label}: decoder {d.entropy['knn']:.2f}, encoder {e.entropy['knn']:.2f} nats" for label, d, e in pairs]
    return Claim("Optimised decoders give more concentrated embeddings than optimised encoders", _verdict(checks),
                 "; ".join(lines), "entropy.png")


def entropy_tracks_accuracy(result: StudyResult) -> Claim:
    rows = [r for r in result.rows if r.evaluated]
    lines, checks = [], []
    for estimator in ("gaussian", "knn"):
        usable = [r for r in rows if np.isfinite(r.entropy.get(estimator, np.nan))]
        rho = spearman([r.entropy[estimator] for r in usable], [r.metrics["abs_rel"] for r in usable])  # type: ignore
        if rho is None:
            reasons = {str(r.entropy.get(estimator + "_why", "")) for r in rows} - {""}
            lines.append(f"{estimator}: {len(usable)} configurations with an entropy"
                         + (f" ({'; '.join(sorted(reasons))})" if reasons else ""))
            continue
        checks.append(rho[0] > 0)
        lines.append(f"{estimator}: Spearman rho(entropy, abs_rel) = {rho[0]:+.2f} over {len(usable)} configurations "
                     f"(p = {rho[1]:.2f})")
    return Claim("Lower embedding entropy goes with better accuracy (rank correlation entropy vs abs_rel > 0)",
                 _verdict(checks), "; ".join(lines) or "no configuration evaluated", "entropy.png")


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[Tuple[float, float]]:
    """(rho, two-sided p) or None with fewer than 3 points or a constant variable. Up to 8 points
    the p-value is exact (every ordering of y counted), where scipy's t approximation is not."""
    import itertools

    from scipy.stats import rankdata, spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rho = float(spearmanr(x, y).statistic)
    if len(x) > 8:
        return rho, float(spearmanr(x, y).pvalue)
    rx, ry = rankdata(x), rankdata(y)
    rhos = [np.corrcoef(rx, perm)[0, 1] for perm in itertools.permutations(ry)]
    return rho, float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def _gmac_ratio(result: StudyResult, network: str, variant: str, placement: str) -> Dict[str, float]:
    out = {}
    for (net, size), group in _zoo_groups(result).items():
        if net == network and "base/full" in group and f"{variant}/{placement}" in group:
            out[f"{net}-{size}"] = float(group[f"{variant}/{placement}"]["gmacs"]) / float(  # type: ignore[arg-type]
                group["base/full"]["gmacs"])  # type: ignore[arg-type]
    return out


def meta_macs_swin(result: StudyResult) -> Claim:
    cuts = {k: 1 - v for n in SWIN_NETWORKS for k, v in _gmac_ratio(result, n, "meta", "full").items()}
    checks = [0.22 <= c <= 0.36 for c in cuts.values()]
    evidence = ", ".join(f"{k} {100 * c:.1f} %" for k, c in cuts.items()) or "the zoo holds no Swin configuration"
    return Claim("Meta removes about 25-33 % of the multiply-adds of PixelFormer and NeWCRFs", _verdict(checks),
                 f"multiply-adds removed by meta (full): {evidence}", "zoo.png")


def pyra_adds_macs(result: StudyResult) -> Claim:
    ratios = {k: v for n in SWIN_NETWORKS for k, v in _gmac_ratio(result, n, "pyra", "encoder").items()}
    evidence = ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items()) or "the zoo holds no Swin configuration"
    return Claim("Pyra adds multiply-adds inside 7x7 windows (Swin encoder)",
                 _verdict([v > 1 for v in ratios.values()]),
                 f"pyra (encoder) GMACs over base: {evidence}", "zoo.png")


def moh_no_macs(result: StudyResult) -> Claim:
    ratios = {f"{k} {p}": v for n in ("meter", *SWIN_NETWORKS) for p in ("full", "encoder", "decoder")
              for k, v in _gmac_ratio(result, n, "moh", p).items()}
    evidence = f"moh GMACs over base: {min(ratios.values()):.3f}x to {max(ratios.values()):.3f}x over " \
               f"{len(ratios)} configurations" if ratios else "the zoo holds no moh configuration"
    return Claim("MoH saves no multiply-adds", _verdict([v >= 0.995 for v in ratios.values()]), evidence, "zoo.png")


def meter_reference_counts(result: StudyResult) -> Claim:
    measured = result.reference_gmacs
    checks = [abs(measured[k] - v) < 0.0015 for k, v in SPEC_METER_GMACS.items() if k in measured]
    evidence = ", ".join(f"{k.replace('-full', '')} {measured[k]:.3f} (spec {v})" for k, v in SPEC_METER_GMACS.items()
                         if k in measured)
    return Claim("METER GMACs at 192x256: 0.223 / 0.629 / 1.116 base, 0.204 / 0.606 / 1.086 meta", _verdict(checks),
                 evidence)


def meter_edge_speedups(result: StudyResult) -> Claim:
    lines = []
    for backend in result.settings.backends:
        for (network, size), ratios in _speedups(result, backend).items():
            if network != "meter":
                continue
            saved = {n.split("/")[0]: 1 - 1 / r for n, r in ratios.items() if n.split("/")[0] in ("meta", "pyra")}
            if saved:
                lines.append(f"{backend}, meter-{size}: " + ", ".join(f"{v} {100 * s:.1f} % less time"
                                                                       for v, s in sorted(saved.items())))
    evidence = "no edge device here; on this machine (network p50): " + ("; ".join(lines) or "no METER variant timed")
    return Claim("Meta-METER and Pyra-METER are 41.4 % and 34.4 % faster than METER on edge devices", UNMEASURABLE,
                 evidence, "latency.png")


def published_accuracy(result: StudyResult) -> Claim:
    return Claim("Published accuracy (PixelFormer KITTI Eigen AbsRel 0.051 / RMSE 2.081; NeWCRFs 0.052 / 2.072, NYU "
                 "0.0952 / 0.331)", UNMEASURABLE,
                 _no_swin_reason(result, "(base)") + "; nor is the Eigen test split in ../shared")


CHECKS = (meta_fastest, meta_smallest_parameters, meta_memory, meta_accuracy_cost, pyra_balance, moh_little_gain,
          moh_jetson, decoder_over_encoder, decoder_concentrates, entropy_tracks_accuracy, meta_macs_swin,
          pyra_adds_macs, moh_no_macs, meter_reference_counts, meter_edge_speedups, published_accuracy)


def check_claims(result: StudyResult) -> List[Claim]:
    return [check(result) for check in CHECKS]
