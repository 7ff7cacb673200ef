"""How far each METER-tiny network is from this CPU's limit, and which runtime comes closest (issue 28).

In ONE run:
- the machine's fp32 ceiling: a 2048x2048 fp32 matrix product (torch.mm, the same threads), timed at
  the start and at the end (the load may drift);
- per variant (base, meta, pyra, moh; weights ``auto``: the shipped checkpoints) PyTorch eager, ONNX
  Runtime fp32 and int8, OpenVINO fp32 and int8, each backend in a process of its own, the processes
  taking turns (``depth_attn/inference/turns.py``): p50/p90, achieved GFLOP/s (2 x MACs / p50) and its
  fraction of the ceiling; int8 files calibrated on unlabelled KITTI frames, with the held-out abs_rel
  on the 3 annotated frames beside fp32's;
- which comparison to trust: the OpenVINO / ONNX Runtime p50 ratio of meta timed in separate processes
  one after the other (alternating, the reference), in processes taking turns (what `depth-attn bench`
  does) and in one process call by call;
- OpenVINO's cold and warm start (compile into its model cache, then load from it);
- a profile of OpenVINO fp32 meta by layer type: milliseconds (PERF_COUNT, scaled to the p50) and, for
  the layers with multiply-accumulates (counted on the ONNX graph), GFLOP/s against the ceiling.

    .venv/bin/python bench/bench_cpu_limit.py --out out/bench/cpu_limit.md
    .venv/bin/python bench/bench_cpu_limit.py --runs 60 --variants meta base --skip-isolation
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("base", "meta", "pyra", "moh")
BACKENDS = (("torch", "torch", "fp32"), ("onnxruntime", "onnxruntime", "fp32"),
            ("onnxruntime-int8", "onnxruntime", "int8"), ("openvino", "openvino", "fp32"),
            ("openvino-int8", "openvino", "int8"))


def machine_load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1, 5, 15 min)"


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        from depth_attn.cli.doctor import cpu_model

        return cpu_model()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    name = fields.get("Model name", "?").strip()
    flags = fields.get("Flags", "")
    extras = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if f in flags.split()]
    return f"{name}, {os.cpu_count()} logical CPUs, {'/'.join(extras)}"


def matmul_ceiling(threads: int, n: int = 2048, runs: int = 20) -> float:
    """fp32 GFLOP/s of an n x n matrix product: the p50 of ``runs`` after 3 warm-ups."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


def config_for(variant: str, backend: str, precision: str, calibration: Path, frames: int, torch_threads: int = 0):
    from depth_attn.inference import EstimatorConfig
    from depth_attn.models import ModelConfig

    options = {"calibration": str(calibration), "calibration_frames": frames} if precision == "int8" else {}
    if backend == "torch" and torch_threads:
        options["threads"] = torch_threads
    return EstimatorConfig(model=ModelConfig(variant=variant), weights="auto", backend=backend, precision=precision,
                           backend_options=options)


def held_out_abs_rel(config) -> float:
    from depth_attn.evaluation.offline import evaluate_frames_folder
    from depth_attn.inference import DepthEstimator
    from depth_attn.paths import data_dir

    return evaluate_frames_folder(DepthEstimator(config), data_dir() / "kitti" / "annotated")["abs_rel"]


def onnx_macs_by_node(onnx_path: Path) -> Dict[str, Tuple[str, float]]:
    """ONNX node name -> (layer class, multiply-accumulates) for Conv, ConvTranspose, MatMul and Gemm,
    from the graph's inferred shapes."""
    import numpy as np
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    shapes = {}
    for value in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        shapes[value.name] = dims
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    constants = {i.name for i in model.graph.initializer}
    found = {}
    for node in model.graph.node:
        out = shapes.get(node.output[0])
        if not out:
            continue
        if node.op_type == "Conv":
            w = shapes[node.input[1]]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            kind = "depthwise/grouped conv" if group > 1 else ("1x1 conv" if w[2:] == [1, 1] else "dense kxk conv")
            found[node.name] = (kind, float(np.prod(out)) * float(np.prod(w[1:])))
        elif node.op_type == "ConvTranspose":
            w, x = shapes[node.input[1]], shapes[node.input[0]]
            found[node.name] = ("transposed conv", float(np.prod(x)) * float(np.prod(w[1:])))
        elif node.op_type in ("MatMul", "Gemm"):
            a = shapes.get(node.input[0])
            if not a:
                continue
            kind = "matmul (weights)" if node.input[1] in constants else "matmul (activations)"
            found[node.name] = (kind, float(np.prod(out)) * a[-1])
    return found


