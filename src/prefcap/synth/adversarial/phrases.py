"""The phrase table of the adversarial suite: how plain English names each sound, its verbs, adjectives and
adverbs, and a scene seen as steps of phrases. Written apart from the corpus grammar and the listeners' words."""

from __future__ import annotations

import random
from dataclasses import dataclass

# ----------------------------------------------------------------------------------------------------------------
# Phrase table
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verb:
    """A predicate in three forms; "|" marks where an adverb goes (default: at the end)."""

    s: str  # third person singular: "wails"
    p: str  # plural: "wail"
    ing: str  # participle: "wailing"
    pre: bool = False  # the participle reads well in front of the noun ("a wailing siren")


VERBS: dict[str, Verb] = {
    "wail": Verb("wails", "wail", "wailing", True),
    "blare": Verb("blares", "blare", "blaring", True),
    "howl": Verb("howls", "howl", "howling", True),
    "sound": Verb("sounds", "sound", "sounding"),
    "ring": Verb("rings", "ring", "ringing", True),
    "chime": Verb("chimes", "chime", "chiming", True),
    "toll": Verb("tolls", "toll", "tolling", True),
    "rung": Verb("is being rung", "are being rung", "being rung"),
    "hum": Verb("hums", "hum", "humming", True),
    "rumble": Verb("rumbles", "rumble", "rumbling", True),
    "run": Verb("runs", "run", "running", True),
    "idle": Verb("idles", "idle", "idling", True),
    "whir": Verb("whirs", "whir", "whirring", True),
    "fall": Verb("falls", "fall", "falling", True),
    "patter": Verb("patters", "patter", "pattering", True),
    "rain": Verb("is raining", "are raining", "raining"),
    "knock_on": Verb("knocks| on a door", "knock| on a door", "knocking| on a door"),
    "knock_at": Verb("knocks| at the door", "knock| at the door", "knocking| at the door"),
    "echo": Verb("echoes", "echo", "echoing", True),
    "approach": Verb("approaches", "approach", "approaching", True),
    "walk": Verb("walks", "walk", "walking"),
    "walk_by": Verb("walks by", "walk by", "walking by"),
    "tick": Verb("ticks", "tick", "ticking", True),
    "chirp": Verb("chirps", "chirp", "chirping", True),
    "sing": Verb("sings", "sing", "singing", True),
    "tweet": Verb("tweets", "tweet", "tweeting", True),
    "blow": Verb("blows", "blow", "blowing"),
    "blown": Verb("is blown", "are blown", "being blown"),
    "whistle": Verb("whistles", "whistle", "whistling"),
    "shriek": Verb("shrieks", "shriek", "shrieking", True),
    "beat": Verb("beats", "beat", "beating", True),
    "pound": Verb("pounds", "pound", "pounding", True),
    "boom": Verb("booms", "boom", "booming", True),
    "drum": Verb("drums", "drum", "drumming"),
    "play_drums": Verb("plays the drums", "play the drums", "playing the drums"),
    "play": Verb("plays", "play", "playing"),
    "play_piano": Verb("plays the piano", "play the piano", "playing the piano"),
    "go_off": Verb("goes off", "go off", "going off"),
    "buzz": Verb("buzzes", "buzz", "buzzing", True),
    "beep": Verb("beeps", "beep", "beeping", True),
    "gust": Verb("gusts", "gust", "gusting", True),
    "whoosh": Verb("whooshes", "whoosh", "whooshing"),
}


@dataclass(frozen=True)
class Noun:
    """One way to name a sound source. det: "a" (singular count noun, article chosen a/an), "" (plural or mass),
    "the", or "-" (a pronoun subject such as "someone" or weather "it": no article, no adjective)."""

    text: str
    det: str
    plural: bool = False
    verbs: tuple[str, ...] = ()
    alone: bool = True  # meaningful without its verb ("a siren"; not "someone", not "a machine")
    adj: bool = True  # takes loudness adjectives ("a loud siren")
    pitch_adj: bool = True  # takes pitch adjectives ("a high-pitched siren")
    rate_adj: bool = False  # takes rate adjectives ("rapid knocking"; not "a rapid clock")
    gerund: bool = True  # "NOUN VERB-ing" works as a noun phrase ("someone knocking on a door"; not "it raining")
    colloquial: bool = False  # a more specific everyday wording ("a police siren")
    stand_in: str = ""  # a noun phrase for a pronoun subject where a noun phrase is needed ("it" -> "rain falling")


