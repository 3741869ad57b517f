# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Informativity: are the imagined images recognisable?
#
# **The question.** Notebook 04 trained two decoders that turn a sound into an image: the
# paper's GAN and a flow. Does an image drawn for an unheard voice saying "seven" show a
# seven? And beyond that: are the images varied, as real handwriting is, and do they look
# like real images? This chapter measures both decoders on the same test sounds, with the
# same classifiers, beside baselines that need no generation at all.
#
# **Informativity** is the paper's measure. One small binary CNN per class $c$, trained on
# **real** images only, judges whether an image is "an interpretable picture of $c$"
# ($f_c(x) = 1$) or not ($f_c(x) = 0$). Each generated image is shown only to the classifier
# of its sound's class. With $y_i$ the class of test sound $i$, $n_c$ the number of test
# sounds of class $c$, $C$ the number of classes and $\hat x_i^{(k)}$ the $k$-th of the $K$ =
# `samples` images drawn for sound $i$ (`s2ilib/evaluate.py`, `summarise`):
#
# $$I_c = \frac{1}{n_c} \sum_{i:\, y_i = c} f_c\big(\hat x_i^{(1)}\big), \qquad I = \frac{1}{C} \sum_{c=1}^{C} I_c .$$
#
# $I$ is the headline (the first draw of each sound); the tables also give the mean over the
# $K$ draws (each $f_c(\hat x_i^{(1)})$ replaced by $\frac{1}{K}\sum_k f_c(\hat x_i^{(k)})$)
# and "any of $K$" (replaced by $\max_k$). The authors report **more than 14%** on unseen
# VEGAS sounds (5 classes: baby, dog, rail, fireworks, water); per-class numbers were not
# published. The workbook's data set is AV-Digits (10 spoken digits, handwritten images), so
# its numbers are not comparable with the paper's, only the method is.
#
# What the authors' classifiers were trained on was never published. Here
# (`s2ilib/train/informativity.py`): positives are real images of the class; negatives are
# real images of the other classes **plus degraded images** (noise, blur, a flat grey,
# shuffled patches, mixtures of two digits), so that garbage is not "interpretable". Their
# positive rate on real test images of their class is the ceiling of informativity.
#
# **Intervals.** Every informativity comes with a 95% bootstrap interval: the test sounds are
# resampled with replacement *within each class* (class sizes fixed), $I$ is recomputed,
# `bootstrap` = 1000 times, and the 2.5th and 97.5th percentiles are reported
# (`s2ilib/metrics.py`, `bootstrap_summary`). Two intervals that overlap mean the data cannot
# tell the two apart.
#
# **Baselines**, each one image per sound, scored the same way:
# - *chance*: what a uniformly random real image scores, computed exactly: the positive rate
#   of $f_c$ on all real images of the split, averaged over the classes (the "random real"
#   row is one such draw);
# - *nearest-neighbour retrieval*: the image paired with the training sound whose embedding
#   is nearest (cosine) to the test sound's, with class pairing a random training image of
#   that sound's class; no generation, only the embedding;
# - *real images*: a random real image of the sound's class: the classifiers' own ceiling.
#
# **The other measures**, all in one feature space: $\phi(x)$, the hidden layer of a K-way
# classifier trained on the real training images (the field's FID uses Inception's features,
# whose weights cannot be downloaded here, so values compare methods within the workbook
# only). With $g$ the generated and $r$ the real test images:
#
# - **Frechet distance**: fit a Gaussian to each feature set,
#   $\mathrm{FD} = \lVert \mu_g - \mu_r \rVert^2 + \operatorname{Tr}\big(\Sigma_g + \Sigma_r - 2\,(\Sigma_g \Sigma_r)^{1/2}\big)$;
#   0 for the same distribution. *Class-matched*: the FD of real images of the digits the
#   method drew (as the K-way classifier reads them): the part of the distance due to *which*
#   digits were drawn, so the rest is *how* they were drawn.
# - **Draw diversity** (needs $K \ge 2$): per class, the mean distance between two draws of
#   one sound over the mean distance between two real images of the class,
#   $\mathrm{DD}_c = \operatorname{mean}_{i:\,y_i = c,\; k \ne l} \lVert \phi(\hat x_i^{(k)}) - \phi(\hat x_i^{(l)}) \rVert \,/\, \operatorname{mean}_{a \ne b \in r_c} \lVert \phi(x_a) - \phi(x_b) \rVert$,
#   averaged over classes: 1.0 = one sound's draws vary as much as real handwriting of its
#   digit, 0 = the same picture every time. *Same-class* counts only the pairs of draws the
#   K-way classifier reads as the same digit (two different digits are not two hands). The
#   *diversity ratio* is the same quotient for any two generated images of a class.
# - **Precision, recall, density, coverage** ($k = 5$; $B(x, \rho_k(x))$ the ball around $x$
#   reaching its $k$-th nearest neighbour in its own set; one image per sound):
#   precision $= \frac{1}{M}\sum_j \mathbb{1}[g_j \in \bigcup_i B(r_i)]$ (drawn images that
#   look like some real one); recall $= \frac{1}{N}\sum_i \mathbb{1}[r_i \in \bigcup_j B(g_j)]$
#   (the share of real variety reached); density $= \frac{1}{kM}\sum_j\sum_i \mathbb{1}[g_j \in B(r_i)]$
#   (about 1 when drawn images sit where real ones do); coverage
#   $= \frac{1}{N}\sum_i \mathbb{1}[\exists j: g_j \in B(r_i)]$ (real neighbourhoods that
#   hold a drawn image).
#
# **The supervised sound ceiling.** An image can show a digit only if the embedding carries
# it. A copy of the decoder's audio encoder plus a linear layer, trained *with* the labels
# the translator never sees (`s2i train-ceiling`), measures how often the test sounds can be
# recognised from the embedding; a decoder that reads only the embedding can reach about this
# accuracy and no more (below).

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
decoder_run = ""  # the decoder run (GAN or flow) to evaluate; empty: the one notebook 04 recorded
informativity_run = ""  # trained classifiers to reuse; empty: train them here
informativity_epochs = 20  # epochs of the classifiers' training
compare_runs = ""  # comma-separated other decoder runs measured in the same report
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
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from s2ilib import viz
from s2ilib.datasets import open_dataset
from s2ilib.devices import resolve_device
from s2ilib.evaluate import compare_generators, evaluate_run, generator_row, headline
from s2ilib.informativity import load_informativity
from s2ilib.notebook import smoke_settings, write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.report import breakdown_frame, ceiling_markdown, comparison_frame, format_tables, write_report
from s2ilib.runs import TRANSLATOR_KINDS, load_run
from s2ilib.train.augment import augmentation_of_run
from s2ilib.train.registry import train_ceiling, train_informativity

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
decoder = load_run(config.decoder_run, device=device, kind=TRANSLATOR_KINDS)
quick = smoke_settings("evaluate", config.smoke)  # nothing unless smoke
bootstrap = quick.get("bootstrap", config.bootstrap)

