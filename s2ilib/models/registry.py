"""The one registry of networks: a name -> (config class, module class), and builders.

Run directories store each network's configuration as a plain dict (config.json, "models");
`build_models` turns those dicts back into modules, `build_networks` builds a preset's.
"""

from __future__ import annotations

import typing
from dataclasses import fields

from torch import nn

from s2ilib.models.autoencoder import AudioAutoencoder
from s2ilib.models.config import (
    AutoencoderConfig,
    ClassifierConfig,
    DiscriminatorConfig,
    FlowConfig,
    GeneratorConfig,
    ImageEncoderConfig,
    ModelPresets,
)
from s2ilib.models.discriminator import Discriminator
from s2ilib.models.flow import FlowDecoder
from s2ilib.models.generator import DenseGenerator
from s2ilib.models.image_encoder import ImageEncoder
from s2ilib.models.informativity import InformativityClassifier

NETWORKS = {
    "autoencoder": (AutoencoderConfig, AudioAutoencoder),
    "generator": (GeneratorConfig, DenseGenerator),
    "discriminator": (DiscriminatorConfig, Discriminator),
    "flow": (FlowConfig, FlowDecoder),
    "image_encoder": (ImageEncoderConfig, ImageEncoder),
    "classifier": (ClassifierConfig, InformativityClassifier),
}


def model_config_from_dict(cls, values: dict):
    """A config dataclass from its plain-dict form (lists back to tuples, nested too)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for item in fields(cls):
        if item.name not in values:
            continue
        value, hint = values[item.name], hints[item.name]
        if hasattr(hint, "__dataclass_fields__"):
            value = model_config_from_dict(hint, value)
        kwargs[item.name] = _tuples(value)
    return cls(**kwargs)


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


# Networks that may hold pretrained weights read from files at construction (the
# autoencoder's speech front: openWakeWord's ONNX files).
PRETRAINED_PARTS = ("autoencoder",)


def build_network(name: str, config, load_pretrained: bool = True) -> nn.Module:
    """Network `name` (a key of NETWORKS) from its config dataclass or its plain dict.

    load_pretrained: False builds pretrained parts empty (no file read, no package needed),
    for a checkpoint's state dict to fill; a new network needs True.
    """
    config_class, module_class = NETWORKS[name]
    if isinstance(config, dict):
        config = model_config_from_dict(config_class, config)
    if name in PRETRAINED_PARTS:
        return module_class(config, load_pretrained=load_pretrained)
    return module_class(config)


def build_models(model_configs: dict, names, load_pretrained: bool = True) -> dict[str, nn.Module]:
    """Networks `names` from config.json's "models" section (load_pretrained: as in
    build_network)."""
    return {name: build_network(name, model_configs[name], load_pretrained) for name in names}


def build_networks(presets: ModelPresets) -> dict[str, nn.Module]:
    """The four networks of a preset, keyed autoencoder/generator/discriminator/classifier."""
    return {
        name: build_network(name, getattr(presets, name))
        for name in ("autoencoder", "generator", "discriminator", "classifier")
    }