def _pron(text: str, verbs: tuple[str, ...], **kw) -> Noun:
    return Noun(text, "-", verbs=verbs, alone=False, adj=False, pitch_adj=False, **kw)


NOUNS: dict[str, tuple[Noun, ...]] = {
    "siren": (
        Noun("siren", "a", verbs=("wail", "blare", "howl")),
        Noun("sirens", "", True, ("wail", "blare", "howl")),
        Noun("police siren", "a", verbs=("wail", "blare"), colloquial=True),
        Noun("police sirens", "", True, ("wail", "blare"), colloquial=True),
        Noun("ambulance siren", "a", verbs=("wail", "howl"), colloquial=True),
    ),
    "beeping": (
        Noun("beeping", "", rate_adj=True),
        Noun("beeps", "", True, rate_adj=True),
        Noun("electronic beep", "a", verbs=("sound",)),
        Noun("electronic beeps", "", True, ("sound",), rate_adj=True),
        Noun("machine", "a", verbs=("beep",), alone=False, pitch_adj=False),
        Noun("machine", "a", verbs=("beep",), alone=False, pitch_adj=False, colloquial=True),
        Noun("electronic device", "a", verbs=("beep",), alone=False, pitch_adj=False, colloquial=True),
    ),
    "bell": (
        Noun("bell", "a", verbs=("ring", "chime", "toll")),
        Noun("bells", "", True, ("ring", "chime")),
        Noun("church bell", "a", verbs=("ring", "toll", "rung"), colloquial=True),
        Noun("church bells", "", True, ("ring", "chime", "toll", "rung"), colloquial=True),
    ),
    "engine": (
        Noun("engine", "a", verbs=("hum", "rumble", "run")),
        Noun("engines", "", True, ("hum", "rumble")),
        Noun("motor", "a", verbs=("hum", "whir", "run")),
        Noun("car engine", "a", verbs=("idle", "run", "rumble"), colloquial=True),
    ),
    "rain": (
        Noun("rain", "", verbs=("fall", "patter")),
        Noun("raindrops", "", True, ("fall", "patter")),
        Noun("rainfall", "", colloquial=True),
        _pron("it", ("rain",), gerund=False, colloquial=True, stand_in="rain falling"),
    ),
    "knocking": (
        Noun("knocking", "", rate_adj=True),
        Noun("knocks", "", True, ("echo",), rate_adj=True),
        Noun("knocks on a door", "", True, rate_adj=True, colloquial=True),
        _pron("someone", ("knock_on", "knock_at")),
        _pron("someone", ("knock_on", "knock_at"), colloquial=True),
    ),
    "footsteps": (
        Noun("footsteps", "", True, ("approach", "echo"), rate_adj=True, pitch_adj=False),
        _pron("someone", ("walk", "walk_by")),
        _pron("someone", ("walk", "walk_by"), colloquial=True),
        Noun("person", "a", verbs=("walk_by",), adj=False, pitch_adj=False, gerund=True, alone=False),
    ),
    "clock": (
        Noun("clock", "a", verbs=("tick",), pitch_adj=False),
        Noun("clocks", "", True, ("tick",), pitch_adj=False),
        Noun("ticking clock", "a", pitch_adj=False),
        Noun("wall clock", "a", verbs=("tick",), pitch_adj=False, colloquial=True),
    ),
    "birds": (
        Noun("birds", "", True, ("chirp", "sing", "tweet"), pitch_adj=False),
        Noun("bird", "a", verbs=("chirp", "sing", "tweet"), pitch_adj=False),
        Noun("birdsong", "", rate_adj=False, colloquial=True),
        Noun("songbirds", "", True, ("sing", "chirp"), pitch_adj=False, colloquial=True),
    ),
    "whistle": (
        Noun("whistle", "a", verbs=("blow", "shriek", "sound")),
        Noun("whistles", "", True, ("blow", "shriek")),
        Noun("whistle", "a", verbs=("blown",), colloquial=True),
        _pron("someone", ("whistle",)),
        _pron("someone", ("whistle",), colloquial=True),
    ),
    "drum": (
        Noun("drum", "a", verbs=("beat", "boom", "pound"), pitch_adj=False),
        Noun("drums", "", True, ("beat", "boom", "pound"), pitch_adj=False),
        Noun("drumming", "", rate_adj=True, pitch_adj=False),
        _pron("someone", ("drum", "play_drums"), colloquial=True),
    ),
    "piano": (
        Noun("piano", "a", verbs=("play",), pitch_adj=False),
        Noun("piano music", "", verbs=("play",)),
        _pron("someone", ("play_piano",)),
        _pron("someone", ("play_piano",), colloquial=True),
    ),
    "alarm": (
        Noun("alarm", "a", verbs=("blare", "sound", "go_off")),
        Noun("alarms", "", True, ("blare", "sound", "go_off")),
        Noun("buzzer", "a", verbs=("buzz", "sound")),
        Noun("fire alarm", "a", verbs=("blare", "go_off"), colloquial=True),
    ),
    "wind": (
        Noun("wind", "the", verbs=("blow", "howl", "gust", "whoosh"), pitch_adj=False),
        Noun("wind", "", pitch_adj=False),
        Noun("gusts of wind", "", True, ("blow",), pitch_adj=False, colloquial=True),
    ),
}

