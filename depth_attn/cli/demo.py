"""`depth-attn demo`: the main job of `make demo` - a KITTI bag with ground truth through the ROS 2
evaluation graph (player -> depth node -> eval node), with the summary table and where the files are."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: a KITTI bag with ground truth through the depth node, scored frame by frame",
        description="Build a rosbag2 from the shared KITTI frames ($DEPTH_ATTN_DATA/kitti or ../shared/data/kitti: "
        "images, annotated depth, the 2011_09_26 calibration), play it through the depth node (METER, official "
        "KITTI checkpoint) and the eval node over ROS 2 in one process (config/kitti_eval.yaml), and print the "
        "summary table and where the per-frame CSV, summary.json and plots are. Without rclpy it evaluates "
        "offline instead.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime", help="what runs the network")
    p.add_argument("--repeat", type=int, default=5, help="play the bag this many times (more latency samples)")
    p.add_argument("--frame-rate", type=float, default=5.0, help="frames per second the player sends")
    p.add_argument("--offline", action="store_true", help="evaluate the bag offline only (no ROS)")
    p.set_defaults(func=run)


def kitti_eval_config() -> Path:
    """config/kitti_eval.yaml of the source tree, else of the installed ROS package."""
    from depth_attn.paths import REPO_ROOT

    candidate = REPO_ROOT / "config" / "kitti_eval.yaml"
    if candidate.is_file():
        return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("depth_attn")) / "config" / "kitti_eval.yaml"
    except Exception as exc:  # noqa: BLE001
        raise FileNotFoundError(f"config/kitti_eval.yaml not found beside the package ({candidate})") from exc


def build_bag(out: Path) -> Path:
    import shutil

    from depth_attn.data.kitti import KittiDrive
    from depth_attn.data.kitti2bag import write_bag
    from depth_attn.data.sample import layout_annotated_drive

    raw = out / "kitti_raw"
    shutil.rmtree(raw, ignore_errors=True)
    drive = KittiDrive.open(layout_annotated_drive(raw))
    summary = write_bag(drive.frames, drive.calib, out / "kitti_bag", overwrite=True)
    print(f"bag: {summary.path.resolve()} ({summary.frames} frames, {summary.frames_with_gt} with ground truth, "
          f"from {drive.drive_dir.resolve()})")
    return summary.path


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import json
    import time

    from depth_attn.evaluation import format_table

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bag = build_bag(out)
    eval_dir = out / "eval"
    start = time.perf_counter()
    online = not args.offline
    if online:
        if importlib.util.find_spec("rclpy") is None:
            print("rclpy is not installed here: evaluating the bag offline instead (`make setup` installs it)")
            online = False
    if online:
        from depth_attn.ros.graph import make_spec, run_graph

        spec = make_spec(kitti_eval_config(), sets=[
            f"player.bag={bag}", f"player.repeat={args.repeat}", f"player.frame_rate={float(args.frame_rate)}",
            f"depth_node.backend={args.backend}", f"eval_node.out_dir={eval_dir}", "eval_node.print_table=false",
        ])
        print(f"running {', '.join(spec.nodes)} ({spec.config}); {args.repeat} x the bag at {args.frame_rate:g} "
              "frames/s ...", flush=True)
        code = run_graph(spec, duration=600.0)
        if code:
            print(f"the graph ended with status {code} (see the log above)")
    else:
        from depth_attn.evaluation.offline import evaluate_bag
        from depth_attn.inference import DepthEstimator, EstimatorConfig

        estimator = DepthEstimator(EstimatorConfig(weights="meter-xxs-kitti", backend=args.backend))
        evaluate_bag(bag, estimator, eval_dir)
        code = 0
    summary_path = eval_dir / "summary.json"
    if not summary_path.is_file():
        print(f"no summary was written to {summary_path}")
        return 1
    summary = json.loads(summary_path.read_text())
    files = summary.get("files", {})
    print(f"\n{format_table(summary)}\n")
    print(f"per-frame CSV:  {Path(files.get('csv', eval_dir / 'frames.csv')).resolve()}")
    print(f"summary:        {summary_path.resolve()}")
    print(f"per-frame plot: {Path(files.get('plot', eval_dir / 'frames.png')).resolve()}")
    print(f"({time.perf_counter() - start:.0f} s; `depth-attn eval {bag}` scores it offline, "
          f"`depth-attn sweep {bag}` draws the accuracy/latency trade-off)")
    return code
