"""Metric math of the evaluation, batched: class means, bootstrap CIs, Frechet, diversity,
precision/recall, density/coverage, SSIM, PSNR.

Pure numpy/torch functions of arrays, no models and no files, so that each one can be
checked against a closed form (tests/test_metrics.py). Per-sample scores are computed for
whole batches at once; Python loops run over classes and over blocks of a distance matrix
only (at most MAX_BLOCK_DISTANCES distances are held at once).

What the image measures tell a reader of the report. All are computed on the same features:
the K-way informativity classifier's penultimate activations, trained on the data set's
real training images only, so values compare methods within the workbook, not with papers.

- Frechet distance: how far the generated images' feature distribution (as a Gaussian) is
  from the real images'; 0 for the same distribution, lower is more realistic overall.
- Intra-class diversity ratio: how different two images of one class are, generated over
  real (1.0 = as varied as real images of the class).
- Draw diversity: how different the K images imagined for *one sound* are, over how
  different two real images of that sound's class are. 0 = every draw of a sound is the
  same picture (a lookup, not imagination); 1.0 = one sound's draws vary as much as real
  handwriting of that class does.
- Precision (fidelity, Kynkaanniemi et al. 2019): the share of generated images that fall
  inside the real images' k-NN neighbourhoods, i.e. that look like some real image.
- Recall (variety): the share of real images that fall inside the generated images' k-NN
  neighbourhoods, i.e. the part of the real variety the generator reaches.
- Density (fidelity, Naeem et al. 2020): how many real neighbourhoods a generated image
  falls in, on average, divided by k. Near 1 when generated images sit where real ones do;
  above 1 when they crowd into the densest real regions; below 1 when they stray. Unlike
  precision it is not fooled by a few real outliers with huge neighbourhoods.
- Coverage (variety, Naeem et al. 2020): the share of real images with at least one
  generated image inside their neighbourhood. Unlike recall it is judged on the real
  neighbourhoods only, so a few stray generated images cannot inflate it; a generator that
  makes only one class scores about 1/num_classes.

Reference values, for two independent samples of one distribution (N real, M generated):
density has expectation exactly 1, and coverage 1 - prod_{i=1..k} (N - i) / (N + M - i),
tending to 1 - 2^-k = 0.969 for k = 5 and M = N large (Naeem et al. 2020, who recommend
k = 5).
Precision and recall are below 1 even then, increasingly so in more dimensions: the prdc
package's README gives precision 0.477, recall 0.471, density 1.056, coverage 0.974 for
two 10,000-sample N(0, I) sets in 1,000 dimensions with k = 5; with this module, two
1,000-sample N(0, I) sets score precision and recall nearer 1 in the workbook's 32 feature
dimensions, and nearer still in 8, density and coverage near their expectations. For the very same
samples on both sides, precision = recall = coverage = 1 and density = (k + 1) / k (each
real point's neighbourhood holds its own copy and its k neighbours' copies).
Recall and coverage grow with the number of generated images M, precision and density do
not: compare recall and coverage only between generated sets of the same size (e.g. one
draw per sound, as the baselines have).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib.errors import S2IError

CI_LEVEL = 0.95  # two-sided confidence level of every interval the evaluation reports
MAX_BLOCK_DISTANCES = 2**22  # distances held at once (32 MB in float64): 10k x 10k in blocks


class FeatureError(S2IError, ValueError):
    """Features or labels that a metric cannot be computed from; the message says which."""


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


def balanced_mean(scores, labels, num_classes: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(each class's mean score, which classes have sounds, the mean over those classes:
    class-balanced, as informativity is averaged; NaN when no class has one)."""
    per_class = class_means(scores, labels, num_classes)
    present = np.isfinite(per_class)
    return per_class, present, float(np.mean(per_class[present])) if present.any() else np.nan


