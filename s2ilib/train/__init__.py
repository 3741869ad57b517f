"""Training: stage 1 (audio autoencoder) and stage 2 (GAN on the frozen encoder).

config.py      AETrainConfig, GANTrainConfig (frozen; from_dict rejects unknown keys)
losses.py      MSE, L1 pixel loss, the adversarial losses (GAN_LOSSES registry)
steps.py       ae_step, update_discriminator, update_generator, train_step
loop.py        the one loop both share; run set-up and resume
ae.py, gan.py  the two tasks and train_autoencoder / train_gan
rundir.py      run directories, logs, load_run
checkpoint.py  atomic checkpoints with RNG state
"""

from s2ilib.train.config import AETrainConfig, GANTrainConfig

__all__ = ["AETrainConfig", "GANTrainConfig"]
