"""From sounds to images with trained networks: the one encode and the one generate path.

Every part of the workbook that runs a trained translator goes through here: evaluation,
`s2i imagine`, the galleries, the probes and the supervised ceiling. Sounds are uint8
spectrograms (N, 128, 100), scaled to [-1, 1] batch by batch; images come out in [-1, 1]
(float batches) or as uint8 (N, K, S, S, 3).

Draw d of a generator (dropout kept on at test time, the paper's source of variety) takes
its dropout masks from a hash of (seed, d, the sound, the layer, the channel) instead of
torch's random stream (`KeyedDropout`), and so does its Gaussian code when it takes one
(recipe "imagine", `keyed_codes`): a sound's images depend on the sound and the seed
only, never on which other sounds share its batch or on the batch size. The sound is keyed
by its spectrogram's bytes (`sound_keys`), so the same file gives the same images alone or
among others, in `s2i imagine`, the galleries and `s2i evaluate` alike.
"""

from __future__ import annotations

import types

import numpy as np
import torch

from s2ilib.audio import SAMPLE_RATE
from s2ilib.datasets.torch_data import from_unit_range, to_unit_range
from s2ilib.errors import S2IError
from s2ilib.models import enable_test_time_dropout
from s2ilib.seeding import derived_seed

BATCH_SIZE = 256  # sounds per forward pass when encoding or generating
_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # an integer-hash multiplier below 2**31: 32-bit products stay in int64
_GOLDEN = 0x61C88647  # 2**32 / golden ratio, mod 2**32 (below 2**31 likewise)
_KEY_WEIGHTS_SEED = 20250601  # the fixed pseudo-random weights of sound_keys
_CODE_SALT = 2**31 - 1  # tells a draw's code apart from its dropout masks (layer indices)


def mix32(values: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (avalanching) of int64 tensors holding values < 2**32."""
    for _ in range(2):
        values = (((values >> 16) ^ values) * _MIX) & _MASK32
    return (values >> 16) ^ values


def sound_keys(arrays) -> torch.Tensor:
    """One 32-bit key per item of an array (N, ...) of uint8 spectrograms or float32
    embeddings, from its bytes alone (int64 (N,))."""
    data = np.ascontiguousarray(np.asarray(arrays))
    words = data.reshape(len(data), -1).view(np.uint8).astype(np.int64)
    weights = np.random.default_rng(_KEY_WEIGHTS_SEED).integers(1, 2**31, words.shape[1])
    return mix32(torch.from_numpy((words @ weights) & _MASK32))  # sums stay below 2**52


def keyed_uniform(keys: torch.Tensor, salt: int, count: int) -> torch.Tensor:
    """(N, count) uniforms in [0, 1): element i of row n a hash of (keys[n], salt, i)."""
    rows = mix32((keys.long() ^ salt) & _MASK32)
    index = torch.arange(count, device=keys.device, dtype=torch.int64)
    return mix32((rows[:, None] + index[None, :] * _GOLDEN) & _MASK32).float() / 2**32


class KeyedDropout:
    """Within this context the dropout layers of `module` that are active (test-time
    dropout) take their masks from keyed_uniform(keys of the sounds in the batch, a salt of
    (seed, draw, layer)): channel-wise for Dropout2d/3d, element-wise otherwise. Set the
    batch's keys and the draw with `batch(keys, draw)` before each forward."""

    def __init__(self, module: torch.nn.Module, seed: int):
        self.layers = [
            m for m in module.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)
        ]
        self.seed, self.keys, self.draw = seed, None, 0

    def batch(self, keys: torch.Tensor, draw: int) -> None:
        self.keys, self.draw = keys, draw

    def __enter__(self):
        for index, layer in enumerate(self.layers):
            layer.forward = types.MethodType(self._forward(index), layer)
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            del layer.forward  # back to the class's own forward
        return False

    def _forward(self, index: int):
        def forward(layer, inputs):
            if not layer.training or layer.p == 0:
                return inputs
            channel_wise = isinstance(layer, torch.nn.Dropout2d | torch.nn.Dropout3d)
            shape = inputs.shape[:2] if channel_wise else inputs.shape
            salt = derived_seed(self.seed, self.draw, index)
            count = int(np.prod(shape[1:]))
            uniform = keyed_uniform(self.keys.to(inputs.device), salt, count).view(shape)
            keep = (uniform >= layer.p).to(inputs.dtype) / (1.0 - layer.p)
            return inputs * keep.view(*shape, *([1] * (inputs.dim() - len(shape))))

        return forward


