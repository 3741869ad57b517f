"""The voices of AV-Digits: digit words per language, every voice the build uses (engine,
language, sex, speaker, licence), what is left out and why, and how each engine is told to
speak one word at a given speed, pitch and vocal-tract length.

Pure data and argument lists: nothing here runs an engine (see avdigits_build).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from s2ilib.errors import S2IError

# The build's plan (s2ilib.datasets.avdigits_build; here so that `s2i build-avdigits --help`
# shows them without loading the audio code):
# espeak-ng set-ups per language and split; two in test: more than 20 test sounds a language;
# two in train, of ESPEAK_RENDITIONS clips each: two voices of a language teach its words to
# unheard voices better than one voice's four renditions, at the same clip count
# (benchmarks/RESULTS.md, "Two espeak-ng training voices a language")
ESPEAK_SETUPS = {"train": 2, "val": 1, "test": 2}
RENDITIONS = 4  # clips per training voice set-up and digit, each with its own variation
ESPEAK_RENDITIONS = 2  # the same for espeak-ng's training set-ups (see ESPEAK_SETUPS)
EVAL_RENDITIONS = 2  # per validation/test set-up and digit: more unseen voices per clip

# The digit words in each language's own script; index = digit. espeak-ng reads every one
# of these languages; the other engines read the languages of their voices.
DIGIT_WORDS = {
    "en": "zero one two three four five six seven eight nine",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve",
    "fr": "zéro un deux trois quatre cinq six sept huit neuf",
    "it": "zero uno due tre quattro cinque sei sette otto nove",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun",
    "ru": "ноль один два три четыре пять шесть семь восемь девять",
    "pt": "zero um dois três quatro cinco seis sete oito nove",
    "nl": "nul een twee drie vier vijf zes zeven acht negen",
    "pl": "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć",
    "cs": "nula jedna dva tři čtyři pět šest sedm osm devět",
    "fi": "nolla yksi kaksi kolme neljä viisi kuusi seitsemän kahdeksan yhdeksän",
    "ca": "zero u dos tres quatre cinc sis set vuit nou",
    "uk": "нуль один два три чотири п'ять шість сім вісім дев'ять",
    "el": "μηδέν ένα δύο τρία τέσσερα πέντε έξι εφτά οχτώ εννιά",
    "tr": "sıfır bir iki üç dört beş altı yedi sekiz dokuz",
    "sv": "noll ett två tre fyra fem sex sju åtta nio",
    "da": "nul en to tre fire fem seks syv otte ni",
    "nb": "null en to tre fire fem seks sju åtte ni",
    "hu": "nulla egy kettő három négy öt hat hét nyolc kilenc",
    "ro": "zero unu doi trei patru cinci șase șapte opt nouă",
    "id": "nol satu dua tiga empat lima enam tujuh delapan sembilan",
    "vi": "không một hai ba bốn năm sáu bảy tám chín",
    "sw": "sifuri moja mbili tatu nne tano sita saba nane tisa",
    "eo": "nul unu du tri kvar kvin ses sep ok naŭ",
    "ky": "нөл бир эки үч төрт беш алты жети сегиз тогуз",
    "hi": "शून्य एक दो तीन चार पाँच छह सात आठ नौ",
    "mr": "शून्य एक दोन तीन चार पाच सहा सात आठ नऊ",
    "bn": "শূন্য এক দুই তিন চার পাঁচ ছয় সাত আট নয়",
    "te": "సున్నా ఒకటి రెండు మూడు నాలుగు ఐదు ఆరు ఏడు ఎనిమిది తొమ్మిది",
    "ta": "பூஜ்ஜியம் ஒன்று இரண்டு மூன்று நான்கு ஐந்து ஆறு ஏழு எட்டு ஒன்பது",
    "fa": "صفر یک دو سه چهار پنج شش هفت هشت نه",
    # With the short vowels written (tashkeel): without them espeak-ng drops most vowels.
    "ar": "صِفْر وَاحِد اِثْنَان ثَلَاثَة أَرْبَعَة خَمْسَة سِتَّة سَبْعَة ثَمَانِيَة تِسْعَة",
    "he": "אפס אחת שתיים שלוש ארבע חמש שש שבע שמונה תשע",
    "ja": "ゼロ いち に さん よん ご ろく なな はち きゅう",
    "ko": "영 일 이 삼 사 오 육 칠 팔 구",
    "cmn": "零 一 二 三 四 五 六 七 八 九",
    "yue": "零 一 二 三 四 五 六 七 八 九",
}
DIGIT_WORDS = {language: words.split() for language, words in DIGIT_WORDS.items()}


LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "it": "Italian", "de": "German",
    "ru": "Russian", "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "cs": "Czech",
    "fi": "Finnish", "ca": "Catalan", "uk": "Ukrainian", "el": "Greek", "tr": "Turkish",
    "sv": "Swedish", "da": "Danish", "nb": "Norwegian Bokmål", "hu": "Hungarian",
    "ro": "Romanian", "id": "Indonesian", "vi": "Vietnamese", "sw": "Swahili",
    "eo": "Esperanto", "ky": "Kyrgyz", "hi": "Hindi", "mr": "Marathi", "bn": "Bengali",
    "te": "Telugu", "ta": "Tamil", "fa": "Persian", "ar": "Arabic", "he": "Hebrew",
    "ja": "Japanese", "ko": "Korean", "cmn": "Mandarin Chinese", "yue": "Cantonese",
}  # fmt: skip


LANGUAGES = tuple(DIGIT_WORDS)


# Spellings an engine voice must be given instead of DIGIT_WORDS: espeak-ng's Debian build
# has no Mandarin character dictionary, so its pinyin voice reads tone-marked pinyin.
ENGINE_SPELLINGS = {
    ("espeak-ng", "cmn-latn-pinyin"): "líng yī èr sān sì wǔ liù qī bā jiǔ".split(),
}


# Spellings tried, in order, for a (engine, language) word that fails the word check.
WORD_ALTERNATIVES: dict[tuple[str, str], dict[int, list[str]]] = {
    ("festival", "ca"): {1: ["un"]},
    ("espeak-ng", "ca"): {1: ["un"]},
}


# espeak-ng language voices (dialects) per language: each set-up takes one, cycling; any
# other language has its code as its only voice.
ESPEAK_DIALECTS = {
    "en": ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd"],
    "es": ["es", "es-419"], "fr": ["fr-fr", "fr-be", "fr-ch"], "ru": ["ru", "ru-lv"],
    "pt": ["pt", "pt-br"], "vi": ["vi", "vi-vn-x-central", "vi-vn-x-south"],
    "cmn": ["cmn", "cmn-latn-pinyin"],
}  # fmt: skip


def espeak_dialects(language: str) -> list[str]:
    """espeak-ng's voices for a language (its dialects)."""
    return ESPEAK_DIALECTS.get(language, [language])