# Plural wordings for the plural kind (every class has at least one plural noun with a verb).
PLURAL_NOUNS: dict[str, tuple[Noun, ...]] = {
    **{cls: tuple(n for n in nouns if n.plural and n.verbs) for cls, nouns in NOUNS.items()},
    "piano": (Noun("piano notes", "", True, ("sound",), pitch_adj=True),),
    "whistle": (Noun("whistles", "", True, ("blow", "shriek")),),
}

# Words used after "no", in word lists and other determiner-less slots: (text, grammatical number "sg"/"pl"/"mass").
BARE: dict[str, tuple[tuple[str, str], ...]] = {
    "siren": (("siren", "sg"), ("sirens", "pl"), ("police siren", "sg")),
    "beeping": (("beeping", "mass"), ("beeps", "pl")),
    "bell": (("bell", "sg"), ("bells", "pl"), ("church bells", "pl")),
    "engine": (("engine", "sg"), ("engine noise", "mass"), ("car engine", "sg")),
    "rain": (("rain", "mass"),),
    "knocking": (("knocking", "mass"),),
    "footsteps": (("footsteps", "pl"),),
    "clock": (("clock", "sg"), ("clocks", "pl"), ("ticking clock", "sg")),
    "birds": (("birds", "pl"), ("birdsong", "mass")),
    "whistle": (("whistle", "sg"), ("whistling", "mass")),
    "drum": (("drum", "sg"), ("drums", "pl"), ("drumming", "mass")),
    "piano": (("piano", "sg"), ("piano music", "mass")),
    "alarm": (("alarm", "sg"), ("alarms", "pl"), ("fire alarm", "sg")),
    "wind": (("wind", "mass"),),
}

CLASSES = tuple(NOUNS)

# Attribute words: (attribute, value) -> adjectives, adverbs. "plain" ones are unambiguous, for the attribute kind.
ADJ = {
    ("loudness", "loud"): ("loud",),
    ("loudness", "soft"): ("quiet", "faint", "soft"),
    ("pitch", "high"): ("high-pitched",),
    ("pitch", "low"): ("low-pitched",),
    ("rate", "fast"): ("rapid", "fast"),
    ("rate", "slow"): ("slow",),
}
ADV = {
    ("loudness", "loud"): ("loudly",),
    ("loudness", "soft"): ("quietly", "softly", "faintly"),
    ("pitch", "high"): ("at a high pitch",),
    ("pitch", "low"): ("at a low pitch",),
    ("rate", "fast"): ("rapidly", "quickly"),
    ("rate", "slow"): ("slowly",),
}
PLAIN_ADJ = {("loudness", "loud"): "loud", ("loudness", "soft"): "quiet", ("pitch", "high"): "high-pitched",
             ("pitch", "low"): "low-pitched", ("rate", "fast"): "rapid", ("rate", "slow"): "slow"}
PLAIN_ADV = {("loudness", "loud"): "loudly", ("loudness", "soft"): "quietly", ("pitch", "high"): "at a high pitch",
             ("pitch", "low"): "at a low pitch", ("rate", "fast"): "rapidly", ("rate", "slow"): "slowly"}
CLASS_ADJ = {
    ("rain", "loudness", "loud"): ("heavy", "loud"),
    ("rain", "loudness", "soft"): ("light", "gentle"),
    ("wind", "loudness", "loud"): ("strong",),
    ("wind", "loudness", "soft"): ("gentle", "light"),
    ("bell", "pitch", "low"): ("deep", "low-pitched"),
    ("engine", "pitch", "low"): ("deep", "low-pitched"),
}
CLASS_ADV = {
    ("rain", "loudness", "loud"): ("heavily",),
    ("rain", "loudness", "soft"): ("lightly", "gently"),
    ("wind", "loudness", "loud"): ("hard", "strongly"),
    ("wind", "loudness", "soft"): ("gently",),
}
OPPOSITE = {"loud": "soft", "soft": "loud", "high": "low", "low": "high", "fast": "slow", "slow": "fast"}

