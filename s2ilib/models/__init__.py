"""Networks of the method: audio autoencoder, dense generator, discriminator, classifier,
and the flow-matching decoder (beyond the paper).

`preset(name, embedding_dim)` gives the four configurations; `build_networks` the modules
(registry.py: the one registry from a configuration to its network).
The configurations and PRESET_NAMES import without torch (the CLI's help and the training
configs check preset names with them); the networks import torch when first asked for.
"""

from __future__ import annotations

import importlib

from s2ilib.models.config import (
    PAPER_ATTENTION,
    PAPER_EMBEDDING_DIMS,
    PRESET_NAMES,
    AttentionConfig,
    AutoencoderConfig,
    ClassifierConfig,
    ConfigError,
    DiscriminatorConfig,
    FlowConfig,
    GeneratorConfig,
    ImageEncoderConfig,
    ModelPresets,
    generator_transition_plan,
    paper_classifier,
    preset,
)

# Names that need torch, and the module each comes from (imported on first access).
_TORCH_NAMES = {
    "AudioAutoencoder": "autoencoder",
    "AudioDecoder": "autoencoder",
    "AudioEncoder": "autoencoder",
    "DenseGenerator": "generator",
    "Discriminator": "discriminator",
    "FlowDecoder": "flow",
    "ImageEncoder": "image_encoder",
    "InformativityClassifier": "informativity",
    "NETWORKS": "registry",
    "build_models": "registry",
    "build_network": "registry",
    "build_networks": "registry",
    "model_config_from_dict": "registry",
    "count_parameters": "networks",
    "enable_test_time_dropout": "networks",
    "init_weights": "networks",
}

__all__ = [
    "PAPER_ATTENTION",
    "PAPER_EMBEDDING_DIMS",
    "PRESET_NAMES",
    "AttentionConfig",
    "AutoencoderConfig",
    "ClassifierConfig",
    "ConfigError",
    "DiscriminatorConfig",
    "FlowConfig",
    "GeneratorConfig",
    "ImageEncoderConfig",
    "ModelPresets",
    "generator_transition_plan",
    "paper_classifier",
    "preset",
    *_TORCH_NAMES,
]


def __getattr__(name: str):
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_TORCH_NAMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TORCH_NAMES))
