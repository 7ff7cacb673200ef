"""`depth-attn bench` and `depth-attn doctor` on this machine: they run and report sane numbers
(values are checked for consistency, never against a time budget: speed is measured in bench/)."""

from __future__ import annotations

import json

import pytest

from depth_attn.cli import build_parser, main
from depth_attn.inference.backends.tensorrt_backend import tensorrt_version


def test_bench_two_backends_in_one_run(tmp_path, capsys):
    report_path = tmp_path / "bench.json"
    argv = ["bench", "--backends", "torch", "onnxruntime", "--input-size", "64x192", "--camera-size", "120x400",
            "--runs", "6", "--warmup", "1", "--json", str(report_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "p50 relative to torch: onnxruntime" in printed
    assert "timing: each backend in a process of its own, taking turns" in printed
    report = json.loads(report_path.read_text())
    assert report["isolation"] == "processes"
    assert report["model"] == "meter-tiny-base-full" and report["input_hw"] == [64, 192]
    assert [r["backend"] for r in report["results"]] == ["torch", "onnxruntime"]
    for row in report["results"]:
        for part in ("network", "end_to_end"):
            stats = row[part]
            assert stats["runs"] == 6
            assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
            # frames/s of one stream: between what its slowest and its fastest run would give
            assert 1000 / stats["max_ms"] <= stats["throughput_fps"] <= 1000 / stats["min_ms"]
            assert stats["p50_ms"] < 10_000  # a sanity bound on units (ms, not us or s), not a speed test
    assert report["results"][1]["describe"]["providers"] == "CPUExecutionProvider"
    assert report["results"][1]["describe"]["artefact"].startswith("built")


def test_bench_passes_backend_options(tmp_path):
    report_path = tmp_path / "bench.json"
    argv = ["bench", "--backend", "onnxruntime", "--input-size", "64x192", "--runs", "2", "--warmup", "0",
            "--no-end-to-end", "--option", "intra_op_threads=1", "--json", str(report_path)]
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["options"] == {"intra_op_threads": "1"}
    assert report["results"][0]["describe"]["intra_op_threads"] == "1"
    assert "end_to_end" not in report["results"][0]


def test_doctor_reports_versions_devices_and_parity(tmp_path, capsys):
    report_path = tmp_path / "doctor.json"
    assert main(["doctor", "--input-size", "64x192", "--json", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "working backends: onnxruntime, " in printed and "no failures" in printed
    report = json.loads(report_path.read_text())
    assert report["versions"]["torch"] and report["versions"]["onnxruntime"]
    assert report["devices"]["cpu_count"] >= 1 and "CPUExecutionProvider" in report["devices"]["onnxruntime_providers"]
    tests = {(t["backend"], t["device"], t["precision"]): t for t in report["self_test"]}
    reference = tests[("torch", "cpu", "fp32")]
    assert reference["status"] == "pass" and reference["relative_error"] == 0.0
    ort = tests[("onnxruntime", "cpu", "fp32")]
    assert ort["status"] == "pass" and ort["relative_error"] < 1e-4 and ort["latency_ms"] > 0
    assert not [t for t in report["self_test"] if t["status"] == "fail"]
    ov = tests[("openvino", "cpu", "fp32")]
    if report["devices"]["openvino"] == "ok":
        assert ov["status"] == "pass" and ov["relative_error"] < 1e-4 and "openvino" in printed.split("working")[1]
        assert report["versions"]["openvino"] and "CPU" in report["devices"]["openvino_devices"]
    else:
        assert ov["status"] == "skip" and "OpenVINO is not installed" in ov["detail"]
    assert report["devices"]["auto_backend"].split(":")[0] in ("openvino", "onnxruntime", "tensorrt", "torch")
    assert "backend auto " in printed
    if tensorrt_version() is None:
        trt = tests[("tensorrt", "cuda", "fp16")]
        assert trt["status"] == "skip" and "pip install tensorrt" in trt["detail"]


def test_doctor_reports_a_failing_backend(monkeypatch, capsys):
    """A backend that breaks is reported as FAIL with its error, and the exit status says so."""
    from depth_attn.inference import parity

    broken = [("torch", "cpu", "fp32", ""), ("onnxruntime", "cpu", "fp32", ""), ("torch", "cpu", "fp16", "")]
    monkeypatch.setattr(parity, "candidate_backends", lambda: broken)
    assert main(["doctor", "--input-size", "64x192"]) == 1
    printed = capsys.readouterr().out
    assert "fp16  FAIL" in printed and "BackendError: fp16 needs a CUDA device" in printed
    assert "1 FAILED" in printed


@pytest.mark.parametrize("command", ["export", "build-engine", "bench", "doctor"])
def test_help_teaches_use(command, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"depth-attn {command}" in text