def group_bootstrap_summary(
    scores,
    labels,
    num_classes: int,
    num_resamples: int = 1000,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict:
    """{"mean", "ci"} of a small group of sounds (one language, one voice): the mean over
    classes of each class's mean score, its interval from resampling the group's sounds
    together (not within each class: with two sounds of a class, resampling within it
    hides most of the spread and the interval collapses; a class a resample misses is left
    out of that resample's mean). Vectorised: one (resamples, sounds) draw."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    per_class, present, mean = balanced_mean(scores, labels, num_classes)
    if num_resamples <= 0 or not present.any():
        return {"mean": mean, "ci": [float("nan")] * 2}
    draws = np.random.default_rng(seed).integers(0, len(scores), (num_resamples, len(scores)))
    slots = labels[draws] + num_classes * np.arange(num_resamples)[:, None]
    size = num_resamples * num_classes
    totals = np.bincount(slots.ravel(), scores[draws].ravel(), size).reshape(-1, num_classes)
    counts = np.bincount(slots.ravel(), minlength=size).reshape(-1, num_classes)
    with np.errstate(invalid="ignore"):
        resampled = np.nanmean(np.where(counts > 0, totals / np.maximum(counts, 1), np.nan), 1)
    return {"mean": mean, "ci": percentile_interval(resampled, level).tolist()}


def percentile_interval(samples, level: float = CI_LEVEL, axis: int = 0) -> np.ndarray:
    """Two-sided percentile interval [low, high] of bootstrap `samples` along `axis`; NaN
    where every sample is NaN (a class with no sounds), without numpy's warning."""
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
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
    per_class, present, mean = balanced_mean(scores, labels, num_classes)
    summary = {"mean": mean}
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

    Classes with more than `max_per_class` records use a seeded random subset of that many
    records, without replacement, and all pairs within it (the pairwise matrix grows
    quadratically); NaN for a class with fewer than two records.
    """
    features = _features(features, "features")
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    distances = np.full(num_classes, np.nan)
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if len(members) > max_per_class:
            members = rng.choice(members, max_per_class, replace=False)
        if len(members) >= 2:
            group = features[torch.as_tensor(members)]
            pair_sum = sum(  # the diagonal is zero
                _distances(group[start:stop], group).sum().item()
                for start, stop in _row_blocks(len(group), len(group))
            )
            distances[label] = pair_sum / (len(members) * (len(members) - 1))
    return distances


# --------------------------------------------------------------------------------------
# Imagination: variety between draws of one sound, k-NN manifolds of real and generated
# --------------------------------------------------------------------------------------


def draw_spread(draw_features, chunk_size: int | None = None) -> np.ndarray:
    """(N,) per sound, the mean Euclidean distance between two different draws of its K.

    draw_features: (N, K, F) features of K >= 2 generator draws of each of N sounds.
    chunk_size: sounds per block (default: as many as MAX_BLOCK_DISTANCES allows).
    """
    return _draw_spread(_features(draw_features, "draw features", ndim=3), chunk_size).numpy()


def draw_diversity(
    draw_features,
    labels,
    real_features,
    real_labels,
    num_classes: int,
    max_real_per_class: int = 2000,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict:
    """Per class, the spread between K draws of one sound over that between real images.

    Per sound, the mean distance between two of its K draws (`draw_spread`); per class, its
    mean over the class's sounds divided by the mean distance between two real images of
    the class (`mean_pairwise_distances` on the real features: the same Euclidean distance;
    a class with more than `max_real_per_class` real images uses a random subset of that
    many, drawn with `seed`, and all pairs within it). 1.0 = a sound's draws vary as much
    as real images of its class; 0 = its draws are identical.

    draw_features: (N, K, F); labels: (N,) class of each sound; real_features: (R, F);
    real_labels: (R,). Returns {"per_class": ratio per class (NaN where a class has no
    sounds or no real spread), "mean": their mean over the classes that have one,
    "draws_per_class": the mean spread of the class's sounds' draws, "real_per_class": the
    real reference}, as lists. For a bootstrap interval, feed
    draw_spread(...) / real_per_class[labels] to `bootstrap_summary`.
    """
    draws = _features(draw_features, "draw features", ndim=3)
    spread = _draw_spread(draws, chunk_size).numpy()
    labels = _labels(labels, num_classes, len(spread), "labels")
    real = _features(real_features, "real features")
    _same_width(real, draws.shape[-1], "real features", "draw features")
    real_labels = _labels(real_labels, num_classes, len(real), "real labels")
    draws_per_class = class_means(spread, labels, num_classes)
    real_per_class = mean_pairwise_distances(
        real, real_labels, num_classes, max_real_per_class, seed
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(real_per_class > 0, draws_per_class / real_per_class, np.nan)
    present = np.isfinite(ratio)
    return {
        "per_class": ratio.tolist(),
        "mean": float(ratio[present].mean()) if present.any() else float("nan"),
        "draws_per_class": draws_per_class.tolist(),
        "real_per_class": real_per_class.tolist(),
    }


def same_class_draw_diversity(draw_features, draw_classes, real_per_class) -> dict:
    """draw_diversity within what the draws depict: variety of one digit, not of digits.

    Only pairs of one sound's draws that a classifier puts in the same class c count (two
    draws of other digits are not two hands writing one digit); each pair's distance is
    divided by the mean distance between two real images of c, and per depicted class the
    ratios are averaged, then the classes' means (1.0 = as varied as real images of the
    digit drawn). draw_features: (N, K, F); draw_classes: (N, K) the class each draw is
    judged to show (the K-way classifier's); real_per_class: (num_classes,) the real
    images' spread, `mean_pairwise_distances` of their features (evaluation has it as
    the reference's "diversity"). Returns {"per_class", "mean",
    "agreeing_pairs": the share of pairs judged the same class, "pairs": their count}.
    """
    draws = _features(draw_features, "draw features", ndim=3)
    num_sounds, num_draws, _ = draws.shape
    classes = np.asarray(draw_classes, np.int64)
    if classes.shape != (num_sounds, num_draws):
        raise FeatureError(
            f"draw classes: shape {classes.shape}, expected {(num_sounds, num_draws)}"
        )
    first, second = np.triu_indices(num_draws, 1)
    distances = np.concatenate([
        _distances(draws[start:stop], draws[start:stop])[:, first, second].numpy()
        for start, stop in _row_blocks(num_sounds, num_draws**2)
    ]) if num_sounds else np.zeros((0, len(first)))  # fmt: skip
    same = classes[:, first] == classes[:, second]
    real_per_class = np.asarray(real_per_class, np.float64)
    num_classes = len(real_per_class)
    pair_class = _labels(classes[:, first][same], num_classes, int(same.sum()), "draw classes")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = class_means(distances[same], pair_class, num_classes) / real_per_class
    ratio = np.where(np.isfinite(ratio), ratio, np.nan)
    present = np.isfinite(ratio)
    return {
        "per_class": ratio.tolist(),
        "mean": float(ratio[present].mean()) if present.any() else float("nan"),
        "agreeing_pairs": float(same.mean()) if same.size else float("nan"),
        "pairs": int(same.sum()),
    }


def knn_radii(
    features, k: int = 5, chunk_size: int | None = None, name: str = "features"
) -> np.ndarray:
    """(N,) distance from each record to its k-th nearest other record of the same set.

    Only the record itself is left out: an exact copy elsewhere in the set is a neighbour
    at distance 0, so a record with k or more copies has radius 0.
    chunk_size: records per block (default: as many as MAX_BLOCK_DISTANCES allows).
    """
    return _knn_radii(_features(features, name), k, chunk_size, name).numpy()


def precision_recall_density_coverage(
    real_features, generated_features, k: int = 5, chunk_size: int | None = None
) -> dict:
    """Precision/recall (Kynkaanniemi et al. 2019), density/coverage (Naeem et al. 2020).

    Of generated features against real ones, on k-NN balls (k = 5 by default, as Naeem et
    al. recommend; Kynkaanniemi et al. used 3). With real X_1..X_N, generated Y_1..Y_M,
    B(x, r) the closed ball {y : |y - x| <= r} and NND_k(x) the distance from x to its k-th
    nearest neighbour in its own set, itself excluded (`knn_radii`):
      manifold(X) = union_i B(X_i, NND_k(X_i)), manifold(Y) likewise;
      precision = (1/M) sum_j 1[Y_j in manifold(X)];
      recall    = (1/N) sum_i 1[X_i in manifold(Y)]  (the generated set's radii);
      density   = (1/(kM)) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))];
      coverage  = (1/N) sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))].
    Balls are closed, as in Kynkaanniemi et al.'s code (the prdc package uses open ones):
    a point on a ball's boundary, or an exact copy of a point whose radius is 0, is inside.
    Distances are computed pair by pair in float64, so copies are exactly 0 apart and ties
    are decided the same way whatever the block size.

    Needs at least k + 1 records in each set (recall uses the generated set's radii).
    chunk_size: generated (and radius) records per block (default: MAX_BLOCK_DISTANCES).
    Returns {"precision", "recall", "density", "coverage", "k"}.
    """
    real = _features(real_features, "real features")
    generated = _features(generated_features, "generated features")
    _same_width(generated, real.shape[1], "generated features", "real features")
    real_radii = _knn_radii(real, k, chunk_size, "real features")
    generated_radii = _knn_radii(generated, k, chunk_size, "generated features")
    balls_holding = torch.empty(len(generated), dtype=torch.int64)  # per generated record
    nearest_generated = torch.full((len(real),), torch.inf, dtype=torch.float64)
    in_generated_manifold = torch.zeros(len(real), dtype=torch.bool)
    for start, stop in _row_blocks(len(generated), len(real), chunk_size):
        distances = _distances(generated[start:stop], real)  # (block, N)
        balls_holding[start:stop] = (distances <= real_radii).sum(1)
        nearest_generated = torch.minimum(nearest_generated, distances.min(0).values)
        in_generated_manifold |= (distances <= generated_radii[start:stop, None]).any(0)
    return {
        "precision": (balls_holding > 0).double().mean().item(),
        "recall": in_generated_manifold.double().mean().item(),
        "density": balls_holding.sum().item() / (k * len(generated)),
        "coverage": (nearest_generated <= real_radii).double().mean().item(),
        "k": int(k),
    }


def _draw_spread(draws: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    num_sounds, num_draws, _ = draws.shape
    if num_draws < 2:
        raise FeatureError(
            f"draw features: {num_draws} draw per sound (shape {tuple(draws.shape)}); the "
            "spread between draws needs K >= 2 draws of each sound"
        )
    spread = torch.empty(num_sounds, dtype=torch.float64)
    for start, stop in _row_blocks(num_sounds, num_draws**2, chunk_size):
        block = draws[start:stop]
        spread[start:stop] = _distances(block, block).sum((1, 2))  # the diagonal is zero
    return spread / (num_draws * (num_draws - 1))


def _knn_radii(features: torch.Tensor, k: int, chunk_size: int | None, name: str) -> torch.Tensor:
    if not isinstance(k, int | np.integer) or k < 1:
        raise FeatureError(f"k = {k!r}: the neighbourhood size must be a positive integer")
    if len(features) < k + 1:
        raise FeatureError(
            f"{name}: {len(features)} records; the distance to the k-th nearest neighbour "
            f"with k = {k} needs at least k + 1 = {k + 1}"
        )
    radii = torch.empty(len(features), dtype=torch.float64)
    for start, stop in _row_blocks(len(features), len(features), chunk_size):
        distances = _distances(features[start:stop], features)
        rows = torch.arange(stop - start)
        distances[rows, rows + start] = torch.inf  # a record is not its own neighbour
        radii[start:stop] = torch.topk(distances, k, dim=1, largest=False).values[:, -1]
    return radii


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of a and b, batched as torch.cdist.

    Summed pair by pair rather than as |a|^2 + |b|^2 - 2ab: the expansion leaves copies
    ~1e-7 apart and gives d(a, b) different round-off by block and order, which flips ties.
    """
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _row_blocks(num_rows: int, row_width: int, chunk_size: int | None = None):
    """(start, stop) of blocks of rows, each row costing `row_width` distances in memory."""
    if chunk_size is not None and chunk_size < 1:
        raise FeatureError(f"chunk_size = {chunk_size}: expected a positive number of rows")
    step = chunk_size or max(1, MAX_BLOCK_DISTANCES // max(row_width, 1))
    return [(start, min(start + step, num_rows)) for start in range(0, num_rows, step)]


def _features(features, name: str, ndim: int = 2) -> torch.Tensor:
    """`features` as a float64 CPU tensor with `ndim` axes and finite values."""
    if isinstance(features, torch.Tensor):
        tensor = features.detach().cpu()
    else:
        tensor = torch.as_tensor(np.asarray(features))
    tensor = tensor.to(torch.float64)
    if tensor.ndim != ndim:
        expected = "(N, F)" if ndim == 2 else "(N, K, F)"
        raise FeatureError(f"{name}: expected {expected} features, got shape {tuple(tensor.shape)}")
    finite = torch.isfinite(tensor).flatten(1).all(1)
    if not finite.all():
        first = int(torch.nonzero(~finite)[0])
        raise FeatureError(
            f"{name}: {int((~finite).sum())} record(s) hold NaN or infinite values, "
            f"the first is record {first}"
        )
    return tensor


def _same_width(features: torch.Tensor, width: int, name: str, other: str) -> None:
    if features.shape[-1] != width:
        raise FeatureError(
            f"{name}: {features.shape[-1]} features per record, {other} have {width}"
        )


def _labels(labels, num_classes: int, count: int, name: str) -> np.ndarray:
    """`labels` as (count,) int64 class indices in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise FeatureError(
            f"{name}: expected {count} integer class indices, got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        raise FeatureError(
            f"{name}: class {labels[outside][0]} at record {int(np.flatnonzero(outside)[0])} "
            f"is outside 0..{num_classes - 1}"
        )
    return labels.astype(np.int64)


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
