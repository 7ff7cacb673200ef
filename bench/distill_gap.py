"""Where a distilled student differs from its teacher: mean |log student - log teacher| on training
frames against the held-out sets, overall and by image row (8 bands, top to bottom), and the held-out
abs_rel of the student as initialised from the teacher, with and without its attention branches
silenced. The figures behind docs/benchmarks.md section 10's "why meta is far from its teacher".

    .venv/bin/python bench/distill_gap.py                                   # the shipped meta student
    .venv/bin/python bench/distill_gap.py --student out/train/run/best.pth --variant meta --every 2
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BANDS = 8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("config/train/meter_tiny_meta_distill_cpu.yaml"),
                        help="training config: its teacher, training frames and held-out sets")
    parser.add_argument("--variant", default="meta", help="the student's variant (default: meta)")
    parser.add_argument("--student", default=None,
                        help="student checkpoint (name or .pth; default: what `auto` picks for the variant)")
    parser.add_argument("--every", type=int, default=5, help="use every N-th training frame (default: 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from tqdm import tqdm

    from depth_attn.models import build_model
    from depth_attn.training import load_config
    from depth_attn.training.augment import network_input
    from depth_attn.training.data import build_dataset
    from depth_attn.training.init import init_student
    from depth_attn.training.validate import validate
    from depth_attn.weights import checkpoint_info, load_state_dict, locate, resolve_auto

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    t = config.teacher
    info = checkpoint_info(t.weights)
    hw = tuple(config.model.input_size or info.input_hw)
    teacher_state = load_state_dict(locate(t.weights))
    teacher = build_model(**asdict(t.config)).eval()
    teacher.load_state_dict(teacher_state)
    m = config.model.config
    student_name = args.student or resolve_auto(m.network, m.size, args.variant, m.placement, "kitti")
    path = Path(student_name) if str(student_name).endswith(".pth") else locate(student_name)
    student = build_model(m.network, m.size, args.variant, m.placement).eval()
    student.load_state_dict(load_state_dict(path))

    train = build_dataset(config.train_data)
    sets = {f"training (every {args.every})": (train, range(0, len(train), args.every))}
    held_out = {name: build_dataset(specs) for name, specs in config.val_data.items()}
    sets.update({name: (data, range(len(data))) for name, data in held_out.items()})
    print(f"student {path} ({args.variant}) against teacher {t.weights}, input {hw[0]}x{hw[1]}")
    print("| frames | n | mean abs log ratio | by row band, top to bottom |")
    print("| --- | ---: | ---: | --- |")
    for name, (data, indices) in sets.items():
        means, rows = [], None
        for i in tqdm(indices, desc=name, leave=False):
            image, _ = network_input(data[i], hw)
            x = torch.from_numpy(image)[None]
            with torch.no_grad():
                err = (student(x).clamp_min(1e-4).log() - teacher(x).clamp_min(1e-4).log()).abs()[0, 0]
            means.append(float(err.mean()))
            rows = err.mean(1).numpy() if rows is None else rows + err.mean(1).numpy()
        rows = rows / len(means)
        bands = " ".join(f"{b.mean():.3f}" for b in np.array_split(rows, BANDS))
        print(f"| {name} | {len(means)} | {np.mean(means):.4f} | {bands} |")

    def scores(model) -> Dict[str, float]:
        return {name: validate(model, data, hw, info.to_metres)["abs_rel"] for name, data in held_out.items()}

    fresh = build_model(m.network, m.size, args.variant, m.placement).eval()
    init_student(fresh, teacher_state)
    # the teacher without its attention branches: a meta student started as model.meta_mixers: silenced
    silenced = build_model(m.network, m.size, "meta", m.placement).eval()
    init_student(silenced, teacher_state, meta_branch_gain=0.0)
    print("\n| network | " + " | ".join(f"{k} abs_rel" for k in held_out) + " |")
    print("| --- |" + " ---: |" * len(held_out))
    for label, model in ((f"{args.variant} as initialised from {t.weights}", fresh),
                         (f"{t.weights} without its attention branches", silenced),
                         (f"{t.weights}", teacher), (f"{path.name}", student)):
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in scores(model).values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
