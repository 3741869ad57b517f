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


# --------------------------------------------------------------------------------------
# Imagination: draw diversity, precision/recall, density/coverage
# --------------------------------------------------------------------------------------


def _clusters(num_modes: int, per_mode: int, dims: int, seed: int, spread: float = 0.1):
    """(num_modes * per_mode, dims) points around far-apart centres, and their mode."""
    rng = np.random.default_rng(seed)
    centres = 100.0 * np.eye(num_modes, dims)
    modes = np.repeat(np.arange(num_modes), per_mode)
    return centres[modes] + spread * rng.normal(size=(len(modes), dims)), modes


def test_same_samples_give_full_precision_recall_coverage_and_density_k_plus_1_over_k():
    features = np.random.default_rng(4).normal(size=(300, 6))
    result = metrics.precision_recall_density_coverage(features, features, k=5)
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0
    # Each real ball holds the point's own copy and copies of its k neighbours.
    assert result["density"] == pytest.approx(6 / 5)
    assert result["k"] == 5


def test_independent_samples_of_one_distribution_meet_the_expected_density_and_coverage():
    rng = np.random.default_rng(5)
    real, generated = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    result = metrics.precision_recall_density_coverage(real, generated, k=5)
    expected_coverage = 1 - np.prod([(1000 - i) / (2000 - i) for i in range(1, 6)])  # 0.969
    assert result["density"] == pytest.approx(1.0, abs=0.1)  # E = 1 exactly; std ~0.025
    assert result["coverage"] == pytest.approx(expected_coverage, abs=0.02)  # std ~0.006
    assert 0.9 < result["precision"] < 1 and 0.9 < result["recall"] < 1  # k-NN noise, 8-D


def test_far_apart_clusters_score_zero():
    real, _ = _clusters(1, 50, 4, seed=6)
    generated = real + 1000.0
    result = metrics.precision_recall_density_coverage(real, generated, k=5)
    assert [result[key] for key in ("precision", "recall", "density", "coverage")] == [0] * 4


def test_generator_collapsed_onto_one_real_point():
    # Modes of k + 1 = 6 points: every point's k nearest neighbours are the rest of its mode.
    num_modes, per_mode = 4, 6
    real, _ = _clusters(num_modes, per_mode, 6, seed=7)
    copies = np.repeat(real[:1], 40, axis=0)
    result = metrics.precision_recall_density_coverage(real, copies, k=5)
    assert result["precision"] == 1.0
    assert result["coverage"] == 1 / num_modes  # the balls of mode 0's points hold the copies
    assert result["density"] == pytest.approx(per_mode / 5)  # each copy is in 6 balls
    # The copies' own radii are 0: their manifold is that one point, found among the reals.
    assert result["recall"] == 1 / (num_modes * per_mode)
    labels = np.zeros(10, np.int64)
    draws = np.repeat(copies[:10, None, :], 4, axis=1)  # 10 sounds, 4 identical draws
    diversity = metrics.draw_diversity(draws, labels, real, np.zeros(len(real), np.int64), 1)
    assert diversity["per_class"] == [0.0] and diversity["mean"] == 0.0


def test_generator_that_makes_one_mode_only():
    num_modes = 4
    real, _ = _clusters(num_modes, 200, 4, seed=8)
    one_mode, _ = _clusters(1, 400, 4, seed=9)  # fresh samples of mode 0
    result = metrics.precision_recall_density_coverage(real, one_mode, k=5)
    assert result["precision"] > 0.9
    assert result["recall"] == pytest.approx(1 / num_modes, abs=0.03)
    assert result["coverage"] == pytest.approx(1 / num_modes, abs=0.03)


