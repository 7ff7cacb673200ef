"""Turning an image into metres, whatever runs the network."""

from depth_attn.inference.estimator import DepthEstimator, EstimatorConfig, Timing

__all__ = ["DepthEstimator", "EstimatorConfig", "Timing"]
