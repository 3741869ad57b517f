"""Operations on networks: count parameters, initialise, test-time dropout."""

from __future__ import annotations

from torch import nn

_DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def enable_test_time_dropout(module: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses running statistics) but with every Dropout layer active.

    The paper keeps dropout on at test time: it is the generator's only source of variety
    (no noise input), and the autoencoder was evaluated that way. Returns `module`.
    """
    module.eval()
    for layer in module.modules():
        if isinstance(layer, _DROPOUT_TYPES):
            layer.train()
    return module


def init_weights(module: nn.Module) -> nn.Module:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), biases 0; BatchNorm weight 1, bias 0.

    The authors' files keep PyTorch's default initialisation, which the networks also get
    when this is not called. Linear and attention layers keep their own initialisation
    (the workbook's attention output projection starts at zero on purpose). Use as
    `model.apply(init_weights)`; returns `module`.
    """
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    return module
