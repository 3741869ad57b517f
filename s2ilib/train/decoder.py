"""What the two decoders (the GAN, `gan.py`, and the flow, `flow.py`) share: the task on
the frozen encoder of an earlier autoencoder or alignment run."""

from __future__ import annotations

import torch

from s2ilib.train.common import (
    encoder_inputs,
    frozen_front_features,
    load_autoencoder_weights,
    sound_features,
)
from s2ilib.train.engine import BaseTask

STANDARDISATION_BUFFERS = {"encoder.embedding_mean", "encoder.embedding_std"}


class FrozenEncoderTask(BaseTask):
    """A stage on the frozen encoder of an earlier run (GAN, flow): the whole autoencoder
    (`self.autoencoder`) is loaded from the earlier run's checkpoint when a run starts, and
    the fixed validation sounds (`self.val_set`: common.fixed_validation_set) are embedded
    with it.

    The decoders' training sounds are not augmented, so the frozen encoder would give every
    sound the same embedding in every epoch: the training set serves embeddings computed
    once when the run starts or resumes (`_embed_training_sounds`; what embedding in every
    step cost: benchmarks/RESULTS.md, "Twenty minutes: the training sounds embedded once").
    """

    def initialize(self) -> None:
        """A new run: the encoder (whole autoencoder) from the earlier run's checkpoint."""
        encoder = self.autoencoder.encoder
        allowed = STANDARDISATION_BUFFERS if encoder.standardise else set()
        load_autoencoder_weights(
            self.autoencoder, self.document["ae_checkpoint"], allowed.__contains__, self.device
        )
        self.autoencoder.eval()
        if encoder.standardise:
            self._fit_standardisation()
        self._refresh_embeddings()

    def _fit_standardisation(self) -> None:
        """Standardise the embedding with its mean and std over the training sounds (the
        buffers start at 0 and 1, so the encoder gives raw embeddings here)."""
        raw = self._embed_training_sounds(self.autoencoder.encoder)
        self.autoencoder.encoder.set_standardisation(raw)

    def _refresh_embeddings(self) -> None:
        """Embed the validation and the training sounds with the encoder's current (loaded)
        weights; the training set serves the latter from here on."""
        self._refresh_validation_embeddings()
        self.train_set.use_sound_features(self._embed_training_sounds(self._embed))

    def _embed_training_sounds(self, embed) -> torch.Tensor:
        """(N, D) `embed`dings of the training set's sounds, in its order, a batch at a time
        (through a frozen front's features of them, from the spectrograms or the audio)."""
        sounds, size = self.train_set.sounds, self.config.batch_size
        features = frozen_front_features(self.autoencoder.encoder, sounds, self.device)
        self.training_front_features = features  # (N, F) or None: a flow's recall keeps them
        if features is None:
            return sound_features(sounds, embed, size, self.device)
        with torch.no_grad():
            return torch.cat([embed(chunk) for chunk in features.split(size)])

    def _embed(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """A batch's embeddings as the training step would compute them."""
        return self.autoencoder.encoder(spectrograms)

    @torch.no_grad()
    def _refresh_validation_embeddings(self) -> None:
        """Embed the validation sounds with the encoder's current (loaded) weights."""
        inputs = encoder_inputs(self.autoencoder.encoder, *self.val_set, self.device)
        chunks = inputs.split(self.config.batch_size)
        self.val_embeddings = torch.cat([self.autoencoder.encoder(c) for c in chunks])
