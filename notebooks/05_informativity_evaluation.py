# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Informativity: are the imagined images recognisable?
#
# The paper's measure: one small binary CNN per class, trained on **real** images, judges
# whether an image is "an interpretable picture of that class". Each generated test image
# is shown only to the classifier of its sound's class; the informativity of class c is the
# share of images from class-c sounds judged interpretable, and the headline is the mean
# over classes. The authors report more than 14% on unseen VEGAS sounds (5 classes).
#
# What the classifiers were trained on was never published. Here: positives are real
# images of the class; negatives are real images of the other classes **plus degraded
# images** (noise, blur, blank, shuffled patches, mixtures), so that garbage is not
# "interpretable". Their accuracy on real test images is the ceiling.
#
# Beside informativity, the tables report what a reviewer would ask for: K-way accuracy and
# confusion of generated images, a Frechet distance in the K-way classifier's feature
# space (the field's FID needs Inception weights that cannot be downloaded here), the
# intra-class **diversity** of generated images against real ones, and **imagination**:
# the draw diversity of one sound's K images (a generator that draws one template per
# sound is informative but does not imagine; "same-class" counts only the pairs of draws
# judged to show the same digit, so drawing other digits is no variety there),
# precision/recall and density/coverage against
# the real images; pixel agreement where sounds have their own frame; and baselines
# measured in the same run: chance, a random real image, nearest-neighbour retrieval, and
# real images (the ceiling).

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
gan_run = ""  # the GAN (or flow) run to evaluate; empty: the one notebook 04 recorded
informativity_run = ""  # trained classifiers to reuse; empty: train them here
informativity_epochs = 20  # epochs of the classifiers' training
compare_runs = ""  # comma-separated other GAN (or flow) runs measured in the same report
ceiling_run = ""  # a supervised-ceiling run of this split to reuse; empty: train one here
ceiling_epochs = 60  # epochs of the supervised ceiling (0: none)
split = "test"  # the split evaluated (test: unseen voices)
samples = 3  # draws per sound (a flow's starting noise, a GAN's test-time dropout)
bootstrap = 1000  # bootstrap resamples of the 95% intervals
seed = 0
device = "auto"  # auto: CUDA when present, else CPU
smoke = False  # tiny budgets (tests)
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
runs_root = "runs"  # where the classifiers' run directory is made
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import EvaluationParameters, load_parameters

config = load_parameters(EvaluationParameters, globals())
config

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from s2ilib import viz
from s2ilib.datasets import open_dataset
from s2ilib.devices import resolve_device
from s2ilib.evaluate import compare_generators, evaluate_run, generator_row, headline
from s2ilib.informativity import load_informativity
from s2ilib.notebook import smoke_settings, write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.report import ceiling_markdown, comparison_frame, format_tables, write_report
from s2ilib.runs import TRANSLATOR_KINDS, load_run
from s2ilib.train.augment import augmentation_of_run
from s2ilib.train.registry import train_ceiling, train_informativity

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
gan = load_run(config.gan_run, device=device, kind=TRANSLATOR_KINDS)
bootstrap = smoke_settings("evaluate", config.smoke).get("bootstrap", config.bootstrap)

# %% [markdown]
# ## The informativity classifiers and their ceilings
#
# Trained on real images at the generator's image size; scored on the real test images:
# the positive rate of class c's classifier on images of c (a perfect generator's
# informativity), its false-positive rates on other classes' and on degraded images.

# %%
training = config.informativity_config(gan.image_size)
informativity_dir = config.informativity_run or train_informativity(training, config.runs_root, device=device)
bank = load_informativity(informativity_dir, device)
print("classifiers:", informativity_dir)
display(Markdown(ceiling_markdown(bank.ceilings)))

# %% [markdown]
# ## How recognisable are the sounds at all? The supervised ceiling
#
# A copy of the GAN's audio encoder plus a linear layer, trained as a classifier **with**
# the labels the translator never sees (`s2i train-ceiling`), scored on the same sounds:
# no recipe can make the images more recognisable than the sounds are. Reported per kind
# of voice beside informativity below.