# espeak-ng voice variants (files in espeak-ng-data/voices/!v): each changes formants,
# pitch range, breathiness or the Klatt synthesiser. Left out: robot and effect voices
# (robosoft*, UniRobot, anikaRobot, Demonic, Tweaky, RicishayMax*, Storm), "fast" (a speed
# only), "Mr serious" (a space in its name breaks the +variant syntax) and Nguyen (made for
# Vietnamese tones).
ESPEAK_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "croak", "whisper", "whisperf",
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene",
    "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "adam",
    "anika", "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
    "david", "ed", "edward", "edward2", "grandma", "grandpa", "gustave", "iven", "iven2",
    "iven3", "iven4", "john", "kaukovalta", "linda", "marcelo", "max", "michel", "miguel",
    "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby",
    "steph", "steph2", "steph3", "travis", "victor", "zac",
]  # fmt: skip


ESPEAK_DATA_DIRS = [
    Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"),
    Path("/usr/lib/aarch64-linux-gnu/espeak-ng-data"),
    Path("/usr/share/espeak-ng-data"),
]


def espeak_variant_sex(variant: str) -> str:
    """The `gender` line of an espeak-ng variant file ("male"/"female"), else "unknown"."""
    for root in ESPEAK_DATA_DIRS:
        path = root / "voices" / "!v" / variant
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "gender":
                    sex = fields[1].lower()
                    return sex if sex in ("male", "female") else "unknown"
            return "unknown"
    return "unknown"


