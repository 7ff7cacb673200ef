"""The two entropy estimators against closed forms: a known Gaussian and a uniform square."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_attn.evaluation.entropy import gaussian_entropy, knn_entropy, principal_components


def test_gaussian_d8_both_estimators_within_0_1_nats():
    rng = np.random.default_rng(0)
    d = 8
    mixing = rng.normal(size=(d, d))
    cov = mixing @ mixing.T / d + 0.5 * np.eye(d)
    assert np.abs(cov - np.diag(np.diag(cov))).max() > 0.1  # correlated dimensions
    x = rng.multivariate_normal(np.full(d, 3.0), cov, size=5000)
    closed_form = 0.5 * (d * math.log(2 * math.pi * math.e) + math.log(np.linalg.det(cov)))
    assert gaussian_entropy(x) == pytest.approx(closed_form, abs=0.1)
    assert knn_entropy(x, k=5) == pytest.approx(closed_form, abs=0.1)


def test_uniform_square_knn_near_log_area_gaussian_above():
    rng = np.random.default_rng(1)
    side = 2.5  # area 6.25
    x = rng.uniform(-1.0, -1.0 + side, size=(5000, 2))
    log_area = math.log(side * side)
    assert knn_entropy(x) == pytest.approx(log_area, abs=0.1)
    gaussian = gaussian_entropy(x)
    # the Gaussian of the same covariance (side^2 / 12 per axis) bounds it from above
    assert gaussian > log_area + 0.3
    assert gaussian == pytest.approx(log_area + math.log(2 * math.pi * math.e / 12), abs=0.05)


@pytest.mark.parametrize("estimator", [gaussian_entropy, knn_entropy])
def test_too_few_samples_refused(estimator):
    x = np.random.default_rng(2).normal(size=(8, 8))
    with pytest.raises(ValueError, match=r"more samples than dimensions \(n > d\).*n=8.*d=8"):
        estimator(x)
    with pytest.raises(ValueError, match=r"\(n, d\) array"):
        estimator(np.zeros(10))


def test_singular_covariance_and_duplicates_refused():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 3))
    x[:, 2] = x[:, 0] - 2 * x[:, 1]  # a linear combination: rank 2
    with pytest.raises(ValueError, match="singular.*rank 2 of 3"):
        gaussian_entropy(x)
    repeated = np.repeat(rng.normal(size=(20, 2)), 6, axis=0)
    with pytest.raises(ValueError, match="identical copies"):
        knn_entropy(repeated, k=5)


def test_principal_components_keep_the_entropy_of_a_rotation():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 3)) * [3.0, 1.0, 0.01]
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = x @ rotation.T
    # the two strong directions are kept and the weak one dropped, whatever the rotation
    assert gaussian_entropy(principal_components(rotated, 2)) == pytest.approx(gaussian_entropy(x[:, :2]), abs=1e-3)