# Invented sound sources (none of them one of the 14 classes): (subject, singular verb, participle).
INVENTED_WITH_ARTICLE = (
    ("a dog", "barks", "barking"), ("a man", "speaks", "speaking"), ("a baby", "cries", "crying"),
    ("a cat", "meows", "meowing"), ("a helicopter", "flies overhead", "flying overhead"),
    ("a woman", "laughs", "laughing"), ("a crowd", "cheers", "cheering"), ("a car horn", "honks", "honking"),
    ("a child", "shouts", "shouting"), ("a cow", "moos", "mooing"), ("a man", "coughs", "coughing"),
    ("a goat", "bleats", "bleating"),
)
# (subject, verb agreeing with it, participle, plural?)
INVENTED_WITHOUT_ARTICLE = (
    ("dogs", "bark", "barking", True), ("people", "talk", "talking", True), ("traffic", "roars past",
                                                                            "roaring past", False),
    ("babies", "cry", "crying", True), ("music", "plays", "playing", False),
    ("thunder", "rumbles", "rumbling", False), ("cats", "meow", "meowing", True),
    ("children", "laugh", "laughing", True), ("water", "runs", "running", False),
    ("people", "chatter", "chattering", True), ("voices", "murmur", "murmuring", True),
    ("frogs", "croak", "croaking", True),
)
# Skip invented sources that a careful listener could take for one of the present classes.
INVENTED_CLASH = {"music": {"piano"}, "water": {"rain"}, "thunder": {"engine", "drum"}}

NONSENSE = ("blorf", "zindle", "grumpet", "snarfle", "quibbet", "flonk", "wuzzle", "trindle")
NONSENSE_ADJ = ("zindly", "blorfy", "grumptious", "snarfled", "quibby", "flonkish")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _place(form: str, adv: str | None) -> str:
    if "|" in form:
        return form.replace("|", f" {adv}" if adv else "")
    return f"{form} {adv}" if adv else form


# ----------------------------------------------------------------------------------------------------------------
# One event's wording, chosen once per caption
# ----------------------------------------------------------------------------------------------------------------