@dataclass(frozen=True)
class VoiceSetup:
    """One engine/voice/language variant: all its clips live in one split."""

    engine: str  # "espeak-ng", "flite", "festival", "pico", "rhvoice", "open-jtalk", "fsdd"
    voice: str  # engine's voice name (e.g. "en-us+f3", "slt", "kal_diphone"); fsdd: speaker
    language: str  # key of DIGIT_WORDS
    sex: str = "unknown"  # "male", "female" or "unknown"
    speaker: str = ""  # the person (or espeak-ng variant) behind it; "" = the set-up itself
    kind: str = "synthetic"  # "synthetic" or "human"

    @property
    def name(self) -> str:
        """Readable id, safe in file names: engine-voice, e.g. espeak-ng-en-us-f3."""
        return f"{self.engine}-{self.voice}".replace("+", "-").replace("_", "-").lower()

    @property
    def split_unit(self) -> str:
        """What the split keeps together: the speaker when known, else the set-up."""
        return self.speaker or self.name

    @property
    def word_source(self) -> tuple[str, str, str]:
        """(engine, voice, language) whose words the check verifies: espeak-ng's dialect."""
        voice = self.voice.split("+")[0] if self.engine == "espeak-ng" else self.voice
        return self.engine, voice, self.language


def setup(engine, voice, language, sex, speaker) -> VoiceSetup:
    return VoiceSetup(engine, voice, language, sex, speaker)