def test_precision_recall_density_coverage_by_hand():
    # k = 1 on a line in 2-D. Real A=0, B=2, C=10, D=11: radii 2, 2, 1, 1.
    # Generated P=1, Q=4, R=12, S=21: radii 3, 3, 8, 9.
    real = np.array([[0, 0], [2, 0], [10, 0], [11, 0]], float)
    generated = np.array([[1, 0], [4, 0], [12, 0], [21, 0]], float)
    np.testing.assert_array_equal(metrics.knn_radii(real, k=1), [2, 2, 1, 1])
    np.testing.assert_array_equal(metrics.knn_radii(generated, k=1), [3, 3, 8, 9])
    result = metrics.precision_recall_density_coverage(real, generated, k=1)
    # Real balls holding P: A, B; Q: B (on its boundary, |Q - B| = 2); R: D (boundary); S: none.
    assert result["precision"] == 3 / 4
    assert result["density"] == (2 + 1 + 1 + 0) / (1 * 4)
    # A and B hold P; D holds R; C's nearest generated point, R, is 2 > 1 away.
    assert result["coverage"] == 3 / 4
    # A, B within P's radius 3; C, D within R's radius 8.
    assert result["recall"] == 1.0


def test_knn_radii_count_copies_as_neighbours_at_distance_zero():
    points = np.array([[0, 0], [0, 0], [3, 4], [6, 8]], float)
    np.testing.assert_array_equal(metrics.knn_radii(points, k=1), [0, 0, 5, 5])
    np.testing.assert_array_equal(metrics.knn_radii(points, k=2), [5, 5, 5, 10])


def test_draw_spread_and_diversity_by_hand():
    # Sound 0: draws at 0, (3, 4), 0 -> distances 5, 0, 5 over 3 pairs; sound 1: all equal.
    draws = np.array([[[0, 0], [3, 4], [0, 0]], [[1, 1], [1, 1], [1, 1]]], float)
    np.testing.assert_allclose(metrics.draw_spread(draws), [10 / 3, 0.0])
    real = np.array([[0, 0], [0, 10], [5, 5], [6, 5]], float)  # class 0: 10 apart; 1: 1
    result = metrics.draw_diversity(draws, np.array([0, 1]), real, np.array([0, 0, 1, 1]), 3)
    np.testing.assert_allclose(result["real_per_class"][:2], [10.0, 1.0])
    np.testing.assert_allclose(result["per_class"][:2], [1 / 3, 0.0])
    assert np.isnan(result["per_class"][2])  # no sounds, no real images
    assert result["mean"] == pytest.approx(1 / 6)


def test_same_class_draw_diversity_counts_only_draws_judged_one_class():
    # Sound 0: draws at 0, (3, 4), 0 judged 0, 1, 0 -> one agreeing pair (draws 0 and 2,
    # distance 0); sound 1: draws 0 and 1 judged 1, 5 apart, draw 2 judged 0.
    draws = np.array([[[0, 0], [3, 4], [0, 0]], [[5, 5], [5, 10], [0, 0]]], float)
    judged = np.array([[0, 1, 0], [1, 1, 0]])
    real = np.array([[0, 0], [0, 10], [5, 5], [6, 5]], float)  # class 0: 10 apart; 1: 1
    real_spread = metrics.mean_pairwise_distances(real, np.array([0, 0, 1, 1]), 3)
    result = metrics.same_class_draw_diversity(draws, judged, real_spread)
    np.testing.assert_allclose(result["per_class"][:2], [0.0, 5.0])
    assert np.isnan(result["per_class"][2])  # no draws judged class 2
    assert result["mean"] == pytest.approx(2.5)
    assert result["agreeing_pairs"] == pytest.approx(2 / 6) and result["pairs"] == 2


