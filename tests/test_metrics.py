"""The evaluation's metric math against hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from s2ilib import metrics


def test_class_means_and_mean_over_classes():
    scores = np.array([1, 0, 1, 1, 0, 0, 0])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(metrics.class_means(scores, labels, 3)[:2], [2 / 3, 1 / 4])
    assert np.isnan(metrics.class_means(scores, labels, 3)[2])  # no records of class 2
    assert metrics.mean_over_classes(scores, labels, 3) == pytest.approx((2 / 3 + 1 / 4) / 2)


def test_confusion_matrix_counts():
    matrix = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert metrics.frechet_distance(features, features) == pytest.approx(0, abs=1e-8)


def test_gaussian_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(1)
    mean_a, mean_b = rng.normal(size=6), rng.normal(size=6)
    half_a, half_b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    cov_a, cov_b = half_a @ half_a.T + 0.1 * np.eye(6), half_b @ half_b.T + 0.1 * np.eye(6)
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(
        cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real
    )
    got = metrics.gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b)
    assert got == pytest.approx(expected, rel=1e-8)
    # Diagonal covariances: sum of (mu difference)^2 + (sigma_a - sigma_b)^2 per dimension.
    diagonal = metrics.gaussian_frechet_distance([0, 0], np.diag([4, 1]), [3, 0], np.diag([1, 9]))
    assert diagonal == pytest.approx(9 + (2 - 1) ** 2 + (1 - 3) ** 2)


def test_frechet_distance_of_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    a = rng.normal([0, 0, 0], [1, 2, 1], size=(200_000, 3))
    b = rng.normal([1, 0, 2], [1, 1, 3], size=(200_000, 3))
    expected = 1 + 4 + (0 + 1 + 4)  # means: 1 + 4; std differences squared: 0, 1, 4
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_records():
    rng = np.random.default_rng(3)
    widths = []
    for per_class in (40, 4000):
        labels = np.repeat(np.arange(3), per_class)
        scores = rng.random(len(labels)) < np.array([0.2, 0.5, 0.8])[labels]
        summary = metrics.bootstrap_summary(scores, labels, 3, num_resamples=500, seed=0)
        low, high = summary["ci"]
        assert low <= summary["mean"] <= high
        for value, (class_low, class_high) in zip(
            summary["per_class"], summary["per_class_ci"], strict=True
        ):
            assert class_low <= value <= class_high
        widths.append(high - low)
    assert widths[1] < widths[0] / 5  # ~ 1/sqrt(100) = 1/10 of the width


def test_bootstrap_of_a_constant_score_has_zero_width():
    labels = np.repeat(np.arange(2), 10)
    summary = metrics.bootstrap_summary(np.ones(20), labels, 2, num_resamples=200)
    assert summary["ci"] == [1.0, 1.0] and summary["mean"] == 1.0


def test_ssim_of_an_image_with_itself_is_one_and_drops_with_noise():
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(metrics.ssim(images, images).numpy(), 1.0, atol=1e-6)
    noisy = (images + 0.3 * torch.randn(images.shape)).clamp(0, 1)
    assert (metrics.ssim(noisy, images) < 0.9).all()


def test_ssim_of_two_flat_images_is_the_luminance_term():
    a = torch.full((1, 1, 16, 16), 0.2, dtype=torch.float64)
    b = torch.full((1, 1, 16, 16), 0.6, dtype=torch.float64)
    c1 = (0.01 * 1.0) ** 2  # variances are 0, so the contrast-structure term is c2/c2 = 1
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert metrics.ssim(a, b).item() == pytest.approx(expected, rel=1e-5)


def test_psnr_and_l1_for_a_known_noise():
    images = torch.full((2, 3, 8, 8), 0.5)
    signs = torch.randint(0, 2, images.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    noisy = images + 0.1 * signs  # |error| = 0.1 everywhere: MSE 0.01 -> PSNR 20 dB
    np.testing.assert_allclose(metrics.psnr(noisy, images).numpy(), 20.0, rtol=1e-5)
    np.testing.assert_allclose(metrics.l1_error(noisy, images).numpy(), 0.1, rtol=1e-5)
    assert torch.isinf(metrics.psnr(images, images)).all()


def test_diversity_of_identical_records_is_zero_and_known_for_two_points():
    labels = np.array([0, 0, 0, 1, 1])
    features = np.array([[1.0, 2.0]] * 3 + [[0.0, 0.0], [3.0, 4.0]])
    distances = metrics.mean_pairwise_distances(features, labels, 3)
    assert distances[0] == 0.0
    assert distances[1] == pytest.approx(5.0)
    assert np.isnan(distances[2])
