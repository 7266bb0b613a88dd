"""The corpus language: event classes, their attributes, and every word a caption may use for them.

The caption grammar writes with this lexicon and the simulated annotators read with it, so a caption's
meaning can be recovered exactly. Keyword phrases are disjoint across classes: a phrase names one class.
"""

from __future__ import annotations

from dataclasses import dataclass

# Attribute -> value -> words. Adjectives sit before the noun, adverbs after the verb.
ADJECTIVES: dict[str, dict[str, tuple[str, ...]]] = {
    "loudness": {"loud": ("loud",), "soft": ("soft", "quiet", "faint")},
    "pitch": {"high": ("high-pitched", "high"), "low": ("low-pitched", "low", "deep")},
    "rate": {"fast": ("rapid", "quick", "fast"), "slow": ("slow",)},
}
ADVERBS: dict[str, dict[str, tuple[str, ...]]] = {
    "loudness": {"loud": ("loudly",), "soft": ("softly", "quietly", "faintly")},
    "rate": {"fast": ("rapidly", "quickly"), "slow": ("slowly",)},
}
ATTRIBUTES = ("loudness", "pitch", "rate")
ATTRIBUTE_ORDER = {name: i for i, name in enumerate(ATTRIBUTES)}

# A word -> (attribute, value), for reading captions back.
ATTRIBUTE_WORDS: dict[str, tuple[str, str]] = {
    word: (attribute, value)
    for table in (ADJECTIVES, ADVERBS)
    for attribute, values in table.items()
    for value, words in values.items()
    for word in words
}


@dataclass(frozen=True)
class Noun:
    text: str
    number: str  # "singular", "plural" or "mass" (no article: "rain falls")


@dataclass(frozen=True)
class EventClass:
    name: str
    nouns: tuple[Noun, ...]
    verbs: tuple[tuple[str, str], ...]  # class-specific (third person singular, plural) forms
    has_pitch: bool
    has_rate: bool
    can_be_background: bool
    extra_keywords: tuple[str, ...] = ()  # further words that name this class when read

    @property
    def attributes(self) -> tuple[str, ...]:
        return ("loudness",) + (("pitch",) if self.has_pitch else ()) + (("rate",) if self.has_rate else ())

    @property
    def noun_forms(self) -> frozenset[str]:
        """Every noun as written, and the plural a listener also reads ("sirens", "church bells")."""
        return frozenset({n.text for n in self.nouns} | {_plural(n.text) for n in self.nouns if n.number == "singular"})

    @property
    def keywords(self) -> tuple[str, ...]:
        verb_forms = {form for pair in self.verbs for form in pair}
        return tuple(sorted(self.noun_forms | verb_forms | set(self.extra_keywords)))


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x", "z")) else "s")


S, P, M = "singular", "plural", "mass"

EVENT_CLASSES: tuple[EventClass, ...] = (
    EventClass("siren", (Noun("siren", S), Noun("police siren", S), Noun("ambulance siren", S),
                         Noun("emergency siren", S)),
               (("wails", "wail"),), True, False, True, ("wailing",)),
    EventClass("beeping", (Noun("beeping", M), Noun("beeps", P), Noun("electronic beeping", M),
                           Noun("beeping sound", S)),
               (("repeats", "repeat"),), True, True, False, ("beep",)),
    EventClass("bell", (Noun("bell", S), Noun("church bell", S), Noun("chime", S), Noun("bell chime", S)),
               (("rings", "ring"), ("chimes", "chime"), ("tolls", "toll")), True, True, False, ("ringing",)),
    EventClass("engine", (Noun("engine", S), Noun("car engine", S), Noun("motor", S), Noun("engine hum", S)),
               (("hums", "hum"), ("idles", "idle"), ("rumbles", "rumble")), True, False, True,
               ("humming", "rumbling")),
    EventClass("rain", (Noun("rain", M), Noun("raindrops", P), Noun("rainfall", M)),
               (("falls", "fall"), ("pours", "pour"), ("patters", "patter")), False, False, True,
               ("raining",)),
    EventClass("knocking", (Noun("knocking", M), Noun("knocks", P), Noun("door knocking", M),
                            Noun("knock", S)),
               (), False, True, False),
    EventClass("footsteps", (Noun("footsteps", P), Noun("steps", P), Noun("footfalls", P)),
               (("echoes", "echo"), ("shuffles", "shuffle")), False, True, False, ("walking", "walks", "walk")),
    EventClass("clock", (Noun("clock", S), Noun("ticking clock", S), Noun("ticking", M), Noun("clock tick", S)),
               (("ticks", "tick"),), False, True, True),
    EventClass("birds", (Noun("birds", P), Noun("bird", S), Noun("songbirds", P)),
               (("chirps", "chirp"), ("sings", "sing"), ("tweets", "tweet")), True, True, True,
               ("chirping", "birdsong")),
    EventClass("whistle", (Noun("whistle", S), Noun("whistling", M), Noun("referee whistle", S)),
               (("shrieks", "shriek"),), True, False, False),
    EventClass("drum", (Noun("drum", S), Noun("drum beat", S), Noun("drums", P), Noun("drumming", M)),
               (("pounds", "pound"), ("thumps", "thump")), False, True, False),
    EventClass("piano", (Noun("piano", S), Noun("piano melody", S), Noun("piano music", M)),
               (("plays", "play"),), True, False, True),
    EventClass("alarm", (Noun("alarm", S), Noun("fire alarm", S), Noun("car alarm", S), Noun("buzzer", S)),
               (("blares", "blare"), ("goes off", "go off"), ("buzzes", "buzz")), True, False, False,
               ("blaring",)),
    EventClass("wind", (Noun("wind", M), Noun("gusts of wind", P), Noun("breeze", S)),
               (("blows", "blow"), ("howls", "howl"), ("rustles", "rustle")), False, False, True,
               ("windy",)),
)
CLASSES: dict[str, EventClass] = {c.name: c for c in EVENT_CLASSES}
CLASS_NAMES: tuple[str, ...] = tuple(CLASSES)