class Phrase:
    """The wording of one sound source in a caption: a noun (and verb) drawn once, with at most one attribute
    expressed, as an adjective where it reads naturally, otherwise as an adverb."""

    def __init__(self, cls: str, rng: random.Random, attributes: dict | None = None, *, colloquial: bool = False,
                 plural: bool = False, need_alone: bool = False, attr_p: float = 0.0, attr: str | None = None,
                 attr_value: str | None = None, plain: bool = False, extra_adj: str | None = None,
                 background: bool = False):
        self.cls = cls
        self.rng = rng
        pool = PLURAL_NOUNS[cls] if plural else tuple(n for n in NOUNS[cls] if n.verbs)
        if background:  # "it is raining in the background" reads oddly
            pool = tuple(n for n in pool if n.text != "it") or pool
        if need_alone:
            pool = tuple(n for n in pool if n.alone) or pool
        if colloquial:
            pool = tuple(n for n in pool if n.colloquial) or pool
        elif not plural:
            pool = tuple(n for n in pool if not n.colloquial) or pool
        if attr is not None:  # the attribute must be expressible: an adjective or a verb for an adverb
            pool = tuple(n for n in pool if n.verbs) or pool
        self.noun: Noun = rng.choice(pool)
        self.verb: Verb = VERBS[rng.choice(self.noun.verbs)]
        self._nominal_pick = rng.random()  # drawn now, so that a caption's wording does not depend on call order
        self.adj: str | None = extra_adj
        self.adv: str | None = None
        attributes = dict(attributes or {})
        if attr is None and attributes and rng.random() < attr_p:
            attr = rng.choice(sorted(attributes))
        if attr is not None:
            value = attr_value or attributes[attr]
            self._express(attr, value, plain)

    def _express(self, attr: str, value: str, plain: bool) -> None:
        key = (attr, value)
        adj_ok = self.noun.adj and (attr != "pitch" or self.noun.pitch_adj) and (attr != "rate" or self.noun.rate_adj)
        if plain:
            adjs, advs = (PLAIN_ADJ[key],), (PLAIN_ADV[key],)
        else:
            adjs = CLASS_ADJ.get((self.cls, *key), ADJ[key])
            advs = CLASS_ADV.get((self.cls, *key), ADV[key])
        if adj_ok and (attr != "rate" or self.rng.random() < 0.5 or not self.noun.verbs):
            self.adj = self.rng.choice(adjs) if self.adj is None else f"{self.adj} {self.rng.choice(adjs)}"
        else:
            self.adv = self.rng.choice(advs)

    @property
    def plural(self) -> bool:
        return self.noun.plural

    def _core(self, pre: str | None = None) -> str:
        """The noun with its determiner and modifiers."""
        n = self.noun
        words = " ".join(w for w in (self.adj, pre, n.text) if w)
        if n.det == "a":
            return f"{_article(words)} {words}"
        if n.det == "the":
            return f"the {words}"
        return words if n.det == "" else n.text

    def np(self) -> str:
        """A noun phrase naming the source ("a loud siren", "rain"); a participle phrase where the noun needs its
        verb ("someone knocking on a door")."""
        return self._core() if self.noun.alone and self.adv is None else self.gerund()

    def clause(self, progressive: bool = False) -> str:
        v = self.verb
        if progressive and not v.s.startswith("is "):
            form = f"{'are' if self.plural else 'is'} {v.ing}"
        else:
            form = v.p if self.plural else v.s
        return f"{self._core()} {_place(form, self.adv)}"

    def gerund(self) -> str:
        """"a siren wailing", "someone knocking on a door"; a plain clause-free phrase when impossible."""
        if not self.noun.gerund:
            return self._core_alone()
        return f"{self._core()} {_place(self.verb.ing, self.adv)}"

    def _core_alone(self) -> str:
        """A noun phrase for a source whose noun has no participle phrase ("it" -> "rain falling")."""
        if self.noun.stand_in:
            return _place(self.noun.stand_in, self.adv)
        return self._core()

    def pre(self) -> str:
        """A participle in front ("a wailing siren"); otherwise the noun phrase or participle phrase."""
        if self.verb.pre and self.adv is None and self.noun.det != "-":
            return self._core(self.verb.ing)
        return self.np()

    def event_np(self) -> str:
        """The source as the subject of "is followed by": "a wailing siren", "a whistle blowing"."""
        if self.verb.pre and self.adv is None and self.noun.det != "-":
            return self.pre()
        return self.gerund() if self.noun.gerund else self.np()

    def there(self) -> str:
        """ "there is a siren wailing"; "the wind is blowing" (no "there is the wind")."""
        if self.noun.det == "the" or not self.noun.gerund:
            return self.clause(progressive=True)
        return f"there {'are' if self.plural else 'is'} {self.gerund()}"

    def nominal(self) -> str:
        """Any natural noun phrase for the source (participle in front, participle after, or plain)."""
        choice = self._nominal_pick
        if choice < 0.4 and self.noun.gerund:
            return self.gerund()
        if choice < 0.7:
            return self.pre()
        return self.np()


def _bare(cls: str, rng: random.Random, prefer: tuple[str, ...] = ()) -> tuple[str, str]:
    options = BARE[cls]
    preferred = [o for o in options if o[1] in prefer]
    return rng.choice(preferred or list(options))


def _bare_np(cls: str, rng: random.Random) -> tuple[str, bool]:
    """A noun phrase with its article for negations: ("a siren", False), ("bells", True), ("rain", False)."""
    text, number = _bare(cls, rng)
    if number == "sg":
        return f"{_article(text)} {text}", False
    return text, number == "pl"


# ----------------------------------------------------------------------------------------------------------------
# Scenes
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class SceneView:
    steps: list[list[dict]]
    background: dict | None

    @classmethod
    def of(cls, clip) -> SceneView:
        scene = clip.metadata["scene"]
        events = scene["events"]
        steps = [[events[i] for i in step] for step in scene["steps"]]
        bg = events[scene["background"]] if scene.get("background") is not None else None
        return cls(steps, bg)

    @property
    def events(self) -> list[dict]:
        return [e for step in self.steps for e in step] + ([self.background] if self.background else [])

    @property
    def classes(self) -> set[str]:
        return {e["cls"] for e in self.events}


def _phrases(view: SceneView, rng: random.Random, **kw) -> tuple[list[list[Phrase]], Phrase | None]:
    steps = [[Phrase(e["cls"], rng, e["attributes"], **kw) for e in step] for step in view.steps]
    bg = None
    if view.background:
        bg = Phrase(view.background["cls"], rng, view.background["attributes"], background=True, **kw)
    return steps, bg


def _absent(view: SceneView, rng: random.Random, exclude: set[str] = frozenset()) -> str:
    return rng.choice([c for c in CLASSES if c not in view.classes and c not in exclude])