def test_draws_as_varied_as_real_images_give_a_ratio_near_one():
    rng = np.random.default_rng(10)
    num_classes, sounds_per_class, num_draws, dims = 3, 60, 4, 8
    scales = np.array([1.0, 2.0, 0.5])  # each class its own spread
    real_labels = np.repeat(np.arange(num_classes), 300)
    real = rng.normal(size=(len(real_labels), dims)) * scales[real_labels, None]
    labels = np.repeat(np.arange(num_classes), sounds_per_class)
    draws = rng.normal(size=(len(labels), num_draws, dims)) * scales[labels, None, None]
    result = metrics.draw_diversity(draws, labels, real, real_labels, num_classes)
    np.testing.assert_allclose(result["per_class"], 1.0, atol=0.05)
    assert result["mean"] == pytest.approx(1.0, abs=0.03)
    np.testing.assert_allclose(result["real_per_class"], result["draws_per_class"], rtol=0.05)


def test_chunked_and_whole_matrix_computations_agree():
    rng = np.random.default_rng(11)
    real = rng.normal(size=(130, 5))
    generated = np.concatenate([real[:20], rng.normal(size=(90, 5)), real[:3]])  # copies: ties
    whole = metrics.precision_recall_density_coverage(real, generated, k=3)
    chunked = metrics.precision_recall_density_coverage(real, generated, k=3, chunk_size=7)
    assert chunked == whole
    np.testing.assert_array_equal(
        metrics.knn_radii(generated, 3, chunk_size=1), metrics.knn_radii(generated, 3)
    )
    draws = rng.normal(size=(50, 3, 5))
    np.testing.assert_array_equal(
        metrics.draw_spread(draws, chunk_size=4), metrics.draw_spread(draws)
    )


def test_imagination_metrics_reject_input_they_cannot_use():
    rng = np.random.default_rng(12)
    real, generated = rng.normal(size=(5, 3)), rng.normal(size=(20, 3))
    with pytest.raises(metrics.FeatureError, match="real features: 5 records.*k \\+ 1 = 6"):
        metrics.precision_recall_density_coverage(real, generated, k=5)
    with pytest.raises(metrics.FeatureError, match="generated features: 20 records"):
        metrics.precision_recall_density_coverage(rng.normal(size=(30, 3)), generated, k=20)
    with pytest.raises(metrics.FeatureError, match="3 features per record, real .* have 4"):
        metrics.precision_recall_density_coverage(rng.normal(size=(20, 4)), generated)
    with pytest.raises(ValueError, match="NaN or infinite.*record 2"):  # also a ValueError
        metrics.precision_recall_density_coverage(
            np.where(np.arange(20)[:, None] == 2, np.nan, generated), generated
        )
    with pytest.raises(metrics.FeatureError, match="1 draw per sound.*K >= 2"):
        metrics.draw_spread(rng.normal(size=(4, 1, 3)))
    with pytest.raises(metrics.FeatureError, match=r"expected \(N, K, F\)"):
        metrics.draw_spread(rng.normal(size=(4, 3)))
    with pytest.raises(metrics.FeatureError, match="labels: class 3 at record 1 is outside 0..2"):
        metrics.draw_diversity(
            rng.normal(size=(2, 2, 3)), np.array([0, 3]), generated, np.zeros(20, int), 3
        )


def test_a_groups_interval_resamples_its_sounds_together_and_does_not_collapse():
    """Two sounds a class, each class's two alike: resampling within the classes sees no
    spread at all; resampling the group's sounds together sees it, and equals a plain loop."""
    labels = np.repeat(np.arange(10), 2)
    scores = np.repeat([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0], 2)
    within = metrics.bootstrap_summary(scores, labels, 10, 500, seed=3)["ci"]
    group = metrics.group_bootstrap_summary(scores, labels, 10, 500, seed=3)
    assert within == [0.4, 0.4] and group["mean"] == pytest.approx(0.4)
    draws = np.random.default_rng(3).integers(0, 20, (500, 20))
    looped = [
        np.mean([scores[d][labels[d] == c].mean() for c in np.unique(labels[d])]) for d in draws
    ]
    np.testing.assert_allclose(group["ci"], np.percentile(looped, [2.5, 97.5]))
    assert group["ci"][0] <= 0.25 and group["ci"][1] >= 0.5
