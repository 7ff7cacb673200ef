"""ONNX export at a fixed input size: opset 17, input ``image`` (1, 3, H, W) float32 RGB in [0, 1],
output ``depth`` (1, 1, h, w) float32 in the network's unit, ``onnx.checker`` clean.

Exporter: the TorchScript-based one (``dynamo=False``) by default. It writes opset 17 directly,
which TensorRT 8.6's ONNX parser (JetPack 6) supports, while the dynamo exporter of this torch
writes opset 18 and cannot down-convert some ops (Pad) to 17; it is also about 3x faster to export.
The dynamo exporter is used when asked for, or as a fallback when the TorchScript one fails or
is gone from a future torch.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "depth"
DEFAULT_OPSET = 17
MIN_OPSET = 17
DYNAMO_MIN_OPSET = 18  # the lowest opset this torch's dynamo exporter has implementations for
EXPORTERS = ("auto", "torchscript", "dynamo")


class ExportError(RuntimeError):
    """A network that could not be exported, or an ONNX file that is not what it should be."""


@dataclass(frozen=True)
class ExportInfo:
    path: Path
    exporter: str
    opset: int
    input_shape: Tuple[int, int, int, int]
    output_shape: Tuple[int, ...]


def export_onnx(
    model: nn.Module,
    path: Path,
    input_hw: Tuple[int, int],
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> ExportInfo:
    """Export ``model`` (moved to CPU fp32, eval mode) for a (1, 3, H, W) input; checks the file."""
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: use {MIN_OPSET} or newer")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        model = copy.deepcopy(model).to("cpu", torch.float32)  # leave the caller's (GPU/fp16) model alone
    model = model.eval()
    generator = torch.Generator().manual_seed(0)
    dummy = torch.rand(1, 3, int(input_hw[0]), int(input_hw[1]), generator=generator)

    try:
        with torch.inference_mode():
            model(dummy)
    except Exception as exc:  # not an export problem: say so before any exporter muddies it
        raise ExportError(
            f"the network does not run at input {input_hw[0]}x{input_hw[1]}: {type(exc).__name__}: {exc}"
        ) from exc

    used = exporter
    first_error = ""
    if exporter in ("auto", "torchscript"):
        try:
            _export_torchscript(model, dummy, path, opset)
            used = "torchscript"
        except Exception as exc:
            first_error = f"TorchScript ONNX export failed: {type(exc).__name__}: {exc}"
            if exporter == "torchscript":
                raise ExportError(first_error) from exc
            log.warning("%s; trying the dynamo exporter", first_error)
            used = "dynamo"
    if used == "dynamo":
        opset = max(opset, DYNAMO_MIN_OPSET)
        try:
            _export_dynamo(model, dummy, path, opset)
        except Exception as exc:
            dynamo_error = f"dynamo ONNX export failed: {type(exc).__name__}: {exc}"
            raise ExportError(f"{first_error}; then {dynamo_error}" if first_error else dynamo_error) from exc
    summary = check_onnx(path, input_hw)
    return ExportInfo(path, used, summary["opset"], summary["input_shape"], summary["output_shape"])


def _export_torchscript(model: nn.Module, dummy: torch.Tensor, path: Path, opset: int) -> None:
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # A knowing choice (see the module docstring), not an accident: silence the deprecation notice.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # Strided slices (2x2 patch folding) are left for ONNX Runtime/TensorRT to fold: harmless.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _export_dynamo(model: nn.Module, dummy: torch.Tensor, path: Path, opset: int) -> None:
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (dummy,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        program.save(str(path), external_data=False)


def _dims(value_info) -> Tuple[int, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim)


def check_onnx(path: Path, input_hw: Optional[Tuple[int, int]] = None) -> Dict[str, object]:
    """``onnx.checker`` plus this project's contract: one input ``image`` (1, 3, H, W), one output
    ``depth`` (1, 1, h, w), opset >= 17. Returns a summary; raises ExportError on any breach."""
    import onnx

    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ExportError(f"{path} is not a valid ONNX model: {type(exc).__name__}: {exc}") from exc
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    outputs = list(model.graph.output)
    problems = []
    if [i.name for i in inputs] != [INPUT_NAME]:
        problems.append(f"inputs are {[i.name for i in inputs]}, expected ['{INPUT_NAME}']")
    if [o.name for o in outputs] != [OUTPUT_NAME]:
        problems.append(f"outputs are {[o.name for o in outputs]}, expected ['{OUTPUT_NAME}']")
    if opset < MIN_OPSET:
        problems.append(f"opset {opset} < {MIN_OPSET}")
    input_shape = _dims(inputs[0]) if inputs else ()
    output_shape = _dims(outputs[0]) if outputs else ()
    if input_hw is not None and input_shape != (1, 3, int(input_hw[0]), int(input_hw[1])):
        problems.append(f"input shape {input_shape}, expected (1, 3, {input_hw[0]}, {input_hw[1]})")
    # -1: a dimension the exporter left symbolic (it is fixed in practice: the input is)
    if output_shape and (len(output_shape) != 4 or any(d not in (1, -1) for d in output_shape[:2])):
        problems.append(f"output shape {output_shape}, expected (1, 1, h, w)")
    if problems:
        raise ExportError(f"{path}: " + "; ".join(problems))
    return {"opset": opset, "input_shape": input_shape, "output_shape": output_shape, "nodes": len(model.graph.node)}