def ov_profile(onnx_path: Path, runs: int) -> Dict[str, object]:
    """Run in a process of its own: OpenVINO's per-node times (PERF_COUNT) summed by layer class."""
    import numpy as np
    import openvino as ov

    macs = onnx_macs_by_node(onnx_path)
    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"PERF_COUNT": True, "PERFORMANCE_HINT": "LATENCY",
                                                               "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    batch = np.random.default_rng(0).random((1, 3, *compiled.input(0).get_shape()[2:]), dtype=np.float32)
    for _ in range(3):
        request.infer({0: batch})
    ms: Dict[str, float] = defaultdict(float)
    layer_macs: Dict[str, float] = defaultdict(float)
    kernels: Dict[str, set] = defaultdict(set)
    wall = []
    for i in range(runs):
        start = time.perf_counter()
        request.infer({0: batch})
        wall.append((time.perf_counter() - start) * 1e3)
        for item in request.profiling_info:
            if item.status.name != "EXECUTED":
                continue
            name = item.node_name.split("/WithoutBiases")[0]
            if item.node_type == "FullyConnected" and name.endswith("/Add"):  # named after its fused bias
                name = name[: -len("/Add")] + "/MatMul"
            kind, node_macs = macs.get(name, (None, 0.0))
            if kind is None:
                kind = {"Softmax": "softmax", "MVN": "normalisation", "Subgraph": "fused elementwise",
                        "Eltwise": "elementwise", "Add": "elementwise", "Multiply": "elementwise",
                        "Reorder": "layout reorders", "Transpose": "transposes", "Interpolate": "resize",
                        "AvgPool": "pooling", "MaxPool": "pooling", "Concat": "concat/pad", "Pad": "concat/pad",
                        }.get(item.node_type, f"other ({item.node_type})")
            ms[kind] += item.real_time.total_seconds() * 1e3 / runs
            if i == 0:
                layer_macs[kind] += node_macs
                kernels[kind].add(item.exec_type)
    return {"ms": dict(ms), "macs": dict(layer_macs), "kernels": {k: sorted(v) for k, v in kernels.items()},
            "wall_p50_ms": float(np.median(wall))}


def ov_start_times(onnx_path: Path, folder: Path, repeats: int) -> Dict[str, List[float]]:
    """Cold (compile into an empty model cache) and warm (load from it) starts, each in a new process."""
    code = ("import sys, time; from pathlib import Path; "
            "from depth_attn.inference.backends.openvino_backend import OpenVINOBackend; "
            "b = OpenVINOBackend(Path(sys.argv[1]), model_cache_dir=Path(sys.argv[2])); "
            "print(b.start_ms, b.loaded_from_cache)")
    times: Dict[str, List[float]] = {"cold": [], "warm": []}
    import shutil

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for i in range(repeats):
        cache = folder / f"ov_cache_{i}"
        shutil.rmtree(cache, ignore_errors=True)
        for which in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", code, str(onnx_path), str(cache)], capture_output=True,
                                 text=True, check=True, env=env)
            value, loaded = out.stdout.split()
            assert (loaded == "True") == (which == "warm"), out.stdout
            times[which].append(float(value))
    return times


def isolation_check(calibration: Path, frames: int, runs: int) -> Dict[str, List[float]]:
    """openvino / onnxruntime p50 of meta three ways (three times each)."""
    from depth_attn.inference import DepthEstimator
    from depth_attn.inference.timing import measure_interleaved
    from depth_attn.inference.turns import measure_in_turns

    configs = {b: config_for("meta", b, "fp32", calibration, frames) for b in ("onnxruntime", "openvino")}
    ratios: Dict[str, List[float]] = {"separate processes": [], "processes taking turns": [], "one process": []}
    for _ in range(3):
        alone = {b: measure_in_turns({b: c}, runs, 10, turns=1, end_to_end=False, progress=False)[b].network.p50_ms
                 for b, c in configs.items()}
        ratios["separate processes"].append(alone["openvino"] / alone["onnxruntime"])
        turns = measure_in_turns(configs, runs, 10, end_to_end=False, progress=False)
        ratios["processes taking turns"].append(turns["openvino"].network.p50_ms / turns["onnxruntime"].network.p50_ms)
    estimators = {b: DepthEstimator(c) for b, c in configs.items()}
    import numpy as np

    batch = np.random.default_rng(0).random((1, 3, 192, 636), dtype=np.float32)
    for _ in range(3):
        stats = measure_interleaved({b: (lambda e=e: e.backend.run(batch)) for b, e in estimators.items()}, runs, 10)
        ratios["one process"].append(stats["openvino"].p50_ms / stats["onnxruntime"].p50_ms)
    return ratios


