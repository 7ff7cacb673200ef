"""Differential entropy of a sample of embeddings, in nats, the two ways the study measures it
(``specs/attention-variants.md``, "embedding entropy"): the Gaussian entropy of the sample's
covariance and the Kozachenko-Leonenko k-nearest-neighbour estimator. Both take an (n, d) array
of n samples in d dimensions; lower means more concentrated embeddings."""

from __future__ import annotations

import math

import numpy as np

# A covariance whose smallest eigenvalue is below this fraction of its largest is called singular:
# its log-determinant would measure round-off, not spread.
SINGULAR_RATIO = 1e-12


def _samples(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} needs an (n, d) array of n samples in d dimensions, got shape {x.shape}")
    n, d = x.shape
    if d < 1:
        raise ValueError(f"{what} needs at least one dimension, got shape {x.shape}")
    if n <= d:
        raise ValueError(f"{what} needs more samples than dimensions (n > d), got n={n} samples in d={d} "
                         "dimensions: the covariance of so few samples is singular. Use more samples or project "
                         "them onto fewer dimensions (e.g. principal_components)")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: the samples contain NaN or infinite values")
    return x


def gaussian_entropy(x: np.ndarray) -> float:
    """H = 1/2 (d ln(2 pi e) + ln det Sigma) of the sample covariance Sigma (ddof 1): the entropy of
    the Gaussian with the sample's covariance, an upper bound of the entropy of any distribution
    with that covariance. ValueError where n <= d or Sigma is singular (no regularisation is added)."""
    x = _samples(x, "gaussian_entropy")
    d = x.shape[1]
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    eigenvalues = np.linalg.eigvalsh(cov)
    largest = float(eigenvalues[-1])
    if largest <= 0 or float(eigenvalues[0]) <= SINGULAR_RATIO * largest:
        rank = int(np.sum(eigenvalues > SINGULAR_RATIO * max(largest, 0.0)))
        raise ValueError(f"gaussian_entropy: the covariance of the {x.shape[0]} samples is singular (rank {rank} "
                         f"of {d}): some dimensions are constant or linear combinations of others; drop them or "
                         "project the samples onto their principal components")
    return 0.5 * (d * math.log(2.0 * math.pi * math.e) + float(np.sum(np.log(eigenvalues))))


def log_unit_ball_volume(d: int) -> float:
    """ln V_d, V_d = pi^(d/2) / Gamma(d/2 + 1) the volume of the unit Euclidean d-ball."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def knn_entropy(x: np.ndarray, k: int = 5) -> float:
    """The Kozachenko-Leonenko estimator H = psi(n) - psi(k) + ln V_d + (d / n) sum_i ln r_k,i,
    r_k,i the Euclidean distance from sample i to its k-th nearest other sample. ValueError where
    n <= d, n <= k, or samples coincide (a k-th neighbour at distance 0)."""
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    if int(k) != k or k < 1:
        raise ValueError(f"knn_entropy: k must be a positive integer, got {k!r}")
    k = int(k)
    x = _samples(x, "knn_entropy")
    n, d = x.shape
    if n <= k:
        raise ValueError(f"knn_entropy needs more than k={k} samples, got n={n}")
    distances, _ = cKDTree(x).query(x, k=k + 1)  # the first neighbour of each sample is itself
    r_k = distances[:, k]
    if np.any(r_k <= 0):
        raise ValueError(f"knn_entropy: {int(np.sum(r_k <= 0))} samples have {k} or more identical copies "
                         "(a k-th neighbour at distance 0); the estimator needs distinct samples")
    return float(digamma(n) - digamma(k) + log_unit_ball_volume(d) + d * np.mean(np.log(r_k)))


def principal_components(x: np.ndarray, dims: int) -> np.ndarray:
    """The centred samples projected onto their ``dims`` leading principal components, (n, dims):
    entropy needs n > dims, and embeddings of a small test set often have more dimensions than
    samples. A rotation keeps entropy; dropping the weakest directions measures the entropy of the
    strongest ``dims`` ones."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"principal_components needs an (n, d) array, got shape {x.shape}")
    if not 1 <= dims <= x.shape[1]:
        raise ValueError(f"principal_components: dims must be in 1..{x.shape[1]}, got {dims}")
    centred = x - x.mean(axis=0)
    # right singular vectors = eigenvectors of the covariance, strongest first
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dims].T