# %% [markdown]
# ## The informativity classifiers and their ceilings
#
# Trained on real images at the generator's image size; scored on the real test images:
# the positive rate of class c's classifier on images of c (a perfect generator's
# informativity), its false-positive rates on other classes' and on degraded images.

# %%
training = config.informativity_config(decoder.image_size)
informativity_dir = config.informativity_run or train_informativity(training, config.runs_root, device=device)
bank = load_informativity(informativity_dir, device)
print("classifiers:", informativity_dir)
display(Markdown(ceiling_markdown(bank.ceilings)))

# %% [markdown]
# **What to look for.** The `TPR (own class)` column is each classifier's true-positive rate
# on real test images of its class: the informativity a perfect decoder would reach (the "real
# images" row of the metrics table below). The false-positive rates, on other classes' real
# images and on degraded images, should be low: they are what an image of the wrong digit, or
# a smudge, scores. Warning sign: a classifier that accepts many degraded images would count
# blurred templates as informative.

# %% [markdown]
# ## How recognisable are the sounds at all? The supervised ceiling
#
# The decoder sees only the embedding $s$ of a sound, and its image is judged on the sound's
# class. A classifier trained on the same encoder with the labels (a copy of it fine-tuned,
# plus a linear layer; `s2i train-ceiling`), scored on the same sounds, tells how often that
# class can be read from the sound at all: no decoder can draw the right digit much more
# often than that. The bound is approximate: the ceiling is one trained classifier (another
# might read a little more), and the binary classifiers accept a few images of other digits
# (their false-positive rates above), so informativity can sit slightly above the ceiling,
# within the intervals. It is reported per kind of voice beside informativity below. One
# decoder reads more than the embedding: a flow on a frozen front recalls its starting image
# by the front's own features too (notebook 04), and the front, untrained on AV-Digits, hears
# some unseen voices better than any layer trained after it on the training voices, the
# ceiling's included; such a flow can rise above the ceiling beyond the intervals.

# %%
ceiling_dir = config.ceiling_run or None
if not ceiling_dir and config.ceiling_epochs:
    # the encoder's own augmentation (its align run's)
    ceiling = config.ceiling_config(decoder.config["ae_run"], augmentation_of_run(decoder.config["ae_run"]))
    ceiling_dir = train_ceiling(ceiling, config.runs_root, device=device)