# Verbs any class may take; they name no class.
GENERIC_VERBS: tuple[tuple[str, str], ...] = (("can be heard", "can be heard"), ("is heard", "are heard"))

# (keyword phrase as a tuple of tokens, class, is a noun) -- longest phrases first for greedy matching.
# Verbs name their class too ("wails" -> siren), so "a siren wails" holds a noun and a verb of one class.
KEYWORDS: tuple[tuple[tuple[str, ...], str, bool], ...] = tuple(
    sorted(
        (
            (tuple(keyword.split()), c.name, keyword in c.noun_forms)
            for c in EVENT_CLASSES
            for keyword in c.keywords
        ),
        key=lambda item: -len(item[0]),
    )
)

# Sources outside the scene classes, as a listener reads them (nouns and their sounds, singular and plural, with
# or without an article). Read only: the grammar never writes them; a caption that names one invents a sound.
OTHER_SOURCES: dict[str, str] = {
    word: group
    for group, words in {
        "dog": "dog dogs puppy puppies bark barks barking woof growl growls growling",
        "cat": "cat cats kitten meow meows meowing purr purrs purring",
        "farm": "cow cows moo horse horses neigh rooster roosters chicken chickens duck ducks quack sheep goat goats",
        "wild": "frog frogs croak insect insects cricket crickets bee bees buzzing fly flies owl wolf",
        "people": ("baby babies crowd voice voices "
                   "speech talk talks talking speak speaks speaking chatter chattering conversation laugh laughs "
                   "laughing laughter cry cries crying shout shouts shouting scream screams screaming sing "
                   "singing whisper cough coughs coughing applause clapping cheering"),
        "music": "music song songs guitar violin trumpet flute radio television tv",
        "vehicle": ("car cars traffic truck trucks bus motorcycle horn horns honk honks honking train trains "
                    "plane planes airplane helicopter helicopters"),
        "weather": "thunder thunderstorm lightning",
        "water": "water waves stream river splash splashing dripping waterfall ocean",
        "household": ("slam slams glass phone telephone typing keyboard hammer hammering saw drill "
                      "vacuum fan dishes fire crackling"),
    }.items()
    for word in words.split()
}
OTHER_SOUND_VERBS = frozenset({"bark", "barks", "barking", "meow", "meows", "talk", "talks", "talking", "speak",
                               "speaks", "speaking", "laugh", "laughs", "laughing", "cry", "cries", "crying", "shout",
                               "shouts", "shouting", "sing", "singing", "honk", "honks", "slam", "slams", "growl",
                               "growls", "purr", "purrs", "croak", "splash", "crackling", "chatter", "whisper"})
# Saying a sound is absent: "no", "without", "neither ... nor" reach forward; "not", "never", "cannot" (and any
# "n't") the clause they stand in.
FORWARD_NEGATORS = frozenset({"no", "without", "neither", "nor", "none"})
CLAUSE_NEGATORS = frozenset({"not", "never", "cannot", "absent", "missing"})
SILENCE = frozenset({"silence", "silent", "nothing"})
# Verb forms besides the classes' own: what makes a caption a sentence rather than a list of names.
OTHER_VERBS = frozenset({"is", "are", "was", "were", "be", "been", "heard", "hear", "plays", "play", "playing",
                         "sounds", "goes", "go", "going", "runs", "running", "starts", "stops", "continues",
                         "follows", "fades", "passes", "beats", "beating", "blows", "blowing", "walks", "walking",
                         "someone", "somebody", "it", "he", "she", "they", "you", "we"})

DETERMINERS = frozenset({"a", "an", "the", "some"})
# Words that relate events; a caption may not end on one of these.
CONNECTIVES = frozenset({
    "then", "and", "followed", "by", "after", "before", "while", "as", "with", "at", "same", "time",
    "together", "simultaneously", "in", "background", "of", "on", "to", ",",
})
# Connectives that close a clause ("in the background", "at the same time"): a sentence may end on them.
CLAUSE_CLOSERS = frozenset({",", "background", "time", "together", "simultaneously"})
FUNCTION_WORDS = DETERMINERS | CONNECTIVES | {"is", "are", "can", "be", "heard", "there", "sound"}


def _check_disjoint() -> None:
    seen: dict[tuple[str, ...], str] = {}
    for phrase, name, _ in KEYWORDS:
        if seen.setdefault(phrase, name) != name:
            raise AssertionError(f"keyword {' '.join(phrase)!r} names both {seen[phrase]} and {name}")
        if set(phrase) & (set(ATTRIBUTE_WORDS) | DETERMINERS):
            raise AssertionError(f"keyword {' '.join(phrase)!r} contains an attribute word or determiner")


_check_disjoint()
