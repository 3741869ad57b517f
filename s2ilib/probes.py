"""How much class information an embedding carries: linear probes and 2-D maps.

A logistic-regression probe trained on one split and scored on another (unseen voices for
AV-Digits) is the standard read-out: the translator can be no more informative than the
embedding it starts from. The same probe on raw spectrogram pixels is the baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from s2ilib.datasets.sounds import clips_of
from s2ilib.formats import RecordSet
from s2ilib.translate import encode

PROBE_MAX_ITER = 2000  # lbfgs iterations; standardised features converge well before this


def probe_predictions(train_features, train_labels, test_features, seed: int = 0) -> np.ndarray:
    """The test features' classes by a standardised logistic regression fit on train."""
    # scikit-learn is imported where it is used: it adds about a second to a process's start
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER, random_state=seed)
    )
    probe.fit(np.asarray(train_features, np.float32), np.asarray(train_labels))
    return probe.predict(np.asarray(test_features, np.float32))


def probe_accuracy(
    train_features, train_labels, test_features, test_labels, seed: int = 0
) -> float:
    """Accuracy on the test features of a standardised logistic regression fit on train."""
    predicted = probe_predictions(train_features, train_labels, test_features, seed)
    return float(np.mean(predicted == np.asarray(test_labels)))


def pixel_features(records: RecordSet, indices=None, pool: int = 4) -> np.ndarray:
    """Raw spectrogram pixels, average-pooled by `pool` in both axes (float32 (N, F))."""
    spectrograms = records.spectrograms if indices is None else records.spectrograms[indices]
    batch = torch.as_tensor(np.asarray(spectrograms)).float().unsqueeze(1) / 255.0
    return torch.nn.functional.avg_pool2d(batch, pool).flatten(1).numpy()


def embedding_features(encoder, records: RecordSet, indices=None, device="cpu") -> np.ndarray:
    """Audio embeddings of the records (float32 (N, D)), from their clips for an encoder that
    reads them."""
    spectrograms = records.spectrograms if indices is None else records.spectrograms[indices]
    return encode(
        encoder, np.asarray(spectrograms), device, audio=clips_of(records, indices)
    ).numpy()


def compare_probes(
    encoder,
    train: RecordSet,
    test: RecordSet,
    device="cpu",
    max_per_split: int | None = None,
    seed: int = 0,
    groups=None,
) -> dict:
    """Probe accuracy of embeddings vs raw pixels, train -> test, on the same records.

    max_per_split: a seeded random subset of each split (bounded time on large sets);
    groups: one value per test record (a kind of voice, a language): the embedding probe's
    accuracy is then also given per value ("embedding_by_group").
    """
    picks = [_subset(len(r), max_per_split, seed) for r in (train, test)]
    labels = [r.labels[p] for r, p in zip((train, test), picks, strict=True)]
    embedded = [
        embedding_features(encoder, r, p, device) for r, p in zip((train, test), picks, strict=True)
    ]
    pixels = [pixel_features(r, p) for r, p in zip((train, test), picks, strict=True)]
    correct = probe_predictions(embedded[0], labels[0], embedded[1], seed) == labels[1]
    result = {
        "embedding": float(correct.mean()),
        "pixels": probe_accuracy(pixels[0], labels[0], pixels[1], labels[1], seed),
        "chance": float(np.bincount(labels[1]).max() / len(labels[1])),
        "train_records": len(picks[0]),
        "test_records": len(picks[1]),
    }
    if groups is not None:
        values = np.asarray(groups).astype(str)[picks[1]]
        result["embedding_by_group"] = {
            str(g): float(correct[values == g].mean()) for g in np.unique(values)
        }
    return result


def _subset(count: int, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def embedding_map(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D coordinates of the features: "pca" (fast, linear) or "tsne" (local structure)."""
    from sklearn.decomposition import PCA

    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        reduced = PCA(n_components=min(50, features.shape[1]), random_state=seed).fit_transform(
            features
        )
        return TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(
            reduced
        )
    raise ValueError(f"method {method!r}: expected 'pca' or 'tsne'")