print("supervised ceiling:", ceiling_dir or "none")

# %% [markdown]
# ## The metrics table

# %%
metrics = evaluate_run(decoder, bank, dataset, split=config.split, samples=config.samples, bootstrap=bootstrap,
                       device=device, seed=config.seed, ceiling_run=ceiling_dir,
                       nn_limit_per_class=quick.get("nn_limit_per_class"))
paths = write_report(metrics, config.evaluation_dir)
display(Markdown(format_tables(metrics)[0]))

# %% [markdown]
# **What to look for.** Read the decoder's informativity (the "Generator" rows) against the
# reference rows: chance and a random real image (the floor), nearest-neighbour retrieval,
# and real images (the ceiling). Retrieval is the bar to beat: it shows a real image of the
# digit the embedding's nearest training sound says, so a decoder whose interval overlaps retrieval's recognises
# the sound as well as the embedding allows, and one below it loses the digit while drawing.
# A flow on a frozen front can rise above it: its recall finds the nearest training sound by
# the embedding *and* the front's own features (notebook 04, "What the flow recalls by"),
# which hear unseen voices better than the embedding alone; retrieval here uses the
# embedding alone, as the paper's baseline does.
# In the second table, the decoder's Frechet distance against retrieval's and against its own
# class-matched value says how real its drawings look, and draw diversity says whether one
# sound gives several pictures (retrieval has one image per sound: no draw diversity).
# Warning signs: informativity at chance (the decoder ignores the sound), or a Frechet
# distance far above the class-matched value (drawings unlike any real digit).
#
# Beside `metrics.md`, the evaluation folder holds `per_sound.csv`: a row per test sound
# (its voice, language and engine) and, per draw, whether its class's classifier counted
# the image, the class the K-way classifier read and that classifier's probability of the
# sound's class. Sort it to find the sounds imagined worst; notebook 06 ranks by it.

# %% [markdown]
# ## Per class, with 95% intervals
#
# Per class: the decoder (`generator`: the main run), retrieval and real images, each bar
# with its bootstrap interval; the dashed line is chance.