def keyed_normal(keys: torch.Tensor, salt: int, count: int) -> torch.Tensor:
    """(N, count) standard normal numbers, row n a function of (keys[n], salt) alone
    (Box-Muller on two keyed_uniform streams)."""
    uniform = keyed_uniform(keys, salt, count).clamp(max=1.0 - 2.0**-24)  # float32 rounds up
    radius = torch.sqrt(-2.0 * torch.log1p(-uniform))
    angle = 2.0 * torch.pi * keyed_uniform(keys, salt ^ _GOLDEN, count)
    return radius * torch.cos(angle)


def keyed_codes(generator, keys: torch.Tensor, seed: int, draw: int, device):
    """The Gaussian codes of draw `draw` of the sounds keyed `keys`, for a generator that
    takes one (GeneratorConfig.noise_dim > 0): from (seed, draw, the sound) alone, as the
    keyed dropout masks; None for a generator without a code."""
    noise_dim = getattr(getattr(generator, "config", None), "noise_dim", 0)
    if not noise_dim:
        return None
    salt = derived_seed(seed, draw, _CODE_SALT)
    return keyed_normal(keys.to(device), salt, noise_dim)


def spectrogram_batches(spectrograms, batch_size: int = BATCH_SIZE):
    """Float batches (B, 1, 128, 100) in [-1, 1] of an array of uint8 spectrograms."""
    for start in range(0, len(spectrograms), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(spectrograms[start : start + batch_size]))
        yield to_unit_range(chunk).unsqueeze(1)


@torch.no_grad()
def encode(network, spectrograms, device, batch_size: int = BATCH_SIZE, audio=None) -> torch.Tensor:
    """uint8 spectrograms (N, 128, 100) -> the network's float32 outputs on the CPU, in eval
    mode (an encoder: (N, D) embeddings; a classifier: its logits). A network whose audio
    encoder reads the audio (front_input "audio") reads `audio` instead, the same sounds'
    clips (N, samples) float32, and refuses to run without them."""
    network.eval()
    if reads_audio(network):
        clips = _required_audio(audio, spectrograms)
        batches = clip_features(audio_encoder_of(network), clips, batch_size, device).split(
            batch_size
        )
    else:
        batches = spectrogram_batches(spectrograms, batch_size)
    outputs = [network(batch.to(device)).float().cpu() for batch in batches]
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


@torch.no_grad()
def front_features(encoder, spectrograms, device, batch_size: int = BATCH_SIZE, audio=None):
    """The frozen front's pooled features (N, F) of the sounds, on the CPU, from what the
    encoder reads (their clips `audio`, or their uint8 spectrograms), or None for an encoder
    without a frozen front (what a flow that recalls by the front needs beside the
    embeddings: FlowMemory.similarity)."""
    encoder = audio_encoder_of(encoder) or encoder
    if getattr(encoder, "front", None) is None:
        return None
    encoder.eval()
    if encoder.front_input == "audio":
        return clip_features(encoder, _required_audio(audio, spectrograms), batch_size, device)
    batches = spectrogram_batches(spectrograms, batch_size)
    return torch.cat([encoder.front_features(b.to(device)).float().cpu() for b in batches])


def recalls_by_front(generator) -> bool:
    """Whether `generator` is a flow whose recall needs the sounds' front features."""
    return bool(getattr(generator, "recalls_by_front", lambda: False)())


def audio_encoder_of(network):
    """The audio encoder whose front reads the clips inside `network`, or None."""
    found = (m for m in network.modules() if getattr(m, "front_input", None) == "audio")
    return next(found, None)


