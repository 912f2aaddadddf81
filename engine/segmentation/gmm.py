"""Colour models for weakly supervised segmentation, Simonyan, Vedaldi & Zisserman (2013), §3.2.

Foreground and background colours are Gaussian mixtures (5 components, full covariance, as in the
Oxford reference code and GrabCut), fitted on seed pixels by EM from a k-means++ start. Everything
here is plain numpy with an explicit ``np.random.Generator``; covariances are regularised so that a
one-colour region (a singular covariance) still gives a finite likelihood.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPONENTS = 5  # the reference code's (and GrabCut's) mixture size
EM_ITERATIONS = 4  # a few EM steps after k-means++; more changes the cut very little
MAX_SAMPLES = 4000  # EM runs on at most this many seed pixels, drawn with the caller's rng
COVARIANCE_FLOOR = 4.0  # added to the diagonal, in (0..255 grey levels)²: a 2-level standard deviation
_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """A mixture of full-covariance Gaussians over RGB colours in 0..255."""

    weights: np.ndarray  # (K,) non-negative, sums to 1; an empty component has weight 0
    means: np.ndarray  # (K, 3)
    covariances: np.ndarray  # (K, 3, 3), positive definite

    def to_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "covariances": self.covariances.tolist()}


def fit_gmm(
    samples_n3: np.ndarray,
    *,
    components: int = COMPONENTS,
    iterations: int = EM_ITERATIONS,
    rng: np.random.Generator,
    start: GaussianMixture | None = None,
    max_samples: int = MAX_SAMPLES,
) -> GaussianMixture:
    """Fit a mixture to ``samples_n3`` (N, 3) colours: k-means++ (or ``start``), then EM."""
    samples = np.asarray(samples_n3).reshape(-1, 3)
    if len(samples) == 0:
        raise ValueError("Cannot fit a colour model to no pixels.")
    if components < 1:
        raise ValueError(f"A mixture needs at least one component; got {components}.")
    if len(samples) > max_samples:
        samples = samples[rng.choice(len(samples), max_samples, replace=False)]
    samples = samples.astype(np.float64)
    if start is None:
        centres = _kmeans_plus_plus(samples, components, rng)
        nearest = _squared_distances(samples, centres).argmin(1)
        responsibilities = np.eye(components)[nearest]  # (N, K) hard start
    else:
        responsibilities = _responsibilities(start, samples)
    model = _maximise(samples, responsibilities)
    for _ in range(iterations):
        model = _maximise(samples, _responsibilities(model, samples))
    return model


def log_likelihood(model: GaussianMixture, colours_n3: np.ndarray) -> np.ndarray:
    """log p(z) under ``model`` for each of the (N, 3) colours, as float64 (N,)."""
    return _logsumexp(_component_log_densities(model, colours_n3), axis=1)


def _kmeans_plus_plus(samples: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Arthur & Vassilvitskii (2007) seeding: each new centre drawn with probability ∝ D²."""
    centres = [samples[rng.integers(len(samples))]]
    closest = ((samples - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = closest.sum()
        index = rng.integers(len(samples)) if total <= 0 else rng.choice(len(samples), p=closest / total)
        centres.append(samples[index])
        closest = np.minimum(closest, ((samples - samples[index]) ** 2).sum(1))
    return np.stack(centres)  # (K, 3); duplicates when there are fewer distinct colours than K


def _squared_distances(samples: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return ((samples[:, None, :] - centres[None, :, :]) ** 2).sum(-1)  # (N, K)


def _maximise(samples: np.ndarray, responsibilities: np.ndarray) -> GaussianMixture:
    """M-step. Components that own no pixels keep weight 0 (and a harmless unit-free covariance)."""
    counts = responsibilities.sum(0)  # (K,)
    weights = counts / counts.sum()
    safe = np.maximum(counts, 1e-12)[:, None]
    means = responsibilities.T @ samples / safe  # (K, 3)
    covariances = np.empty((len(counts), 3, 3))
    for k in range(len(counts)):
        centred = samples - means[k]
        covariances[k] = (responsibilities[:, k, None] * centred).T @ centred / safe[k]
    covariances += COVARIANCE_FLOOR * np.eye(3)
    weights[counts < 1e-9] = 0.0
    return GaussianMixture(weights, means, covariances)


def _responsibilities(model: GaussianMixture, samples: np.ndarray) -> np.ndarray:
    log_joint = _component_log_densities(model, samples)  # (N, K)
    log_joint -= _logsumexp(log_joint, axis=1)[:, None]
    return np.exp(log_joint)


def _component_log_densities(model: GaussianMixture, colours_n3: np.ndarray) -> np.ndarray:
    """log π_k + log N(z | μ_k, Σ_k) for every colour and component, float32 (N, K).

    With Σ = L Lᵀ, the Mahalanobis distance is ‖L⁻¹(z - μ)‖², and L⁻¹ is lower triangular: six
    multiply-adds per colour, written out over contiguous channel arrays (faster than a tiny BLAS call).
    """
    channels = np.ascontiguousarray(np.asarray(colours_n3, dtype=np.float32).reshape(-1, 3).T)  # (3, N)
    out = np.full((len(model.weights), channels.shape[1]), -np.inf, np.float32)  # (K, N)
    for k in np.flatnonzero(model.weights > 0):
        chol = np.linalg.cholesky(model.covariances[k])
        a = np.linalg.inv(chol).astype(np.float32)  # lower triangular
        d0, d1, d2 = (channels[c] - np.float32(model.means[k, c]) for c in range(3))
        y1 = a[1, 0] * d0 + a[1, 1] * d1
        y2 = a[2, 0] * d0 + a[2, 1] * d1 + a[2, 2] * d2
        d0 *= a[0, 0]
        mahalanobis = d0 * d0 + y1 * y1 + y2 * y2
        constant = np.log(model.weights[k]) - 0.5 * (3 * _LOG_2PI + 2.0 * np.log(np.diag(chol)).sum())
        out[k] = np.float32(constant) - 0.5 * mahalanobis
    return out.T


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    peak = values.max(axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return (np.log(np.exp(values - peak).sum(axis=axis, keepdims=True)) + peak).squeeze(axis)