# %%
save_figure(viz.plot_informativity_bars(metrics), "05_informativity_per_class", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** The real images' bars near 1 are the classifiers' ceilings; a class
# whose real bar is lower has a classifier that rejects some real handwriting of its digit,
# and no decoder can beat that. Compare the decoder's bar with retrieval's in each class: with
# recall and redraw the flow starts from a real image of the nearest training sound, so its
# bars follow retrieval's, above them where the front's features find a better neighbour
# than the embedding; a decoder that loses the digit while drawing sits below retrieval. Warning sign: a class at the chance line (its sounds are not heard, or the
# decoder draws another digit for them every time).

# %%
generator = metrics["methods"]["generator"]
save_figure(viz.plot_confusion(generator["kway_confusion"], metrics["classes"],
                               "Generated images: K-way confusion"), "05_confusion", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** Rows are the sound's digit, columns what the K-way classifier reads in
# the image drawn for it (all draws, rows summing to 1). A strong diagonal is the decoder
# drawing the digit it heard. The largest cells off the diagonal name the digits a sound is
# most often drawn as instead: a single large cell would be a systematic confusion (two
# words that the encoder hears alike); errors spread thinly over a row are sounds the encoder
# did not recognise at all.

# %% [markdown]
# ## Unseen voices: by kind of voice, per language and per engine
#
# For AV-Digits every test voice is new: human speakers (FSDD) never heard in training,
# synthetic voice set-ups never heard, and one engine never heard at all. The first figure
# puts the main run's informativity beside the supervised ceiling for each kind of voice;
# the next two break informativity down by language and by speech engine (`n` = sounds).

# %%
if metrics.get("breakdown", {}).get("voice_group"):
    save_figure(viz.plot_voice_groups(metrics), "05_by_voice_group", config.figures_dir)
    plt.show()
for column in ("language", "engine"):
    if metrics.get("breakdown", {}).get(column):
        save_figure(viz.plot_breakdown(metrics, column), f"05_by_{column}", config.figures_dir)
        plt.show()

# %% [markdown]
# **What to look for.** In the kind-of-voice figure, where the informativity bar reaches the
# ceiling bar the decoder draws the digit as often as the sound can be recognised at all:
# what is left is in *hearing* (the encoder and the data), not in drawing, and a better
# decoder cannot close it. A bar well below its ceiling would point at the decoder; a bar
# well above it is the flow's recall hearing those voices through the front's own features,
# where the trained layers lost them (in the shipped job: the unseen synthetic voices). In the
# language and engine figures, the intervals widen as `n` shrinks: with the 40 sounds of most
# languages (two test voices each) a bar's interval spans twenty to thirty points, so compare
# only bars whose intervals do not overlap.

# %% [markdown]
# ### Per language, beside the ceiling
#
# The language figure as a table, with the supervised ceiling of the same sounds beside
# each language: informativity and the ceiling in %, each with its 95% interval, sorted by
# informativity (`s2ilib/report.py`, `breakdown_frame`). A language's interval resamples
# its sounds all together: with four sounds of each digit (most languages), resampling within
# each digit (as the whole split's interval does) would hide most of the spread. The
# pipeline's `summary.json` carries the same numbers as the headline's `by_language` (and
# `by_voice_group`).

# %%
by_language = breakdown_frame(metrics, "language")
display(by_language if len(by_language) else Markdown("*These sounds have no language column.*"))

# %% [markdown]
# **What to look for.** Read each row across, informativity against its own language's
# ceiling, not against the other rows. Where informativity lies below the ceiling (the
# intervals apart), the sounds of that language can be recognised but the images drawn for
# them do not show the digit as often: the loss is in translating, in what the frozen
# embedding passes on or in the decoder. Where it reaches the ceiling, the decoder draws
# the digit as often as the sound can be heard at all: what is missing is in hearing (the
# encoder and the voices it trained on), and a better decoder would not lift that row. A
# low ceiling names a language whose words even the encoder trained with the labels tells
# apart poorly. Rows of few sounds have wide intervals, so their place in the order says
# little. An empty ceiling (`NaN`, `n/a`) means no ceiling run was given or trained
# (`ceiling_epochs = 0`).

# %% [markdown]
# ## The two decoders in one table
#
# Every run notebook 04 trained beside the main one (`compare_recipe`; by default the
# `aligned` GAN beside the `flow`), and any run given in `compare_runs`, scored on the same
# sounds with the same classifiers and the same number of draws per sound (`samples`); no
# baselines (they do not change). Columns: the encoder and loss (`flow matching` for a flow),
# informativity and its interval, the diversity ratio, K-way accuracy, the Frechet distance
# and its class-matched reference, draw diversity (all pairs, and same-class), and
# precision, recall, density and coverage. Rows are named by run directory
# (`...-flow-recipe-flow`, `...-gan-recipe-aligned`, ...); the table is also saved as
# `evaluation/comparison.csv`. The per-voice breakdown above is the main run's.

# %%
comparison = {str(config.decoder_run): generator_row(decoder, metrics)}
comparison |= compare_generators(config.comparison_runs, bank, dataset, split=config.split,
                                 bootstrap=bootstrap, device=device, seed=config.seed,
                                 samples=config.samples)
comparison_table = comparison_frame(comparison)
comparison_table.to_csv(config.evaluation_dir / "comparison.csv")
display(comparison_table)

# %% [markdown]
# **What to look for.** Informativity first: do the two decoders' intervals overlap? Then
# what distinguishes them. The GAN draws one template per sound (dropout is its only
# variety), so its draw diversity is low, and so are its recall and coverage: it reaches a
# small part of the real handwriting. The flow starts each draw from new noise, so its draw
# diversity should be near 1 (as varied as real handwriting), and its drawings nearer real
# ones (a lower Frechet distance). `benchmarks/RESULTS.md` ("A pretrained speech front")
# records such a job: the flow ahead of the GAN in informativity, and far ahead in Frechet distance, draw
# diversity, recall and coverage. Warning sign: a decoder with a high diversity and a
# Frechet distance far above its class-matched value varies by drawing things that are not
# digits.

# %%
write_step_outputs(config.report_dir, "05_informativity_evaluation", {
    "pass_on": {"informativity_run": str(informativity_dir), "ceiling_run": str(ceiling_dir or "")},
    "metrics": str(paths["json"]),
    "comparison": comparison,
    "headline": headline(metrics),
})

# %% [markdown]
# ## Try it
#
# 1. **Draws per sound.** `samples = 1`: draw diversity becomes n/a (it needs two draws) while
#    the headline informativity (the first draw) stays the same; `samples = 5` tightens the
#    "mean of K draws" column and raises "any of K".
# 2. **How sure are we?** `bootstrap = 100` gives noisier interval ends from one seed to the
#    next; rerun with another `seed` and see which differences between the decoders survive.
# 3. **Another split.** `split = "val"`: the validation voices (one of them a human speaker).
#    The ceiling is trained for the split scored, so the informativity-ceiling comparison
#    still holds.
# 4. **Add a decoder.** Give another translator run in `compare_runs` (e.g. a flow sampled
#    without guidance, notebook 04's "Try it" 3, or `compare_recipe = "aligned,paper"` in
#    notebook 04): it gets its own row in the comparison table.