def reads_audio(network) -> bool:
    """Whether `network` holds an audio encoder whose front reads the clips, not the images."""
    return audio_encoder_of(network) is not None


@torch.no_grad()
def clip_features(encoder, clips, batch_size: int = BATCH_SIZE, device="cpu") -> torch.Tensor:
    """The frozen front's pooled features (N, F) of clips (float32 (N, samples), lazy or
    not), on the CPU. Clips named by their files (`clips.keys()`: a data set's) come from
    the front-feature cache without being decoded; the others are keyed by their samples
    (PooledSpeech); what is missing is decoded and computed a batch at a time, with a
    progress bar when there is much."""
    from s2ilib.models.front_cache import shared_cache

    cache, keys = shared_cache(), getattr(clips, "keys", lambda: None)()
    if cache is None or keys is None:
        batches = wave_batches(clips, batch_size)
        return torch.cat([encoder.front_features(b.to(device)).cpu() for b in batches])

    def compute(rows) -> torch.Tensor:
        rows = np.asarray(rows, np.int64)
        starts = range(0, len(rows), batch_size)
        if len(rows) > 4 * batch_size:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="front features of the clips", unit="batch", leave=False)
        waves = (torch.from_numpy(np.asarray(clips[rows[s : s + batch_size]])) for s in starts)
        return torch.cat([encoder.front.pool(w.to(device)).cpu() for w in waves])

    return cache.keyed_features(encoder.front, keys, (SAMPLE_RATE,), compute)


def wave_batches(audio, batch_size: int = BATCH_SIZE):
    """Float batches (B, samples) of an array of float32 clips (lazy ones decode here)."""
    for start in range(0, len(audio), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(audio[start : start + batch_size]))


def _required_audio(audio, spectrograms):
    if audio is None:
        raise S2IError(
            "this encoder's front reads the audio (front_input 'audio'), and these sounds "
            "have only spectrograms: give it sound files or a data set that ships its clips"
        )
    if len(audio) != len(spectrograms):
        raise S2IError(f"{len(audio)} clips for {len(spectrograms)} spectrograms")
    return audio


def sampling_mode(module, test_time_dropout: bool = True):
    """Eval mode, with dropout left on when `test_time_dropout` (the paper's practice)."""
    return enable_test_time_dropout(module) if test_time_dropout else module.eval()


@torch.no_grad()
def draw_batches(
    generator,
    embeddings: torch.Tensor,
    device,
    draw: int = 0,
    seed: int | None = 0,
    test_time_dropout: bool = True,
    batch_size: int = BATCH_SIZE,
    keys: torch.Tensor | None = None,
    front: torch.Tensor | None = None,
):
    """Images (B, 3, S, S) in [-1, 1] on `device` of draw `draw` for every embedding, in
    batches. keys: one per sound (sound_keys of its spectrogram; default: of its
    embedding); seed None: a fresh random seed (draws then differ from call to call);
    front: the sounds' front features (`front_features`), for a flow that recalls by them."""
    sampling_mode(generator, test_time_dropout)
    keys = sound_keys(embeddings.float().cpu().numpy()) if keys is None else keys
    seed = int(torch.randint(0, 2**31, ())) if seed is None else seed
    with KeyedDropout(generator, seed) as dropout:
        for start in range(0, len(embeddings), batch_size):
            batch_keys, rows = keys[start : start + batch_size], slice(start, start + batch_size)
            dropout.batch(batch_keys, draw)
            codes = keyed_codes(generator, batch_keys, seed, draw, device)
            batch = embeddings[rows].to(device)
            if front is None:
                yield generator(batch, codes)
            else:
                yield generator(batch, codes, front_features=front[rows].to(device))