# %%
ceiling_dir = config.ceiling_run or None
if not ceiling_dir and config.ceiling_epochs:
    # the encoder's own augmentation (its align run's)
    ceiling = config.ceiling_config(gan.config["ae_run"], augmentation_of_run(gan.config["ae_run"]))
    ceiling_dir = train_ceiling(ceiling, config.runs_root, device=device)
print("supervised ceiling:", ceiling_dir or "none")

# %% [markdown]
# ## The metrics table

# %%
evaluation_dir = Path(config.report_dir) / "evaluation"
metrics = evaluate_run(gan, bank, dataset, split=config.split, samples=config.samples, bootstrap=bootstrap,
                       device=device, seed=config.seed, ceiling_run=ceiling_dir)
paths = write_report(metrics, evaluation_dir)
display(Markdown(format_tables(metrics)[0]))

# %% [markdown]
# ## Per class, with 95% intervals

# %%
save_figure(viz.plot_informativity_bars(metrics), "05_informativity_per_class", config.figures_dir)
plt.show()

# %%
generator = metrics["methods"]["generator"]
save_figure(viz.plot_confusion(generator["kway_confusion"], metrics["classes"],
                               "Generated images: K-way confusion"), "05_confusion", config.figures_dir)
plt.show()

# %% [markdown]
# ## Unseen voices: by kind of voice, per language and per engine
#
# For AV-Digits every test voice is new: human speakers (FSDD) never heard in training,
# synthetic voice set-ups never heard, and one engine never heard at all.

# %%
if metrics.get("breakdown", {}).get("voice_group"):
    save_figure(viz.plot_voice_groups(metrics), "05_by_voice_group", config.figures_dir)
    plt.show()
for column in ("language", "engine"):
    if metrics.get("breakdown", {}).get(column):
        save_figure(viz.plot_breakdown(metrics, column), f"05_by_{column}", config.figures_dir)
        plt.show()

# %% [markdown]
# ## Other runs measured in the same report
#
# The runs notebook 04 trained beside the main one (the main job's: the `flow` recipe, a
# flow-matching decoder whose draws vary) when asked for them (`compare_recipe`; the main
# job trains the main run alone): the `aligned` recipe (a GAN on the same aligned
# embedding: near-identical draws), the `paper` recipe (the authors' method as faithfully as we know it), `imagine` and any adversarial-loss comparison runs, each scored on the same sounds with the same
# classifiers and the same number of draws per sound (`samples`): informativity, the
# Frechet distance (`frechet_class_matched`: that of real images of the digits the run
# drew, so the part of the distance that is drawing quality shows beside the part that is
# which digits) and precision/recall/density/coverage on the workbook's features, and
# the draw diversity (the spread of one sound's draws over the spread of real images of
# its class; 1.0 = as varied as real handwriting; `draw_diversity_same_class`: within the
# digit each draw is judged to show). Compare them with the baselines'
# rows of the table above (retrieval, real images). Rows are named by run directory
# (`...-gan-recipe-paper`, `...-flow-recipe-flow`, `...-gan-compare-hinge`, ...); the table is also saved as
# `evaluation/comparison.csv`.

# %%
comparison = {str(config.gan_run): generator_row(gan, metrics)}
comparison |= compare_generators(config.comparison_runs, bank, dataset, split=config.split,
                                 bootstrap=bootstrap, device=device, seed=config.seed,
                                 samples=config.samples)
comparison_table = comparison_frame(comparison)
comparison_table.to_csv(evaluation_dir / "comparison.csv")
display(comparison_table)

# %%
write_step_outputs(config.report_dir, "05_informativity_evaluation", {
    "pass_on": {"informativity_run": str(informativity_dir), "ceiling_run": str(ceiling_dir or "")},
    "metrics": str(paths["json"]),
    "comparison": comparison,
    "headline": headline(metrics),
})
