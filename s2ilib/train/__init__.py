"""Training: every task of the workbook, through one engine.

config.py     the tasks' configs (frozen; from_dict rejects unknown keys)
engine.py     the Task protocol and the one loop: schedule, logging, samples, checkpoints,
              NaN guard, resume, run locks
steps.py      the step functions (AEStage, AlignStage, GANStage bundles)
losses.py     reconstruction, pixel, contrastive and adversarial losses (GAN_LOSSES)
common.py     helpers the tasks share (earlier runs, validation sounds, sample grids)
ae.py, align.py, gan.py, flow.py, informativity.py, ceiling.py    the tasks
decoder.py    what the two decoders (gan.py, flow.py) share: FrozenEncoderTask
registry.py   TASKS; start_run / resume_run by kind; train_autoencoder, train_gan, ...
recipes.py    named recipes (paper, aligned, imagine, flow) and training several decoders by recipe
fastpath.py, augment.py, stall.py    fast path, batched augmentation, stall detector
"""

from s2ilib.train.config import AETrainConfig, GANTrainConfig

__all__ = ["AETrainConfig", "GANTrainConfig"]
