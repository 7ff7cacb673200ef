"""Turning an image into metres, whatever runs the network.

``DepthEstimator``, ``EstimatorConfig`` and ``Timing`` are imported when first asked for, so that
``processing`` (pre- and post-processing) and the other light modules load without the backends."""

from __future__ import annotations

__all__ = ["DepthEstimator", "EstimatorConfig", "Timing"]


def __getattr__(name: str):
    if name in __all__:
        from depth_attn.inference import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