# Every natural (recorded-speaker) voice the Debian engines offer, except those left out
# below. `speaker` groups voices made from one person's recordings, whatever the engine:
# CMU's kal, slt and awb (Alan W Black) each exist in two or three engines.
NATURAL_VOICES = [
    setup("flite", "kal", "en", "male", "cmu-kal"),
    setup("flite", "kal16", "en", "male", "cmu-kal"),
    setup("flite", "awb", "en", "male", "cmu-awb"),
    setup("flite", "rms", "en", "male", "cmu-rms"),
    setup("flite", "slt", "en", "female", "cmu-slt"),
    setup("festival", "kal_diphone", "en", "male", "cmu-kal"),
    setup("festival", "ked_diphone", "en", "male", "cmu-ked"),
    setup("festival", "cmu_us_slt_arctic_hts", "en", "female", "cmu-slt"),
    setup("festival", "lp_diphone", "it", "female", "ifd-lp"),
    setup("festival", "pc_diphone", "it", "male", "ifd-pc"),
    setup("festival", "msu_ru_nsh_clunits", "ru", "male", "msu-nsh"),
    setup("festival", "upc_ca_ona_hts", "ca", "female", "upc-ona"),
    setup("festival", "czech_dita", "cs", "female", "brailcom-dita"),
    setup("festival", "czech_krb", "cs", "male", "brailcom-krb"),  # a child's voice
    setup("festival", "czech_machac", "cs", "male", "brailcom-machac"),
    setup("festival", "czech_ph", "cs", "male", "brailcom-ph"),
    setup("festival", "suo_fi_lj_diphone", "fi", "female", "suopuhe-lj"),
    setup("festival", "hy_fi_mv_diphone", "fi", "male", "suopuhe-mv"),
    # The three NSK voices may share a speaker (the packages do not say): kept together.
    setup("festival", "hindi_NSK_diphone", "hi", "male", "nsk"),
    setup("festival", "marathi_NSK_diphone", "mr", "male", "nsk"),
    setup("festival", "telugu_NSK_diphone", "te", "male", "nsk"),
    setup("pico", "en-US", "en", "female", "svox-en-us"),
    setup("pico", "en-GB", "en", "female", "svox-en-gb"),
    setup("pico", "es-ES", "es", "female", "svox-es-es"),
    setup("pico", "fr-FR", "fr", "female", "svox-fr-fr"),
    setup("pico", "it-IT", "it", "female", "svox-it-it"),
    setup("pico", "de-DE", "de", "female", "svox-de-de"),
    setup("open-jtalk", "nitech_jp_atr503_m001", "ja", "male", "nitech-m001"),
    # RHVoice's English voices are trained on CMU ARCTIC (alan = awb).
    setup("rhvoice", "alan", "en", "male", "cmu-awb"),
    setup("rhvoice", "bdl", "en", "male", "cmu-bdl"),
    setup("rhvoice", "clb", "en", "female", "cmu-clb"),
    setup("rhvoice", "slt", "en", "female", "cmu-slt"),
    setup("rhvoice", "aleksandr", "ru", "male", "rhvoice-aleksandr"),
    setup("rhvoice", "aleksandr-hq", "ru", "male", "rhvoice-aleksandr"),
    setup("rhvoice", "anna", "ru", "female", "rhvoice-anna"),
    setup("rhvoice", "elena", "ru", "female", "rhvoice-elena"),
    setup("rhvoice", "irina", "ru", "female", "rhvoice-irina"),
    setup("rhvoice", "anatol", "uk", "male", "rhvoice-anatol"),
    setup("rhvoice", "natalia", "uk", "female", "rhvoice-natalia"),
    setup("rhvoice", "Leticia-F123", "pt", "female", "rhvoice-leticia"),
    setup("rhvoice", "spomenka", "eo", "female", "rhvoice-spomenka"),
    setup("rhvoice", "azamat", "ky", "male", "rhvoice-azamat"),
    setup("rhvoice", "nazgul", "ky", "female", "rhvoice-nazgul"),
]


# What the build leaves out, and why (licences as in each package's copyright file).
EXCLUDED_VOICES = {
    "mbrola-* and festvox-en1/us1/us2/us3 (mbrola)": "the mbrola voice licence restricts "
    "redistribution (non-free, no commercial use of the databases)",
    "festvox-ellpc11k (Spanish diphones, el_diphone)": "diphones licensed for research, "
    "educational and individual use only (no commercial use)",
    "festvox-rablpc16k, festvox-don (British English)": "need festlex-oald, the Oxford "
    "Advanced Learners' Dictionary lexicon: non-commercial use only",
    "festvox-kallpc8k, festvox-kdlpc8k": "8 kHz copies of kal_diphone and ked_diphone "
    "(and they conflict with the 16 kHz packages)",
    "flite awb_time": "a limited-domain voice that only says the time",
    "RHVoice arina, artemiy, evgeniy-eng, evgeniy-rus, lyubov, magda, mikhail, natan, pavel, "
    "suze, tatiana, victoria, vitaliy, yuriy": "CC BY-NC-ND 4.0 (no commercial use, no "
    "derivatives)",
    "RHVoice hana, kiko": "CC BY-NC-SA 4.0 (no commercial use)",
    "RHVoice marianna, volodymyr": "CC BY-ND 4.0 (no derivatives: our clips are derived)",
    "RHVoice talgat (Tatar)": "its own licence forbids selling the voice or its derivatives",
    "freetts (kevin, kevin16, alan)": "a Java port of flite whose voices are the kal diphones "
    "already here (alan: a limited-domain time voice)",
}


EXCLUDED_LANGUAGES = {
    "he": "espeak-ng 1.51 reads unvocalised Hebrew as consonant strings and the vowel points "
    "of vocalised Hebrew by their English names; the word check rejects both",
}


