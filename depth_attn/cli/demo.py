"""`depth-attn demo`: the main job of `make demo` - a real KITTI drive with ground truth through the ROS 2
evaluation graph (player -> depth node -> eval node) at its real 10 Hz, with the summary table, a
contact sheet and an animation of the depth, and where every file is."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Optional, Tuple

from depth_attn.cli.common import add_command

SOURCES = ("auto", "clip", "sample")
SHEET_FRAMES = 6
ANIMATION_WIDTH = 621  # half of KITTI's 1242


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="clip: the shared 78-frame clip; sample: the package's 7 frames; auto: the clip if present")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime", help="what runs the network")
    p.add_argument("--repeat", type=int, default=1, help="play the bag this many times (more latency samples)")
    p.add_argument("--frame-rate", type=float, default=0.0,
                   help="frames per second the player sends (0 = the drive's own timing, 10 Hz)")
    p.add_argument("--offline", action="store_true", help="evaluate the bag offline only (no ROS)")
    p.set_defaults(func=run)


def kitti_eval_config() -> Path:
    """config/kitti_eval.yaml of the package (the checkout, or share/depth_attn after colcon build)."""
    from depth_attn.paths import share_dir

    candidate = share_dir() / "config" / "kitti_eval.yaml"
    if not candidate.is_file():
        raise FileNotFoundError(f"config/kitti_eval.yaml not found beside the package ({candidate})")
    return candidate


def open_drive(source: str = "auto"):
    """(the KittiDrive to play, a sentence saying what it is and where it comes from)."""
    from depth_attn.data.kitti import KittiDrive
    from depth_attn.data.sample import CLIP_RATE_HZ, clip_available, clip_calib_dir, clip_dir, sample_drive
    from depth_attn.paths import data_dir

    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source in ("auto", "clip") and clip_available():
        drive = KittiDrive.open(clip_dir(), clip_calib_dir(), gt="velodyne", rate_hz=CLIP_RATE_HZ)
        return drive, (f"the shared 78-frame KITTI clip ({len(drive.frames)} frames at {CLIP_RATE_HZ:g} Hz, ground "
                       f"truth: each Velodyne scan projected) from {clip_dir().resolve()}")
    if source == "clip":
        raise FileNotFoundError(f"the shared clip is not here: {clip_dir()} with calibration in {clip_calib_dir()} "
                                f"(shared data: {data_dir()}); use --source sample")
    drive = KittiDrive.open(sample_drive())
    return drive, (f"the package's KITTI sample: drive 0023, {len(drive.frames)} frames at 10 Hz, ground truth: "
                   f"Velodyne depth PNGs (proj_depth/velodyne_raw), from {drive.drive_dir.resolve()} (the shared clip "
                   f"is not in {data_dir()})")


def build_bag(out: Path, source: str = "auto") -> Tuple[Path, int]:
    """The drive as out/kitti_bag; (bag, frames with ground truth)."""
    from depth_attn.data.kitti2bag import write_drive_bag

    drive, description = open_drive(source)
    print(f"drive: {description}", flush=True)
    summary = write_drive_bag(drive, out / "kitti_bag", overwrite=True)
    print(f"bag:   {summary.path.resolve()} ({summary.frames} frames, {summary.frames_with_gt} with ground truth)",
          flush=True)
    return summary.path, summary.frames_with_gt


def make_pictures(bag: Path, eval_dir: Path, out: Path, frames: int) -> Dict[str, Path]:
    """The contact sheet (``SHEET_FRAMES`` frames spread over the drive) and the animation (every frame
    scored in the first pass) from the bag and the predictions the evaluation saved."""
    import numpy as np

    from depth_attn.data import bags
    from depth_attn.data.kitti2bag import ground_truth_png
    from depth_attn.evaluation import visuals
    from depth_attn.evaluation.records import prediction_path

    scored = [k for k in range(frames) if prediction_path(eval_dir, k).is_file()]
    if not scored:
        raise FileNotFoundError(f"no saved predictions in {eval_dir / 'depth'}: nothing to draw")
    on_sheet = {scored[i] for i in visuals.spread(len(scored), SHEET_FRAMES)}
    sheet, small = [], []
    wanted = set(scored)
    gt_frames = (f for f in bags.iter_frames(bag, require_gt=True) if f.gt is not None)
    first_ns: Optional[int] = None
    for ordinal, frame in enumerate(gt_frames):
        if ordinal >= frames:
            break
        first_ns = frame.stamp_ns if first_ns is None else first_ns
        if ordinal not in wanted:
            continue
        pred = ground_truth_png(prediction_path(eval_dir, ordinal))
        caption = f"frame {ordinal}  {(frame.stamp_ns - first_ns) / 1e9:.1f} s"
        if ordinal in on_sheet:
            valid = np.isfinite(frame.gt)
            abs_rel = float(np.mean(np.abs(pred[valid] - frame.gt[valid]) / frame.gt[valid])) if valid.any() else 0.0
            sheet.append(visuals.SheetFrame(frame.rgb, pred, frame.gt, f"{caption}  abs_rel {abs_rel:.3f}"))
        h, w = frame.rgb.shape[:2]
        size = (ANIMATION_WIDTH, int(round(h * ANIMATION_WIDTH / w)))
        small.append((caption, visuals.resize(frame.rgb, size), visuals.resize(pred, size)))
    files = {"contact sheet": out / "contact_sheet.png", "animation": out / "depth.gif"}
    layout = visuals.contact_sheet(sheet, files["contact sheet"], title=f"{bag.name}: {len(scored)} frames scored")
    visuals.write_animation(
        (visuals.animation_frame(rgb, pred, layout.max_depth, ANIMATION_WIDTH, caption)
         for caption, rgb, pred in small), files["animation"], fps=10.0)
    return files


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import json
    import time

    from depth_attn.evaluation import format_table

    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bag, gt_frames = build_bag(out, args.source)
    eval_dir = out / "eval"
    online = not args.offline
    if online and importlib.util.find_spec("rclpy") is None:
        print("rclpy is not installed here: evaluating the bag offline instead (`make setup` installs it)")
        online = False
    expected = gt_frames * max(1, args.repeat)
    if online:
        from depth_attn.ros.graph import make_spec, run_graph

        spec = make_spec(kitti_eval_config(), sets=[
            f"player.bag={bag}", f"player.repeat={args.repeat}", f"player.frame_rate={float(args.frame_rate)}",
            f"depth_node.backend={args.backend}", f"eval_node.out_dir={eval_dir}", "eval_node.print_table=false",
            "eval_node.save_depth=true", f"eval_node.expected_frames={expected}", f"eval_node.max_frames={expected}",
        ])
        rate = f"{args.frame_rate:g} frames/s" if args.frame_rate > 0 else "the drive's own timing"
        print(f"running {', '.join(spec.nodes)} ({spec.config}); {args.repeat} x the bag at {rate} ...", flush=True)
        code = run_graph(spec, duration=600.0)
        if code:
            print(f"the graph ended with status {code} (see the log above)")
    else:
        from depth_attn.evaluation.offline import EvalSettings, evaluate_bag
        from depth_attn.inference import DepthEstimator, EstimatorConfig

        estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend=args.backend))
        evaluate_bag(bag, estimator, eval_dir, EvalSettings(save_depth=True))
        code = 0
    summary_path = eval_dir / "summary.json"
    if not summary_path.is_file():
        print(f"no summary was written to {summary_path}")
        return 1
    summary = json.loads(summary_path.read_text())
    files = summary.get("files", {})
    print(f"\n{format_table(summary)}\n")
    pictures: Dict[str, Optional[Path]] = {}
    try:
        pictures.update(make_pictures(bag, eval_dir, out, gt_frames))
    except (FileNotFoundError, ValueError) as exc:
        print(f"no pictures: {exc}")
        code = code or 1
    paths = {
        "bag": bag,
        "per-frame CSV": Path(files.get("csv", eval_dir / "frames.csv")),
        "summary": summary_path,
        "per-frame plot": Path(files.get("plot", eval_dir / "frames.png")),
        "predictions": eval_dir / "depth",
        **pictures,
    }
    for name, path in paths.items():
        print(f"{name + ':':16}{Path(path).resolve()}")
    print(f"({time.perf_counter() - start:.0f} s; `depth-attn eval {bag}` scores it offline, "
          f"`depth-attn sweep {bag}` draws the accuracy/latency trade-off)")
    return code