def generate(
    generator,
    embeddings: torch.Tensor,
    device,
    samples: int = 1,
    seed: int | None = 0,
    test_time_dropout: bool = True,
    batch_size: int = BATCH_SIZE,
    keys: torch.Tensor | None = None,
    front: torch.Tensor | None = None,
) -> np.ndarray:
    """(N, D) embeddings -> uint8 (N, samples, S, S, 3): `samples` draws of each (keys,
    front: see draw_batches). Without test_time_dropout the draws are identical unless the
    generator takes a code (recipe "imagine")."""
    if seed is None:  # one fresh seed for all draws, so that they differ from one another
        seed = int(torch.randint(0, 2**31, ()))
    keys = sound_keys(embeddings.float().cpu().numpy()) if keys is None else keys  # once
    draws = []
    for draw in range(samples):
        batches = draw_batches(
            generator, embeddings, device, draw, seed, test_time_dropout, batch_size, keys, front
        )
        images = [from_unit_range(fake.float()).permute(0, 2, 3, 1).cpu() for fake in batches]
        draws.append(torch.cat(images).numpy())
    generator.eval()
    return np.stack(draws, axis=1)


def translate(
    run, spectrograms, device, samples: int = 1, seed: int | None = 0, audio=None, **options
):
    """uint8 spectrograms (and their clips, `audio`, for an encoder that reads them) ->
    uint8 images (N, samples, S, S, 3) with a decoder run's encoder and generator
    (`options`: test_time_dropout, batch_size)."""
    embeddings, front = sound_conditions(run, spectrograms, device, audio)
    keys = sound_keys(spectrograms)
    return generate(
        run.generator, embeddings, device, samples, seed, keys=keys, front=front, **options
    )


@torch.no_grad()
def sound_conditions(run, spectrograms, device, audio=None, batch_size: int = BATCH_SIZE):
    """(embeddings (N, D), front features (N, F) or None) of the sounds, on the CPU: what a
    decoder run's generator draws from. For a flow that recalls by the front the front runs
    once, and the embeddings are computed from its features (the encoder takes them in place
    of the sounds); otherwise `encode` and None."""
    if not recalls_by_front(run.generator):
        return encode(run.encoder, spectrograms, device, batch_size, audio), None
    front = front_features(run.encoder, spectrograms, device, batch_size, audio)
    run.encoder.eval()
    chunks = front.split(batch_size)
    return torch.cat([run.encoder(c.to(device)).float().cpu() for c in chunks]), front


def set_dropout_scale(module: torch.nn.Module, scale: float) -> torch.nn.Module:
    """Multiply every dropout rate of `module` by `scale` (clipped to 0.95) from its trained value.

    The trained rates are remembered on first use, so scales do not compound; 1.0 restores
    them, 0.0 turns test-time variety off.
    """
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.dropout._DropoutNd):
            if not hasattr(layer, "trained_p"):
                layer.trained_p = layer.p
            layer.p = min(0.95, layer.trained_p * scale)
    return module


def example_inputs(network, records, indices) -> torch.Tensor:
    """What `network`'s audio encoder reads of these records (a RecordSet's rows), as one
    float batch: their clips (B, samples) for an encoder that reads the audio, else their
    spectrograms (B, 1, 128, 100) in [-1, 1] (for layer tables and single sounds)."""
    indices = np.asarray(indices)
    if reads_audio(network):
        return torch.from_numpy(np.asarray(_required_audio(records.audio, records.labels)[indices]))
    return to_unit_range(torch.as_tensor(np.asarray(records.spectrograms[indices]))).unsqueeze(1)


@torch.no_grad()
def reconstruct(
    autoencoder, spectrograms, device, test_time_dropout: bool = True, audio=None
) -> np.ndarray:
    """uint8 spectrograms (N, 128, 100) through the autoencoder and back, as uint8, in one
    batch (dropout on at test time, as the paper evaluates its autoencoder); an autoencoder
    whose encoder reads the audio reads `audio`, the same sounds' clips (N, samples)."""
    sampling_mode(autoencoder, test_time_dropout)
    if reads_audio(autoencoder):  # the front's features of the clips (clip_features)
        clips = _required_audio(audio, spectrograms)
        batch = clip_features(audio_encoder_of(autoencoder), clips, device=device).to(device)
    else:
        batch = to_unit_range(torch.as_tensor(np.asarray(spectrograms)).to(device)).unsqueeze(1)
    reconstruction, _ = autoencoder(batch)
    autoencoder.eval()
    return from_unit_range(reconstruction[:, 0].cpu()).numpy()