# Debian packages per engine (REQUIRED) and their libraries and data, whose versions also
# decide the audio (recorded in build_info.json).
REQUIRED_PACKAGES = {
    "espeak-ng": ["espeak-ng"],
    "flite": ["flite"],
    "festival": [
        "festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts",
        "festvox-italp16k", "festvox-itapc16k", "festvox-ru", "festvox-ca-ona-hts",
        "festvox-czech-dita", "festvox-czech-krb", "festvox-czech-machac", "festvox-czech-ph",
        "festvox-suopuhe-lj", "festvox-suopuhe-mv", "festvox-hi-nsk", "festvox-mr-nsk",
        "festvox-te-nsk",
        # the NSK voices only recommend their language's support: --no-install-recommends
        # leaves it out and festival fails on the voice's phone set
        "festival-hi", "festival-mr", "festival-te",
    ],
    "pico": ["libttspico-utils"],  # non-free section
    "open-jtalk": ["open-jtalk", "open-jtalk-mecab-naist-jdic", "hts-voice-nitech-jp-atr503-m001"],
    "rhvoice": [
        "rhvoice", "rhvoice-english", "rhvoice-russian", "rhvoice-ukrainian",
        "rhvoice-brazilian-portuguese", "rhvoice-esperanto", "rhvoice-kyrgyz",
    ],  # non-free section
}  # fmt: skip


ENGINE_LIBRARIES = {
    "espeak-ng": ["espeak-ng-data", "libespeak-ng1"],
    "flite": ["libflite1"],
    "festival": [
        "libestools2.5", "festlex-cmu", "festlex-poslex", "festlex-ifd", "festival-ca",
        "festival-czech", "festvox-suopuhe-common",
    ],
    "pico": ["libttspico0", "libttspico-data"],
    "open-jtalk": ["libhtsengine1"],
    "rhvoice": ["librhvoice-core7", "librhvoice-audio2", "libsonic0"],
}  # fmt: skip


ENGINE_PROGRAMS = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "festival",
    "pico": "pico2wave",
    "open-jtalk": "open_jtalk",
    "rhvoice": "RHVoice-test",
}


ENGINES = tuple(REQUIRED_PACKAGES)


NON_FREE_NOTE = (
    "libttspico-utils and the rhvoice packages are in Debian's non-free section and "
    "hts-voice-nitech-jp-atr503-m001 in contrib: add 'contrib non-free' to the Components "
    "line of /etc/apt/sources.list.d/debian.sources (or to sources.list), then apt-get update"
)


NEEDS_EXTRA_SECTIONS = {"libttspico-utils", "rhvoice", "hts-voice-nitech-jp-atr503-m001"}


# --- what each engine can vary ----------------------------------------------------------------

FESTIVAL_HTS = {"cmu_us_slt_arctic_hts", "upc_ca_ona_hts"}  # speed via the HTS engine's -r


FESTIVAL_CLUNITS = {"msu_ru_nsh_clunits"}  # unit selection: neither speed nor pitch


FESTIVAL_ENCODINGS = {  # festival reads 8-bit text: these voices expect Latin-2 / Latin-1
    "czech_dita": "iso-8859-2",
    "czech_krb": "iso-8859-2",
    "czech_machac": "iso-8859-2",
    "czech_ph": "iso-8859-2",
    "suo_fi_lj_diphone": "iso-8859-1",
    "hy_fi_mv_diphone": "iso-8859-1",
}


FLITE_F0_MEAN = {"kal": 100, "kal16": 100, "awb": 110, "rms": 100, "slt": 170}  # Hz, defaults


OPEN_JTALK_DICTIONARY = "/var/lib/mecab/dic/open-jtalk/naist-jdic"


OPEN_JTALK_VOICE = "/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice"


OPEN_JTALK_ALPHA = 0.55  # the voice's all-pass (frequency-warping) constant


ESPEAK_DEFAULT_WPM = 175  # espeak-ng -s default (words per minute)


ESPEAK_DEFAULT_PITCH = 50  # espeak-ng -p default (0..99)