def pinning_check(runs: int) -> Dict[str, float]:
    """OpenVINO's thread pinning (ENABLE_CPU_PINNING) on and off, beside ONNX Runtime: meta p50, in turns."""
    from depth_attn.inference import EstimatorConfig
    from depth_attn.inference.turns import measure_in_turns
    from depth_attn.models import ModelConfig

    def config(backend: str, **options) -> EstimatorConfig:
        return EstimatorConfig(model=ModelConfig(variant="meta"), weights="auto", backend=backend,
                               backend_options=options)

    configs = {"onnxruntime": config("onnxruntime"), "openvino pinned": config("openvino", pinning="true"),
               "openvino unpinned": config("openvino", pinning="false")}
    found = measure_in_turns(configs, runs, 10, turns=4, end_to_end=False, progress=False)
    return {label: result.network.p50_ms for label, result in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=150, help="timed runs per backend and variant (default: 150)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--calibration", type=Path, default=None,
                        help="int8 calibration frames (default: ../shared data/kitti/unlabelled/drive_a_268)")
    parser.add_argument("--calibration-frames", type=int, default=50)
    parser.add_argument("--isolation-runs", type=int, default=100, help="runs per measurement of the isolation check")
    parser.add_argument("--skip-isolation", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true", help="no held-out abs_rel")
    parser.add_argument("--profile-runs", type=int, default=30)
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="PyTorch's threads (default: its own, one per core; OpenMP's barriers collapse on a "
                        "loaded machine, where 1 is the fair setting)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here (and .json beside it)")
    args = parser.parse_args()
    import torch

    from depth_attn.inference import DepthEstimator
    from depth_attn.inference.turns import describe_method, measure_in_turns
    from depth_attn.models.registry import validate_config
    from depth_attn.models.stats import model_stats
    from depth_attn.paths import data_dir

    calibration = args.calibration or data_dir() / "kitti" / "unlabelled" / "drive_a_268"
    threads = torch.get_num_threads()
    report: Dict[str, object] = {"torch_threads": args.torch_threads or threads}
    report.update(date_utc=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cpu=lscpu_model(), threads=threads,
                  load_before=machine_load(), command=" ".join(sys.argv))
    print(f"{report['cpu']}; {report['load_before']}", flush=True)
    ceiling = [matmul_ceiling(threads)]
    print(f"2048x2048 fp32 matmul: {ceiling[0]:.0f} GFLOP/s", flush=True)
    rows = []
    for variant in args.variants:
        configs = {label: config_for(variant, b, p, calibration, args.calibration_frames, args.torch_threads)
                   for label, b, p in BACKENDS}
        gmacs = model_stats(validate_config("meter", "tiny", variant, "full"), (192, 636)).gmacs
        found = measure_in_turns(configs, args.runs, args.warmup, end_to_end=False)
        for label, result in found.items():
            row = {"variant": variant, "backend": label, "p50_ms": result.network.p50_ms,
                   "p90_ms": result.network.p90_ms, "gmacs": gmacs,
                   "gflops": 2 * gmacs / (result.network.p50_ms / 1e3)}
            if not args.skip_accuracy and label != "torch":
                row["abs_rel"] = held_out_abs_rel(configs[label])
            rows.append(row)
            print(f"{variant:5s} {label:17s} p50 {row['p50_ms']:7.2f} p90 {row['p90_ms']:7.2f} "
                  f"{row['gflops']:6.1f} GFLOP/s" + (f"  abs_rel {row['abs_rel']:.4f}" if "abs_rel" in row else ""),
                  flush=True)
    ceiling.append(matmul_ceiling(threads))
    print(f"2048x2048 fp32 matmul at the end: {ceiling[1]:.0f} GFLOP/s", flush=True)
    report.update(ceiling_gflops=ceiling, rows=rows, method=describe_method(3, args.runs))
    if not args.skip_isolation:
        report["isolation"] = isolation_check(calibration, args.calibration_frames, args.isolation_runs)
        print("openvino/onnxruntime p50, meta:", json.dumps(report["isolation"]), flush=True)
        report["pinning"] = pinning_check(args.isolation_runs)
        print("pinning, meta p50 ms:", json.dumps(report["pinning"]), flush=True)
    meta = DepthEstimator(config_for("meta", "onnxruntime", "fp32", calibration, 0)).backend.onnx_path
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        report["openvino_start_ms"] = ov_start_times(meta, Path(work), 3)
    print("OpenVINO start (ms):", report["openvino_start_ms"], flush=True)
    from multiprocessing import get_context

    with get_context("spawn").Pool(1) as pool:  # its own process: no other runtime's threads beside it
        report["profile"] = pool.apply(ov_profile, (meta, args.profile_runs))
    report["load_after"] = machine_load()
    print(report["load_after"])
    text = to_markdown(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    return 0


def to_markdown(report: Dict[str, object]) -> str:
    import numpy as np

    ceiling = max(report["ceiling_gflops"])
    lines = [f"- machine: {report['cpu']}, {report['threads']} threads; {report['date_utc']}",
             f"- load: before {report['load_before']}; after {report['load_after']}",
             f"- fp32 ceiling: 2048x2048 torch.mm, {report['ceiling_gflops'][0]:.0f} GFLOP/s at the start, "
             f"{report['ceiling_gflops'][1]:.0f} at the end (fractions below: of {ceiling:.0f})",
             f"- timing: {report['method']}; PyTorch with {report['torch_threads']} thread(s)",
             f"- command: `{report['command']}`", "",
             "| variant | backend | p50 ms | p90 ms | GFLOP/s | of ceiling | vs ONNX Runtime fp32 | held-out abs_rel |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    rows = report["rows"]
    for row in rows:
        ort = next(r for r in rows if r["variant"] == row["variant"] and r["backend"] == "onnxruntime")
        lines.append(f"| {row['variant']} | {row['backend']} | {row['p50_ms']:.2f} | {row['p90_ms']:.2f} | "
                     f"{row['gflops']:.0f} | {row['gflops'] / ceiling:.0%} | {row['p50_ms'] / ort['p50_ms']:.2f}x | "
                     + (f"{row['abs_rel']:.4f} |" if "abs_rel" in row else "- |"))
    if "isolation" in report:
        lines += ["", "OpenVINO / ONNX Runtime fp32 p50 (meta), three measurements each:", ""]
        for how, values in report["isolation"].items():
            lines.append(f"- {how}: " + ", ".join(f"{v:.2f}" for v in values))
    if "pinning" in report:
        lines += ["", "OpenVINO thread pinning, meta p50 in turns (ms): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in report["pinning"].items())]
    start = report["openvino_start_ms"]
    lines += ["", f"OpenVINO start (meta, new process each): cold (compile) {np.median(start['cold']):.0f} ms, "
              f"warm (model cache) {np.median(start['warm']):.0f} ms (medians of {len(start['cold'])})", ""]
    profile = report["profile"]
    total = sum(profile["ms"].values())
    scale = profile["wall_p50_ms"] / total if total else 1.0
    lines += [f"OpenVINO fp32 meta by layer type (PERF_COUNT, scaled to its p50 {profile['wall_p50_ms']:.1f} ms):", "",
              "| layer type | ms | share | GMACs | GFLOP/s | of ceiling | kernels |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for kind, ms in sorted(profile["ms"].items(), key=lambda kv: -kv[1]):
        macs = profile["macs"].get(kind, 0.0)
        t = ms * scale
        rate = 2 * macs / (t / 1e3) / 1e9 if macs and t else 0.0
        lines.append(f"| {kind} | {t:.2f} | {ms / total:.0%} | {macs / 1e9:.3f} | "
                     + (f"{rate:.0f} | {rate / ceiling:.0%} |" if macs else "- | - |")
                     + f" {', '.join(profile['kernels'].get(kind, []))[:60]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
