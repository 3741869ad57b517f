"""Stage 2: the deep dense generator (audio embedding -> image), with optional attention.

Layout of the authors' file, which the parameter counts pin down: a transition is a
transposed conv -> BatchNorm -> Dropout2d -> ReLU (their 2021 file drops channels after the
ReLU, the 2026 one before: the same thing, as channel dropout scales by factors >= 0);
inside a dense block, layer 1 sees the transition output, layer j > 1 sees the
concatenation of layers 1..j-1 (the transition output does not join it), and the block
passes the concatenation of all its layers on to the next transition. The last transition
gives the image through BatchNorm + tanh. The optional attention (AttentionConfig) follows
one transition: the workbook's variant after its ReLU, the authors' before it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from s2ilib.models.config import AttentionConfig, GeneratorConfig


def _up_layer(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int):
    """Transposed conv -> BatchNorm -> ReLU."""
    return [
        nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=stride, padding=padding),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DenseBlock(nn.Module):
    """Same-size 3x3 transposed convs, each fed the concatenation of the block's earlier ones."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        inputs = [in_channels] + [sum(widths[:j]) for j in range(1, len(widths))]
        self.layers = nn.ModuleList(
            nn.Sequential(*_up_layer(n_in, n_out, 3, 1, 1))
            for n_in, n_out in zip(inputs, widths, strict=True)
        )
        self.out_channels = sum(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.layers[0](x)]
        for layer in self.layers[1:]:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class StdLayerNorm(nn.Module):
    """Layer norm over the last axis dividing by the unbiased std + eps (the authors' form).

    nn.LayerNorm divides by sqrt(biased variance + eps); the authors' file by (unbiased
    standard deviation + 1e-6). Same parameters: a weight and a bias per feature.
    """

    def __init__(self, features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(-1, keepdim=True)
        return self.weight * centred / (x.std(-1, keepdim=True) + self.eps) + self.bias


def _layer_norm(config: AttentionConfig) -> nn.Module:
    if config.layer_norm == "std":
        return StdLayerNorm(config.d_model)
    return nn.LayerNorm(config.d_model)


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """(1, length, d_model) fixed encodings (Vaswani et al.): feature 2i is sin(p w_i), 2i+1
    cos(p w_i), with w_i = 10000^(-2i / d_model)."""
    frequencies = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * frequencies
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(1, length, d_model)


class AttentionBlock(nn.Module):
    """Transformer decoder block: self-attention, cross-attention, feed-forward.

    Each sub-layer f sits in a residual: pre-norm x + f(norm(x)) or post-norm
    norm(x + f(x)) (config.norm_first).
    """

    def __init__(self, config: AttentionConfig):
        super().__init__()
        d_model, heads, dropout = config.d_model, config.n_heads, config.dropout
        self.norm_first = config.norm_first
        self.norms = nn.ModuleList(_layer_norm(config) for _ in range(3))
        self.self_attention = nn.MultiheadAttention(
            d_model, heads, dropout, bias=config.attention_bias, batch_first=True
        )
        self.cross_attention = nn.MultiheadAttention(
            d_model, heads, dropout, bias=config.attention_bias, batch_first=True
        )
        activation = nn.ReLU() if config.feed_forward_activation == "relu" else nn.GELU()
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, config.ff_multiplier * d_model),
            activation,
            nn.Dropout(dropout),
            nn.Linear(config.ff_multiplier * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        tokens = self._residual(0, tokens, lambda x: self._attend(self.self_attention, x, x))
        tokens = self._residual(1, tokens, lambda x: self._attend(self.cross_attention, x, memory))
        return self._residual(2, tokens, self.feed_forward)

    @staticmethod
    def _attend(attention: nn.MultiheadAttention, queries, keys_values) -> torch.Tensor:
        return attention(queries, keys_values, keys_values, need_weights=False)[0]

    def _residual(self, index: int, tokens: torch.Tensor, sublayer) -> torch.Tensor:
        norm = self.norms[index]
        if self.norm_first:
            return tokens + sublayer(norm(tokens))
        return norm(tokens + sublayer(tokens))


class CrossModalAttention(nn.Module):
    """Transformer blocks over a feature map's positions, attending to the audio embedding.

    The map (B, C, S, S) becomes S*S tokens projected to d_model, plus positions; the
    embedding is cut into `memory_tokens` tokens, projected likewise. After the blocks
    (and, pre-norm, a final norm) the tokens are projected back to C channels. With
    merge "add" the result is added to the map through a projection that starts at zero,
    so the generator starts out as the plain dense one; with "replace" (the authors') the
    tokens come from tanh of the map and the result is the new map.
    """

    def __init__(self, channels: int, side: int, embedding_dim: int, config: AttentionConfig):
        super().__init__()
        d_model = config.d_model
        self.memory_tokens = config.memory_tokens
        self.replaces = config.merge == "replace"
        self.to_model = nn.Linear(channels, d_model)
        self._add_positions("positions", side * side, config)
        self.memory_projection = nn.Linear(embedding_dim // config.memory_tokens, d_model)
        self._add_positions("memory_positions", config.memory_tokens, config)
        self.blocks = nn.ModuleList(AttentionBlock(config) for _ in range(config.n_blocks))
        self.norm = _layer_norm(config) if config.norm_first else None
        self.unused_norm = _layer_norm(config) if config.unused_final_norm else None
        self.to_channels = nn.Linear(d_model, channels)
        if config.positions == "learned":
            nn.init.normal_(self.positions, std=0.02)
            nn.init.normal_(self.memory_positions, std=0.02)
        if not self.replaces:
            nn.init.zeros_(self.to_channels.weight)
            nn.init.zeros_(self.to_channels.bias)

    def _add_positions(self, name: str, length: int, config: AttentionConfig) -> None:
        if config.positions == "learned":  # initialised once every layer exists (RNG order)
            self.register_parameter(name, nn.Parameter(torch.zeros(1, length, config.d_model)))
        else:  # computed, so not saved with the weights
            positions = sinusoidal_positions(length, config.d_model)
            self.register_buffer(name, positions, persistent=False)

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        tokens = features.flatten(2).transpose(1, 2)
        if self.replaces:  # the authors squash the map before its ReLU, like the embedding
            tokens = torch.tanh(tokens)
        tokens = self.to_model(tokens) + self.positions
        memory = embeddings.reshape(batch, self.memory_tokens, -1)
        memory = self.memory_projection(memory) + self.memory_positions
        for block in self.blocks:
            tokens = block(tokens, memory)
        if self.norm is not None:
            tokens = self.norm(tokens)
        result = self.to_channels(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        return result if self.replaces else features + result


class DenseGenerator(nn.Module):
    """Embedding (B, D) [+ noise (B, noise_dim)] -> image (B, channels, size, size) in [-1, 1]."""

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or GeneratorConfig()
        plan, widths = config.transitions, config.transition_channels()
        in_channels = config.embedding_dim + config.noise_dim
        self.transitions = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for index, (kernel, stride, padding) in enumerate(plan[:-1]):
            *conv_norm, activation = _up_layer(in_channels, widths[index], kernel, stride, padding)
            dropout = nn.Dropout2d(config.transition_dropouts[index])
            self.transitions.append(nn.Sequential(*conv_norm, dropout, activation))
            self.blocks.append(DenseBlock(widths[index], config.block_widths[index]))
            in_channels = self.blocks[-1].out_channels
        kernel, stride, padding = plan[-1]
        self.output = nn.Sequential(
            nn.ConvTranspose2d(in_channels, config.image_channels, kernel, stride, padding),
            nn.BatchNorm2d(config.image_channels),
            nn.Tanh(),
        )
        self.attention = self._build_attention(config, widths)
        if self.attention is not None and self.attention.unused_norm is not None:
            # DDP waits for a gradient of every parameter unless told which never get one.
            self._ddp_params_and_buffers_to_ignore = [
                f"attention.unused_norm.{name}"
                for name, _ in self.attention.unused_norm.named_parameters()
            ]

    @staticmethod
    def _build_attention(config: GeneratorConfig, widths: list[int]):
        if not config.attention.n_blocks:
            return None
        index = config.attention.after_transition
        side = config.transition_sizes()[index]
        return CrossModalAttention(widths[index], side, config.embedding_dim, config.attention)

    def forward(self, embeddings: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Noise, when the config asks for it and none is given, is drawn from N(0, 1)."""
        x = self._input_map(embeddings, noise)
        attend_after = self.config.attention.after_transition if self.attention else -1
        for index, (transition, block) in enumerate(
            zip(self.transitions, self.blocks, strict=True)
        ):
            if index == attend_after:
                x = self._attended_transition(transition, x, embeddings)
            else:
                x = transition(x)
            x = block(x)
        return self.output(x)

    def _attended_transition(self, transition: nn.Sequential, x, embeddings) -> torch.Tensor:
        """A transition with the attention after it, or, when it replaces the map (the
        authors'), between its dropout and its ReLU."""
        if not self.attention.replaces:
            return self.attention(transition(x), embeddings)
        *pre_activation, activation = transition
        for layer in pre_activation:
            x = layer(x)
        return activation(self.attention(x, embeddings))

    def _input_map(self, embeddings: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        noise_dim = self.config.noise_dim
        if noise is not None and noise.shape[1:] != (noise_dim,):
            raise ValueError(f"noise of shape {tuple(noise.shape)}: expected (B, {noise_dim})")
        if noise_dim:
            if noise is None:
                noise = torch.randn(len(embeddings), noise_dim, device=embeddings.device)
            embeddings = torch.cat([embeddings, noise.to(embeddings.dtype)], 1)
        return embeddings[:, :, None, None]
