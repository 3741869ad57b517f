"""Sound-to-Imagination workbook: sound -> log-mel -> embedding -> imagined image.

A reimplementation of Fanzeres & Nadeu, "Sound-to-Imagination" (arXiv 2106.01266).
Data flows formats/audio -> datasets -> models -> train/evaluate -> cli/pipeline.
"""

__version__ = "0.1.0"