# Engine pitch requests a voice survives: festival aborts on czech_machac (a low voice) when
# its intonation targets are lowered below its default, at every speed the build uses.
PITCH_REQUEST_LIMITS = {("festival", "czech_machac"): (1.0, 1.5)}


def has_speed(setup: VoiceSetup) -> bool:
    """Whether the engine can set this voice's speaking rate."""
    if setup.engine == "festival":
        return setup.voice not in FESTIVAL_CLUNITS
    return setup.engine != "fsdd"


def has_pitch(setup: VoiceSetup) -> bool:
    """Whether the engine can set this voice's pitch (flite's rms and festival's HTS and
    clunits voices cannot)."""
    if setup.engine == "festival":
        return setup.voice not in FESTIVAL_HTS | FESTIVAL_CLUNITS
    return setup.engine != "fsdd" and not (setup.engine == "flite" and setup.voice == "rms")


def has_tract(setup: VoiceSetup) -> bool:
    """Whether the engine has its own vocal-tract control (open-jtalk's all-pass constant)."""
    return setup.engine == "open-jtalk"


def jtalk_alpha(tract: float, alpha: float = OPEN_JTALK_ALPHA) -> float:
    """open-jtalk's all-pass constant that scales the formants by `tract` (> 1: shorter tract).

    The mel-cepstral warping maps a low frequency w to about w (1 + a) / (1 - a); keeping the
    warped envelope and scaling w by `tract` needs (1 + a') / (1 - a') = that ratio / tract.
    """
    ratio = (1 + alpha) / (1 - alpha) / tract
    return (ratio - 1) / (ratio + 1)


@dataclass(frozen=True)
class EngineRequest:
    """What the engine itself is asked for: its speed, pitch and (open-jtalk) tract factors."""

    word: str
    speed: float = 1.0
    pitch: float = 1.0
    tract: float = 1.0


def engine_command(
    setup: VoiceSetup, request: EngineRequest, wav_path: Path
) -> tuple[list[str], str | None]:
    """(argv, stdin text) that makes a single-clip engine write the word to `wav_path`."""
    word, speed, pitch = request.word, request.speed, request.pitch
    if setup.engine == "espeak-ng":
        wpm = str(round(ESPEAK_DEFAULT_WPM * speed))
        level = str(min(99, round(ESPEAK_DEFAULT_PITCH * pitch)))
        argv = ["espeak-ng", "-b", "1", "-v", setup.voice, "-s", wpm, "-p", level]
        return [*argv, "-w", str(wav_path), word], None
    if setup.engine == "flite":
        options = ["--setf", f"duration_stretch={1.0 / speed:.4f}"]
        if has_pitch(setup):
            f0 = FLITE_F0_MEAN[setup.voice] * pitch
            options += ["--setf", f"int_f0_target_mean={f0:.1f}"]
        return ["flite", "-voice", setup.voice, *options, "-t", word, "-o", str(wav_path)], None
    if setup.engine == "pico":
        ssml = (
            f"<speed level='{round(100 * speed)}'><pitch level='{round(100 * pitch)}'>"
            f"{word}</pitch></speed>"
        )
        return ["pico2wave", "-l", setup.voice, "-w", str(wav_path), ssml], None
    if setup.engine == "rhvoice":
        rate, level = str(round(100 * speed)), str(round(100 * pitch))
        return ["RHVoice-test", "-p", setup.voice, "-r", rate, "-t", level, "-o", str(wav_path)], (
            word + "\n"
        )
    if setup.engine == "open-jtalk":
        options = ["-r", f"{speed:.4f}", "-fm", f"{12 * math.log2(pitch):.4f}"]
        options += ["-a", f"{jtalk_alpha(request.tract):.4f}"]
        argv = ["open_jtalk", "-x", OPEN_JTALK_DICTIONARY, "-m", OPEN_JTALK_VOICE, *options]
        return [*argv, "-ow", str(wav_path)], word + "\n"
    raise S2IError(f"{setup.engine!r} has no single-clip command (festival runs in batches)")


