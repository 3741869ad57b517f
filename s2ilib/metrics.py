"""Metric math of the evaluation, batched: class means, bootstrap CIs, Frechet, SSIM, PSNR.

Pure numpy/torch functions of arrays, no models and no files, so that each one can be
checked against a closed form (tests/test_metrics.py). Per-sample scores are computed for
whole batches at once; Python loops run over classes only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CI_LEVEL = 0.95  # two-sided confidence level of every interval the evaluation reports


# --------------------------------------------------------------------------------------
# Per-class summaries and bootstrap intervals
# --------------------------------------------------------------------------------------


def class_means(scores, labels, num_classes: int) -> np.ndarray:
    """Mean of `scores` over the records of each class; NaN for a class with no records."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    totals = np.bincount(labels, weights=scores, minlength=num_classes)[:num_classes]
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def mean_over_classes(scores, labels, num_classes: int) -> float:
    """The headline form: per-class means, then their plain mean over the classes present."""
    means = class_means(scores, labels, num_classes)
    return float(np.nanmean(means)) if np.isfinite(means).any() else float("nan")


def bootstrap_class_means(
    scores, labels, num_classes: int, num_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """(num_resamples, num_classes) per-class means of stratified bootstrap resamples.

    Records are resampled with replacement *within* each class (the class sizes stay fixed,
    as they are by construction of the test set); one vectorised draw per class.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    means = np.full((num_resamples, num_classes), np.nan)
    for label in range(num_classes):
        members = scores[labels == label]
        if len(members):
            draws = rng.integers(0, len(members), size=(num_resamples, len(members)))
            means[:, label] = members[draws].mean(axis=1)
    return means


def percentile_interval(samples, level: float = CI_LEVEL, axis: int = 0) -> np.ndarray:
    """Two-sided percentile interval [low, high] of bootstrap `samples` along `axis`."""
    tail = 100 * (1 - level) / 2
    return np.nanpercentile(np.asarray(samples, np.float64), [tail, 100 - tail], axis=axis)


def bootstrap_summary(
    scores,
    labels,
    num_classes: int,
    num_resamples: int = 1000,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict:
    """Per-class means and their mean, each with a bootstrap percentile interval.

    Returns {"mean", "ci": [low, high], "per_class", "per_class_ci": [[low, high], ...]}.
    `num_resamples=0` skips the intervals (they come back as NaN).
    """
    per_class = class_means(scores, labels, num_classes)
    present = np.isfinite(per_class)
    summary = {"mean": float(np.mean(per_class[present])) if present.any() else float("nan")}
    if num_resamples > 0 and present.any():
        resampled = bootstrap_class_means(scores, labels, num_classes, num_resamples, seed)
        overall = resampled[:, present].mean(axis=1)
        summary["ci"] = percentile_interval(overall, level).tolist()
        with np.errstate(all="ignore"):
            per_class_ci = percentile_interval(resampled, level, axis=0).T
    else:
        summary["ci"] = [float("nan")] * 2
        per_class_ci = np.full((num_classes, 2), np.nan)
    summary["per_class"] = per_class.tolist()
    summary["per_class_ci"] = per_class_ci.tolist()
    return summary


def confusion_matrix(true_labels, predicted, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    true_labels = np.asarray(true_labels, np.int64)
    predicted = np.asarray(predicted, np.int64)
    flat = np.bincount(true_labels * num_classes + predicted, minlength=num_classes**2)
    return flat[: num_classes**2].reshape(num_classes, num_classes)


# --------------------------------------------------------------------------------------
# Distribution distances in a feature space
# --------------------------------------------------------------------------------------


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of (N, F) features, in float64."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"expected (N, F) features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(
        features.shape[1], features.shape[1]
    )


def gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b), squared form.

    |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)). The trace of the matrix square root
    is taken as the sum of square roots of the eigenvalues of C_a^(1/2) C_b C_a^(1/2), which
    is symmetric PSD, so no complex sqrtm is needed (negative round-off is clipped).
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(distance, 0.0))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two (N, F) feature sets (FID's formula)."""
    return gaussian_frechet_distance(
        *gaussian_statistics(features_a), *gaussian_statistics(features_b)
    )


def mean_pairwise_distances(
    features, labels, num_classes: int, max_per_class: int = 2000, seed: int = 0
) -> np.ndarray:
    """Per class, the mean Euclidean distance between two different records of that class.

    Classes with more than `max_per_class` records use a seeded random subset (the pairwise
    matrix grows quadratically); NaN for a class with fewer than two records.
    """
    features = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    distances = np.full(num_classes, np.nan)
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if len(members) > max_per_class:
            members = rng.choice(members, max_per_class, replace=False)
        if len(members) >= 2:
            group = features[torch.as_tensor(members)]
            pair_sum = torch.cdist(group, group).sum().item()  # the diagonal is zero
            distances[label] = pair_sum / (len(members) * (len(members) - 1))
    return distances


# --------------------------------------------------------------------------------------
# Pixel-space agreement, batched over images (B, C, H, W) in [0, 1]
# --------------------------------------------------------------------------------------


def l1_error(images, targets) -> torch.Tensor:
    """(B,) mean absolute pixel difference."""
    return (images - targets).abs().flatten(1).mean(dim=1)


def psnr(images, targets, data_range: float = 1.0) -> torch.Tensor:
    """(B,) peak signal-to-noise ratio in dB; +inf where the images are identical."""
    mse = (images - targets).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian (SSIM's window is its outer product with itself)."""
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    window = torch.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def ssim(
    images,
    targets,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """(B,) structural similarity (Wang et al. 2004), mean over channels and valid positions.

    Gaussian window (11, sigma 1.5) applied separably as depthwise convolutions, no padding
    (as scikit-image's `gaussian_weights=True` without edge handling); images smaller than
    the window use a window of the image's size.
    """
    channels, height, width = images.shape[1:]
    window_size = min(window_size, height, width)
    window = gaussian_window(window_size, sigma, images.dtype).to(images.device)
    rows = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def blur(x):
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mean_x, mean_y = blur(images), blur(targets)
    var_x = blur(images * images) - mean_x**2
    var_y = blur(targets * targets) - mean_y**2
    cov_xy = blur(images * targets) - mean_x * mean_y
    numerator = (2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)
