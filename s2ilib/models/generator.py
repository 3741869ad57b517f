"""Stage 2: the deep dense generator (audio embedding -> image), with optional attention.

Layout of the authors' file, which the parameter counts pin down: a transition is a
transposed conv -> BatchNorm -> ReLU -> Dropout2d; inside a dense block, layer 1 sees the
transition output, layer j > 1 sees the concatenation of layers 1..j-1 (the transition
output does not join it), and the block passes the concatenation of all its layers on to
the next transition. The last transition gives the image through BatchNorm + tanh.
"""

from __future__ import annotations

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


class AttentionBlock(nn.Module):
    """Pre-norm transformer decoder block: self-attention, cross-attention, feed-forward."""

    def __init__(self, config: AttentionConfig):
        super().__init__()
        d_model, heads, dropout = config.d_model, config.n_heads, config.dropout
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
        self.self_attention = nn.MultiheadAttention(d_model, heads, dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(d_model, heads, dropout, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, config.ff_multiplier * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(config.ff_multiplier * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norms[0](tokens)
        tokens = tokens + self.self_attention(x, x, x, need_weights=False)[0]
        x = self.norms[1](tokens)
        tokens = tokens + self.cross_attention(x, memory, memory, need_weights=False)[0]
        return tokens + self.feed_forward(self.norms[2](tokens))


class CrossModalAttention(nn.Module):
    """Transformer blocks over a feature map's positions, attending to the audio embedding.

    The map (B, C, S, S) becomes S*S tokens projected to d_model (plus a learned position
    embedding); the embedding is cut into `memory_tokens` tokens. The result is projected
    back to C channels and added to the map; that projection starts at zero, so the
    generator starts out as the plain dense generator.
    """

    def __init__(self, channels: int, side: int, embedding_dim: int, config: AttentionConfig):
        super().__init__()
        d_model = config.d_model
        self.memory_tokens = config.memory_tokens
        self.to_model = nn.Linear(channels, d_model)
        self.positions = nn.Parameter(torch.zeros(1, side * side, d_model))
        self.memory_projection = nn.Linear(embedding_dim // config.memory_tokens, d_model)
        self.memory_positions = nn.Parameter(torch.zeros(1, config.memory_tokens, d_model))
        self.blocks = nn.ModuleList(AttentionBlock(config) for _ in range(config.n_blocks))
        self.norm = nn.LayerNorm(d_model)
        self.to_channels = nn.Linear(d_model, channels)
        nn.init.normal_(self.positions, std=0.02)
        nn.init.normal_(self.memory_positions, std=0.02)
        nn.init.zeros_(self.to_channels.weight)
        nn.init.zeros_(self.to_channels.bias)

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        tokens = self.to_model(features.flatten(2).transpose(1, 2)) + self.positions
        memory = embeddings.reshape(batch, self.memory_tokens, -1)
        memory = self.memory_projection(memory) + self.memory_positions
        for block in self.blocks:
            tokens = block(tokens, memory)
        update = self.to_channels(self.norm(tokens)).transpose(1, 2)
        return features + update.reshape(batch, channels, height, width)


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
            layers = _up_layer(in_channels, widths[index], kernel, stride, padding)
            layers.append(nn.Dropout2d(config.transition_dropouts[index]))
            self.transitions.append(nn.Sequential(*layers))
            self.blocks.append(DenseBlock(widths[index], config.block_widths[index]))
            in_channels = self.blocks[-1].out_channels
        kernel, stride, padding = plan[-1]
        self.output = nn.Sequential(
            nn.ConvTranspose2d(in_channels, config.image_channels, kernel, stride, padding),
            nn.BatchNorm2d(config.image_channels),
            nn.Tanh(),
        )
        self.attention = self._build_attention(config, widths)

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
            x = transition(x)
            if index == attend_after:
                x = self.attention(x, embeddings)
            x = block(x)
        return self.output(x)

    def _input_map(self, embeddings: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        noise_dim = self.config.noise_dim
        if noise is not None and noise.shape[1:] != (noise_dim,):
            raise ValueError(f"noise of shape {tuple(noise.shape)}: expected (B, {noise_dim})")
        if noise_dim:
            if noise is None:
                noise = torch.randn(len(embeddings), noise_dim, device=embeddings.device)
            embeddings = torch.cat([embeddings, noise.to(embeddings.dtype)], 1)
        return embeddings[:, :, None, None]