# --- festival: one process per voice, all its clips in one Scheme script ----------------------

FESTIVAL_PRELUDE = """
(define (avd_scale_f0 utt factor)
  (let ((targets (utt.relation.items utt 'Target)))
    (while targets
      (if (> (item.feat (car targets) "f0") 0)
          (item.set_feat (car targets) "f0" (* factor (item.feat (car targets) "f0"))))
      (set! targets (cdr targets)))))
(define (avd_bounds utt)
  (let ((segments (utt.relation.items utt 'Segment)) (start nil) (end nil))
    (while segments
      (if (not (member_string (item.name (car segments)) '("pau" "#" "sil" "h#" "_")))
          (begin
            (if (not start) (set! start (item.feat (car segments) "segment_start")))
            (set! end (item.feat (car segments) "end"))))
      (set! segments (cdr segments)))
    (list start end)))
(define (avd_synth utt f0_factor)
  (Initialize utt) (Text utt) (Token_POS utt) (Token utt) (POS utt) (Phrasify utt)
  (Word utt) (Pauses utt) (Intonation utt) (PostLex utt) (Duration utt) (Int_Targets utt)
  (avd_scale_f0 utt f0_factor)
  (Wave_Synth utt))
"""


def festival_script(
    setup: VoiceSetup, requests: list[EngineRequest], wav_paths: list[Path]
) -> bytes:
    """A Scheme script that writes each request's word to its path and prints its bounds.

    Speed: Duration_Stretch (diphone voices) or the HTS engine's -r; pitch: the intonation
    targets scaled before the waveform is made (diphone voices). Each clip prints
    "AVD <index> (<start> <end>)": where the word's first and last non-pause segments lie,
    so that a voice with noisy pauses is cut at the word, not at a level.
    """
    lines = [FESTIVAL_PRELUDE, f"(voice_{setup.voice})"]
    if setup.voice in FESTIVAL_HTS:
        lines.append("(set! avd_hts_params hts_engine_params)")
    for index, (request, path) in enumerate(zip(requests, wav_paths, strict=True)):
        if '"' in request.word or "\\" in request.word:
            raise S2IError(
                f"festival word {request.word!r}: quotes and backslashes are not allowed"
            )
        stretch = 1.0 / request.speed if has_speed(setup) else 1.0
        if setup.voice in FESTIVAL_HTS:
            lines.append(
                f'(set! hts_engine_params (append avd_hts_params (list (list "-r" {request.speed:.4f}))))'
            )
            stretch = 1.0
        f0 = request.pitch if has_pitch(setup) else 1.0
        lines += [
            f"(Parameter.set 'Duration_Stretch {stretch:.4f})",
            f'(set! avd_utt (Utterance Text "{request.word}"))',
            f"(avd_synth avd_utt {f0:.4f})",
            f'(utt.save.wave avd_utt "{path}" \'riff)',
            f'(format t "AVD {index} %l\\n" (avd_bounds avd_utt))',
        ]
    encoding = FESTIVAL_ENCODINGS.get(setup.voice, "utf-8")
    try:
        return "\n".join(lines).encode(encoding)
    except UnicodeEncodeError as error:
        raise S2IError(
            f"festival voice {setup.voice}: a word is not {encoding} ({error})"
        ) from None


def parse_festival_bounds(output: str, count: int) -> list[tuple[float, float] | None]:
    """The "AVD <index> (<start> <end>)" lines of a festival run, per clip (None: no word)."""
    bounds: list[tuple[float, float] | None] = [None] * count
    for line in output.splitlines():
        fields = line.replace("(", " ").replace(")", " ").split()
        if len(fields) == 4 and fields[0] == "AVD":
            try:
                bounds[int(fields[1])] = (float(fields[2]), float(fields[3]))
            except ValueError:
                pass  # "nil nil": the utterance has no speech segment
    return bounds
