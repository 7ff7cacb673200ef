"""The training loop: one process, or DDP when started by torchrun (``python -m depth_attn.training``).

Per step: a batch of augmented frames from this rank's shard (``DistributedSampler``), the student's
forward (autocast on CUDA when asked), the teacher's under ``no_grad``, the weighted objective,
backward, gradient clipping, AdamW, the warm-up + decay schedule. Rank 0 alone writes: the CSV row
(flushed), tqdm, validation every K steps, the best and the resume checkpoints, and at the end the
final state dict, its card and the curves PNG. SIGINT/SIGTERM finish the current step, write a
checkpoint and return."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from depth_attn import weights as weights_mod
from depth_attn.models import build_model
from depth_attn.models.attention import clear_load_balance_loss
from depth_attn.models.spec import network_spec
from depth_attn.training import distributed as ddp
from depth_attn.training.augment import augment, cutmix_batch, sample_rng
from depth_attn.training.card import SUBSET_FRAMES, heldout_metrics, training_card, weights_name  # noqa: F401
from depth_attn.training.checkpoint import CheckpointError, restore_resume, save_resume, save_state_dict
from depth_attn.training.config import META_MIXER_STARTS, TrainConfig, dump_config
from depth_attn.training.data import FrameDataset, build_dataset
from depth_attn.training.ema import WeightAverage
from depth_attn.training.init import init_student
from depth_attn.training.objectives import total_loss
from depth_attn.training.optim import (  # noqa: F401 (lr_factor: imported from here)
    freeze_batchnorm,
    lr_factor,
    make_optimizer,
    mixed_precision,
    trainable_parameters,
)
from depth_attn.training.report import StepLog, plot_curves, truncate_log, write_card
from depth_attn.training.run_folder import (  # noqa: F401 (TrainError, RUN_FILE: imported from here)
    RUN_FILE,
    TrainError,
    check_output_dir,
    resume_checkpoint,
    write_run_files,
)
from depth_attn.training.taps import DistillationTaps
from depth_attn.training.validate import validate


@dataclass
class TrainResult:
    steps_done: int
    interrupted: bool
    out_dir: Path
    checkpoint: Optional[Path]
    final_weights: Optional[Path] = None
    card: Optional[Path] = None
    heldout: Optional[Dict[str, Dict[str, float]]] = None


def _resolve_weights(spec: str) -> Tuple[Path, Optional[weights_mod.CheckpointInfo]]:
    try:
        return weights_mod.resolve(spec)
    except weights_mod.WeightsError as exc:
        raise TrainError(str(exc)) from exc


class Trainer:
    def __init__(self, config: TrainConfig, resume: Optional[str] = None, argv: Sequence[str] = (),
                 progress: bool = True, stop_after: Optional[int] = None) -> None:
        self.config = config
        self.argv = list(argv)
        self.progress = progress
        self.info = ddp.from_environment()
        self.device = ddp.pick_device(config.schedule.device, self.info)
        self.out_dir = Path(config.output.dir).expanduser()
        self.resume_path = resume_checkpoint(self.out_dir, resume)
        self.elapsed_before = 0.0
        self._t_start = time.perf_counter()
        self._stop = False
        self.stop_after = stop_after  # behave as if stopped by a signal after this step (tests, schedulers)

    # -- set-up ---------------------------------------------------------------------------------

    def _check_output_dir(self) -> None:
        check_output_dir(self.out_dir, self.resume_path, self.config.identity())

    def _build(self) -> None:
        c = self.config
        m = c.model
        spec = network_spec(m.config.network)
        info_for_units: Optional[weights_mod.CheckpointInfo] = None
        torch.manual_seed(c.schedule.seed)
        self.student = build_model(**dataclasses.asdict(m.config))
        self.init_report = None
        if m.init:
            path, info = _resolve_weights(m.init)
            self.init_report = init_student(self.student, weights_mod.load_state_dict(path),
                                            meta_branch_gain=META_MIXER_STARTS[m.meta_mixers])
            info_for_units = info
        self.teacher: Optional[nn.Module] = None
        self.teacher_desc: Optional[Dict[str, Any]] = None
        if c.teacher is not None and c.objective.needs_teacher:
            t = c.teacher
            self.teacher = build_model(**dataclasses.asdict(t.config))
            if t.weights:
                path, info = _resolve_weights(t.weights)
                state = weights_mod.load_state_dict(path)
                try:
                    self.teacher.load_state_dict(state, strict=True)
                except RuntimeError as exc:
                    raise TrainError(f"teacher weights {t.weights} do not fit {t.config.name}: "
                                     f"{str(exc).splitlines()[0]}") from exc
                info_for_units = info_for_units or info
            self.teacher.eval().requires_grad_(False).to(self.device)
            self.teacher_desc = {**dataclasses.asdict(t.config), "weights": t.weights}
        self.input_hw: Tuple[int, int] = tuple(  # type: ignore[assignment]
            m.input_size or (info_for_units.input_hw if info_for_units else spec.input_hw)
        )
        self.to_metres = info_for_units.to_metres if info_for_units else spec.to_metres
        self.unit = info_for_units.output_unit if info_for_units else spec.output_unit
        self.augment = dataclasses.replace(c.augment, input_hw=self.input_hw)
        try:
            self.augment.check()
        except ValueError as exc:
            raise TrainError(f"augment: {exc}") from exc
        self.memory_format = torch.channels_last if c.schedule.channels_last else torch.contiguous_format
        self.student.to(self.device, memory_format=self.memory_format)
        if self.teacher is not None:
            self.teacher.to(memory_format=self.memory_format)
        try:
            self.params = trainable_parameters(self.student, c.schedule.trainable)
        except ValueError as exc:
            raise TrainError(str(exc)) from exc
        self.ema = WeightAverage(self.student, c.schedule.ema) if c.schedule.ema > 0 else None
        taps = DistillationTaps(self.student, self.teacher, spec, c.objective.distill_features,
                                c.objective.feature_layers, c.objective.feature_inputs, self.augment.output_hw,
                                self.device)
        if taps.blockwise and self.info.enabled:
            taps.close()
            raise TrainError("objective.feature_inputs: teacher (block-wise distillation) runs in one process; "
                             "use feature_inputs: student under torchrun")
        self.taps = taps
        self.feature_layers, self.skipped_layers = taps.layers, taps.skipped
        self.model: nn.Module = self.student
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.student, device_ids=ids, broadcast_buffers=False)
        self.optimizer, self.scheduler = make_optimizer(self.params, c.schedule)
        self.amp_dtype, self.scaler = mixed_precision(c.schedule.amp, self.device)

    def _load_data(self) -> None:
        c = self.config
        try:
            self.train_set = build_dataset(c.train_data, cache=c.cache_frames)
            self.val_sets: Dict[str, FrameDataset] = {
                name: build_dataset(specs, cache=True) for name, specs in c.val_data.items()
            }
        except ValueError as exc:
            raise TrainError(f"data: {exc}") from exc
        if c.cache_frames:
            try:
                self.train_set.preload(progress=self.progress and self.info.is_main)
            except ValueError as exc:
                raise TrainError(f"data: {exc}") from exc
        if c.objective.silog > 0 and not c.objective.needs_teacher and self.train_set.frames_with_gt() == 0:
            raise TrainError("objective.silog alone needs frames with ground truth, and the training data has none")
        self.sampler = DistributedSampler(self.train_set, num_replicas=self.info.world_size, rank=self.info.rank,
                                          shuffle=True, seed=c.schedule.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // c.schedule.batch_size
        if self.steps_per_epoch == 0:
            raise TrainError(f"{len(self.train_set)} training frames are fewer than batch_size x processes "
                             f"({c.schedule.batch_size} x {self.info.world_size})")

    def _restore(self) -> int:
        if self.resume_path is None:
            return 0
        try:
            step, self.best, self.elapsed_before = restore_resume(
                self.resume_path, self.config.identity(), model=self.student, optimizer=self.optimizer,
                scheduler=self.scheduler, scaler=self.scaler, ema=self.ema)
        except CheckpointError as exc:
            raise TrainError(str(exc)) from exc
        return step

    # -- one step -------------------------------------------------------------------------------

    def _batch(self, step: int) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
        bs = self.config.schedule.batch_size
        epoch, position = divmod(step, self.steps_per_epoch)
        if getattr(self, "_order_epoch", None) != epoch:  # this rank's shard order, drawn once per epoch
            self.sampler.set_epoch(epoch)
            self._order, self._order_epoch = list(self.sampler), epoch
        indices = self._order[position * bs : (position + 1) * bs]
        images, depths = [], []
        for index in indices:
            view = augment(self.train_set[index], self.augment, sample_rng(self.config.schedule.seed, epoch, index))
            images.append(view.image)
            depths.append(view.depth)
        image_batch, depth_batch = np.stack(images), np.stack(depths)
        if self.augment.mix > 0:  # its own stream, so the per-frame views stay what they were without it
            mix_rng = np.random.default_rng([int(self.config.schedule.seed), int(epoch), int(position), 1])
            image_batch, depth_batch, _ = cutmix_batch(image_batch, depth_batch, self.augment, mix_rng)
        x = torch.from_numpy(image_batch).to(self.device, non_blocking=True)
        x = x.contiguous(memory_format=self.memory_format)
        gt = torch.from_numpy(depth_batch).to(self.device, non_blocking=True)
        return x, gt, indices

    def _step(self, step: int) -> Dict[str, Any]:
        c = self.config
        x, gt, indices = self._batch(step)
        autocast = torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        teacher_m, teacher_features, teacher_inputs = None, [], []
        if self.teacher is not None:
            with torch.no_grad(), autocast:
                teacher_m = self.teacher(x).float() * self.to_metres
            teacher_features, teacher_inputs = self.taps.teacher_features()
        student_m = None
        if c.objective.needs_student_forward:
            with autocast:
                raw = self.model(x)
            student_m = raw.float() * self.to_metres
        student_features = self.taps.student_features(autocast, teacher_inputs)
        loss, terms = total_loss(c.objective, self.student, student_m, gt, teacher_m, student_features,
                                 teacher_features)
        clear_load_balance_loss(self.student)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if c.schedule.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, c.schedule.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.student)
        row: Dict[str, Any] = {"loss": float(loss.detach()), "lr": lr, **terms, "indices": indices}
        return row

    # -- saving ---------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        """Seconds of training so far, the runs this one resumed included."""
        return self.elapsed_before + time.perf_counter() - self._t_start

    def _save_resume(self, step: int) -> Path:
        path = self.out_dir / "checkpoints" / "last.pt"
        save_resume(path, model=self.student, optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
                    ema=self.ema, step=step, identity=self.config.identity(), config_text=dump_config(self.config),
                    best_abs_rel=self.best, elapsed_s=self._elapsed())
        return path

    def _shipped_weights(self):
        """The weights that are validated and saved: the moving average when schedule.ema is on."""
        return self.ema.swapped_in(self.student) if self.ema is not None else nullcontext(self.student)

    def _validate(self) -> Optional[Dict[str, float]]:
        if not self.val_sets:
            return None
        name = self.config.output.validate_on or next(iter(self.val_sets))
        return validate(self.student, self.val_sets[name], self.input_hw, self.to_metres,
                        crop=self.config.output.crop, device=self.device)

    def _finish(self, step: int, log_path: Path) -> Tuple[Path, Path, Dict[str, Dict[str, float]]]:
        c = self.config
        m = c.model
        name = weights_name(c)
        weights_path = self.out_dir / f"{name}.pth"
        with self._shipped_weights():
            save_state_dict(self.student, weights_path)
            heldout = heldout_metrics(self.student, self.val_sets, self.input_hw, self.to_metres, c.output.crop,
                                      self.device)
        card = training_card(c, name=name, weights_path=weights_path, input_hw=self.input_hw, unit=self.unit,
                             to_metres=self.to_metres, init_report=self.init_report, teacher=self.teacher_desc,
                             train_set=self.train_set, feature_layers=self.feature_layers, steps=step,
                             processes=self.info.world_size, device=self.device, heldout=heldout, argv=self.argv)
        card_path = self.out_dir / f"{name}.json"
        write_card(card_path, card)
        plot_curves(log_path, self.out_dir / "curves.png", f"{m.config.name} ({step} steps)")
        return weights_path, card_path, heldout

    # -- the run --------------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        if not self._stop and self.info.is_main:
            print(f"\n{signal.Signals(signum).name}: finishing this step, then writing a checkpoint", file=sys.stderr)
        self._stop = True

    def run(self) -> TrainResult:
        c = self.config
        main = self.info.is_main
        if main:
            self._check_output_dir()
        threads = c.schedule.threads
        if threads is None and self.info.enabled and self.device.type == "cpu":
            import os

            threads = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", self.info.world_size)))
        if threads:
            torch.set_num_threads(int(threads))
        ddp.setup(self.info, self.device)
        previous_handlers = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous_handlers[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: the caller handles signals
            previous_handlers = {}
        try:
            return self._run(main)
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            taps = getattr(self, "taps", None)
            if taps is not None:
                taps.close()
            ddp.teardown()

    def _run(self, main: bool) -> TrainResult:
        c = self.config
        self.best = math.inf
        self._build()
        self._load_data()
        start = self._restore()
        log_path = self.out_dir / "train.csv"
        log = None
        if main:
            write_run_files(self.out_dir, c, self.argv)
            if start:
                truncate_log(log_path, start)
            log = StepLog(log_path, append=start > 0)
            self._announce(start)
        shards = open(self.out_dir / "shards.jsonl", "a" if start else "w") if main and c.output.log_shards else None
        from tqdm import tqdm

        bar = tqdm(total=c.schedule.steps, initial=start, disable=not (main and self.progress), unit="step",
                   desc=f"train {c.model.config.variant}", dynamic_ncols=True)
        self.student.train()
        if c.schedule.freeze_bn:
            freeze_batchnorm(self.student)
        self._t_start = time.perf_counter()
        step = start
        checkpoint: Optional[Path] = None
        interrupted = False
        try:
            while step < c.schedule.steps:
                t0 = time.perf_counter()
                row = self._step(step)
                step += 1
                row["step"] = step
                row["epoch"] = (step - 1) // self.steps_per_epoch
                row["images_per_s"] = c.schedule.batch_size * self.info.world_size / (time.perf_counter() - t0)
                row["elapsed_s"] = self._elapsed()
                if c.output.check_sync:
                    row["param_spread"] = ddp.parameter_spread(self.student, self.info)
                # every rank takes part in the gather (only rank 0 writes what it gathered)
                indices = row.pop("indices")
                all_indices = ddp.gather_objects(indices, self.info) if c.output.log_shards else None
                if step % c.output.validate_every == 0 or step == c.schedule.steps:
                    if main:
                        with self._shipped_weights():
                            metrics = self._validate()
                            if metrics is not None and metrics["abs_rel"] < self.best:
                                self.best = metrics["abs_rel"]
                                save_state_dict(self.student, self.out_dir / "best.pth")
                        if metrics is not None:
                            row["val_abs_rel"], row["val_delta1"] = metrics["abs_rel"], metrics["delta1"]
                            bar.set_postfix(val_abs_rel=f"{metrics['abs_rel']:.4f}")
                        self.student.train()
                        if c.schedule.freeze_bn:
                            freeze_batchnorm(self.student)
                    ddp.barrier(self.info)
                if main:
                    log.write(row)
                    if shards is not None:
                        shards.write(json.dumps({"step": step, "ranks": all_indices}) + "\n")
                        shards.flush()
                    bar.update(1)
                    bar.set_description(f"train {c.model.config.variant} loss {row['loss']:.4f}")
                if self.stop_after is not None and step >= self.stop_after:
                    self._stop = True
                stop = ddp.any_true(self._stop, self.info, self.device)
                if step % c.output.checkpoint_every == 0 or stop or step == c.schedule.steps:
                    if main:
                        checkpoint = self._save_resume(step)
                    ddp.barrier(self.info)
                if stop and step < c.schedule.steps:
                    interrupted = True
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
            if shards is not None:
                shards.close()
        result = TrainResult(step, interrupted, self.out_dir, checkpoint)
        if interrupted:
            if main:
                print(f"stopped at step {step}; checkpoint {checkpoint}; continue with --resume {checkpoint}")
            return result
        if main:
            result.final_weights, result.card, result.heldout = self._finish(step, log_path)
        ddp.barrier(self.info)
        return result

    def _announce(self, start: int) -> None:
        c = self.config
        lines = [f"training {c.model.config.name} on {self.device}, "
                 f"{self.info.world_size} process(es), input {self.input_hw[0]}x{self.input_hw[1]}, "
                 f"crop {self.augment.output_hw[0]}x{self.augment.output_hw[1]}"]
        if self.init_report is not None:
            lines.append(f"student from {c.model.init}: {self.init_report.summary()}")
        if self.skipped_layers:
            lines.append(f"feature layers skipped (shapes differ from the teacher's): {', '.join(self.skipped_layers)}")
        lines.append(f"data: {len(self.train_set)} frames ({self.train_set.frames_with_gt()} with ground truth); "
                     f"validation: {', '.join(f'{k} ({len(v)})' for k, v in self.val_sets.items()) or 'none'}")
        if start:
            lines.append(f"resuming at step {start} from {self.resume_path}")
        print("\n".join(lines), flush=True)


def train(config: TrainConfig, resume: Optional[str] = None, argv: Sequence[str] = (), progress: bool = True,
          stop_after: Optional[int] = None) -> TrainResult:
    return Trainer(config, resume=resume, argv=argv, progress=progress, stop_after=stop_after).run()
