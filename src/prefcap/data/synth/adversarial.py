"""Adversarial caption pairs for the simulated listeners, written in plain everyday English.

The phrase table and the caption templates below are written independently of the corpus's own caption grammar
and of the listeners' vocabularies (nothing here is imported from prefcap.data.synth): a listener that only
understands the words the corpus generator happens to use will fail these pairs, as it would fail real people's
captions.

`adversarial_pairs(clips, seed)` returns rows {"clip_id", "kind", "form", "better", "worse"}: for every clip and
every kind that can apply to its scene, one pair in which a careful listener who knows the scene prefers `better`.
`form` names the template that shaped the adversarial side. REQUIRED_KINDS are asserted for the listeners by
tests/test_adversarial.py; EXTRA_KINDS are a dev set that is only reported there. The demo scores its reward
models on every kind (`results.json["rm"]["adversarial"]`).

Run `python -m prefcap.data.synth.adversarial` to print examples of every kind and form.
"""

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


# ----------------------------------------------------------------------------------------------------------------
# The plain describer: every event, the order of steps, simultaneity, and the background
# ----------------------------------------------------------------------------------------------------------------

SEQUENCE_STYLES = ("then", "followed_by", "after", "first", "sentences", "before")
BACKGROUND_STYLES = ("with", "while", "sentence")


def _step_clause(step: list[Phrase], rng: random.Random, loose: bool, subordinate: bool = False) -> str:
    """One step as a clause; `subordinate` (after "after"/"before"): simple present, no inner commas."""
    progressive = rng.random() < 0.25 and not subordinate
    if len(step) == 1:
        return step[0].clause(progressive=progressive)
    a, b = step
    style = rng.choice(("same_time", "while", "as") if loose else ("same_time", "same_time2"))
    if style == "same_time" or subordinate:
        return f"{a.clause()} and {b.clause()} at the same time"
    if style == "same_time2":
        return f"{a.clause()} and, at the same time, {b.clause()}"
    return f"{a.clause()} {style} {b.clause(progressive=style == 'while' and rng.random() < 0.5)}"


def _step_nominal(step: list[Phrase]) -> tuple[str, bool]:
    if len(step) == 1:
        return step[0].nominal(), step[0].plural
    return f"{step[0].nominal()} and {step[1].nominal()} at the same time", True


def _sequence(steps: list[list[Phrase]], rng: random.Random, style: str) -> str:
    n = len(steps)
    if n == 1:
        return _step_clause(steps[0], rng, loose=True)
    clauses = [_step_clause(s, rng, loose=False, subordinate=style in ("after", "before")) for s in steps]
    if style == "then":
        if n == 2:
            return f"{clauses[0]}, {rng.choice(('then', 'and then'))} {clauses[1]}"
        return f"{clauses[0]}, then {clauses[1]}, and finally {clauses[2]}"
    if style == "followed_by":
        rest = [_step_nominal(s)[0] for s in steps[1:]]
        if rng.random() < 0.5 or len(steps[0]) > 1:
            head = f"{clauses[0]}, followed by"
        else:
            head = f"{steps[0][0].event_np()} {'are' if steps[0][0].plural else 'is'} followed by"
        return f"{head} {rest[0]}" + (f" and then {rest[1]}" if n == 3 else "")
    if style == "after":
        tail = f", and then {clauses[2]}" if n == 3 else ""
        return f"after {clauses[0]}, {clauses[1]}{tail}"
    if style == "first":
        tail = f", and finally {clauses[2]}" if n == 3 else ""
        return f"first {clauses[0]}, then {clauses[1]}{tail}"
    if style == "sentences":
        link = rng.choice(("Then", "After that,", "Afterwards,"))
        tail = f". Finally, {clauses[2]}" if n == 3 else ""
        return f"{clauses[0]}. {link} {clauses[1]}{tail}"
    if style == "before":
        if n == 2:
            return f"{clauses[0]} before {clauses[1]}"
        return f"{clauses[0]} before {clauses[1]}, and then {clauses[2]}"
    raise ValueError(style)


def _with_background(body: str, bg: Phrase | None, rng: random.Random, style: str) -> str:
    if bg is None:
        return body + "."
    if style == "while" and " while " in body:
        style = "with"
    if style == "with":
        return f"{body}, with {bg.gerund()} in the background."
    if style == "while":
        return f"{body}, while {bg.clause()} in the background."
    choice = rng.randrange(3)
    if choice == 0:
        return f"{body}. In the background, {bg.clause(progressive=rng.random() < 0.5)}."
    if choice == 1:
        return f"{body}. {_cap(bg.pre())} can be heard in the background."
    return f"{body}. {_cap(bg.there())} in the background."


def _sentence(text: str) -> str:
    """Capitalise every sentence of a caption (sentences end with ". ")."""
    return ". ".join(_cap(s) for s in text.split(". "))


def describe(steps: list[list[Phrase]], bg: Phrase | None, rng: random.Random, style: str | None = None,
             bg_style: str | None = None) -> str:
    """A complete, correct caption of the scene in plain English."""
    if style is None:
        styles = SEQUENCE_STYLES if len(steps) == 2 else SEQUENCE_STYLES[:-1]
        style = rng.choice(styles)
    bg_style = bg_style or rng.choice(BACKGROUND_STYLES)
    return _sentence(_with_background(_sequence(steps, rng, style), bg, rng, bg_style))


def reference(view: SceneView, rng: random.Random, attr_p: float = 0.35, **kw) -> str:
    steps, bg = _phrases(view, rng, attr_p=attr_p)
    return describe(steps, bg, rng, **kw)


def partial(view: SceneView, rng: random.Random, form: str | None = None, event: dict | None = None) -> str:
    """A fluent caption that correctly names one present sound and nothing else."""
    event = event or rng.choice(view.events)
    p = Phrase(event["cls"], rng, event["attributes"], attr_p=0.3)
    form = form or rng.choice(("clause", "can_be_heard", "you_can_hear", "there_is"))
    if form == "clause":
        return _cap(p.clause(progressive=rng.random() < 0.3)) + "."
    if form == "can_be_heard":
        return _cap(p.pre()) + " can be heard."
    if form == "you_can_hear":
        return f"You can hear {p.nominal()}."
    return _cap(p.there()) + "."


# ----------------------------------------------------------------------------------------------------------------
# Adversarial sides
# ----------------------------------------------------------------------------------------------------------------

NEGATION_FORMS = ("no_and", "there_is_no", "neither_nor", "without", "cannot", "absent_clause", "silent")


def negation(view: SceneView, rng: random.Random, form: str) -> str:
    """A caption that denies the present sounds (one or two of them)."""
    events = list(view.events)
    rng.shuffle(events)
    classes = [e["cls"] for e in events[: 2 if len(events) > 1 and form != "cannot" else 1]]
    if form == "no_and":
        words = [_bare(c, rng)[0] for c in classes]
        return _cap(" and ".join(f"no {w}" for w in words)) + " can be heard."
    if form == "there_is_no":
        words = [_bare(c, rng) for c in classes]
        verb = "are" if words[0][1] == "pl" else "is"
        return f"There {verb} no {' or '.join(w for w, _ in words)} {rng.choice(('here', 'in this recording'))}."
    if form == "neither_nor":
        nps = [_bare_np(c, rng) for c in classes]
        return f"Neither {nps[0][0]} nor {nps[1][0]} {'are' if nps[1][1] else 'is'} audible."
    if form == "without":
        words = [_bare(c, rng, prefer=("pl", "mass"))[0] for c in classes]
        return f"Without any {' or '.join(words)}."
    if form == "cannot":
        text, number = _bare(classes[0], rng)
        if rng.random() < 0.5:
            return f"The {text} cannot be heard."
        return f"You cannot hear {_article(text) if number == 'sg' else 'any'} {text}."
    if form == "absent_clause":
        parts = []
        for c in classes:
            p = Phrase(c, rng)
            if p.noun.det == "-" or not p.noun.gerund:  # "no someone knocking" does not work: use a noun
                word, number = _bare(c, rng, prefer=("pl", "mass"))
                parts.append((f"no {word}", number == "pl"))
            else:
                parts.append((f"no {p.noun.text} {_place(p.verb.ing, None)}", p.plural))
        verb = "are" if parts[0][1] else "is"
        return f"There {verb} {' and '.join(t for t, _ in parts)}."
    if form == "silent":
        words = [_bare(c, rng)[0] for c in classes]
        return f"It is completely quiet, with no {' or '.join(words)} at all."
    raise ValueError(form)


VERBLESS_FORMS = ("space", "comma", "period", "dash")


def verbless(view: SceneView, rng: random.Random, form: str) -> str:
    words = [_bare(e["cls"], rng)[0] for e in view.events]
    if form == "space":
        return " ".join(words)
    if form == "comma":
        return ", ".join(words)
    if form == "period":
        return " ".join(_cap(w) + "." for w in words)
    return " - ".join(words)


def _invented(view: SceneView, rng: random.Random, with_article: bool) -> list[tuple[str, str, bool]]:
    """One or two invented sources (clause, participle phrase, plural?), and sometimes an absent class."""
    pool = INVENTED_WITH_ARTICLE if with_article else INVENTED_WITHOUT_ARTICLE
    pool = [x for x in pool if not (INVENTED_CLASH.get(x[0], set()) & view.classes)]
    picks = rng.sample(pool, 2)
    out = []
    for pick in picks[: rng.choice((1, 2))]:
        if with_article:
            subject, verb, ing = pick
            plural = False
        else:
            subject, verb, ing, plural = pick
        out.append((f"{subject} {verb}", f"{subject} {ing}", plural))
    if rng.random() < 0.3:  # sometimes an absent one of the 14 classes too
        cls = _absent(view, rng, exclude={"rain", "wind", "knocking"} if with_article else set())
        p = Phrase(cls, rng, plural=not with_article)
        if with_article and p.noun.det != "a":
            p = Phrase(cls, rng, need_alone=True)
        out.append((p.clause(), p.gerund(), p.plural))
    return out


INVENTED_FORMS = ("while", "also_sentence", "there_is_also", "with_nearby", "prefix")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def add_invented(ref: str, extras: list[tuple[str, str, bool]], form: str, rng: random.Random) -> str:
    body = ref[:-1]
    clauses = [c for c, _, _ in extras]
    gerunds = [g for _, g, _ in extras]
    if form == "while":
        link = "and" if " while " in body else "while"
        return f"{body}, {link} {_join(clauses)} {rng.choice(('nearby', 'in the distance', 'close by'))}."
    if form == "also_sentence":
        return f"{ref} {_cap(_join(clauses))}."
    if form == "there_is_also":
        return f"{ref} There {'are' if extras[0][2] else 'is'} also {_join(gerunds)}."
    if form == "with_nearby":
        return f"{body}, {'and' if ', with ' in body else 'with'} {_join(gerunds)} nearby."
    if form == "prefix":
        return f"{_cap(_join(clauses))}. {ref}"
    raise ValueError(form)


# Plural kind: every source named in the plural.
PLURAL_FORMS = ("clauses", "then", "you_can_hear", "there_are")


def plural_caption(steps: list[list[Phrase]], bg: Phrase | None, rng: random.Random, form: str) -> str:
    flat = [p for s in steps for p in s]
    if form == "clauses":
        parts = [p.clause(progressive=rng.random() < 0.4) for p in flat]
        text = _join(parts)
        if bg is not None:
            text += f", while {bg.clause()} in the background"
        return _cap(text) + "."
    if form == "then":
        step_texts = [" and ".join(p.clause() for p in s) + (" together" if len(s) > 1 else "") for s in steps]
        text = ", then ".join(step_texts)
        if bg is not None:
            text += f", with {bg.gerund()} in the background"
        return _cap(text) + "."
    if form == "you_can_hear":
        text = "You can hear " + _join([p.nominal() for p in flat])
        if bg is not None:
            text += f", with {bg.nominal()} in the background"
        return text + "."
    if form == "there_are":
        text = "There are " + _join([p.gerund() for p in flat])
        if bg is not None:
            text += f", with {bg.nominal()} in the background"
        return text + "."
    raise ValueError(form)


# Paraphrase kind: everyday wording of the whole scene.
PARAPHRASE_FORMS = ("you_can_hear", "followed_by", "as_clauses", "sounds_like", "there_is")


def paraphrase(steps: list[list[Phrase]], bg: Phrase | None, rng: random.Random, form: str) -> str:
    def nominal_step(step):
        if len(step) == 1:
            return step[0].gerund()
        return f"{step[0].gerund()} and {step[1].gerund()} at the same time"

    def clause_step(step):
        if len(step) == 1:
            return step[0].clause(progressive=rng.random() < 0.3)
        return f"{step[0].clause()} as {step[1].clause(progressive=rng.random() < 0.5)}"

    link = rng.choice((", and then ", ", and after that ", ", then "))

    def sequence(parts):
        if len(parts) < 3:
            return link.join(parts)
        return f"{parts[0]}, then {parts[1]}, and finally {parts[2]}"

    if form == "you_can_hear":
        text = "You can hear " + sequence([nominal_step(s) for s in steps])
        if bg is not None:
            text += f", with {bg.gerund()} in the background" if len(steps) > 1 else \
                f" while {bg.clause()} in the background"
        return text + "."
    if form == "followed_by":  # needs two or more steps
        noms = [(nominal_step(s) if len(s) > 1 else s[0].event_np()) for s in steps]
        plural = len(steps[0]) > 1 or steps[0][0].plural
        text = f"{_cap(noms[0])} {'are' if plural else 'is'} followed by {noms[1]}"
        if len(steps) == 3:
            text += f", and then by {noms[2]}"
        if bg is not None:
            text += f", while {bg.clause()} in the background"
        return text + "."
    if form == "as_clauses":
        text = sequence([clause_step(s) for s in steps])
        if bg is not None:
            text += f" as {bg.clause()} in the background" if len(steps) == 1 and len(steps[0]) == 1 else \
                f", and the whole time {bg.clause()} in the background"
        return _cap(text) + "."
    if form == "sounds_like":
        text = "It sounds like " + sequence([nominal_step(s) for s in steps])
        if bg is not None:
            text += f", with {bg.gerund()} in the background"
        return text + "."
    if form == "there_is":
        first = steps[0]
        verb = "are" if first[0].plural else "is"  # agrees with the nearest noun, as people say it
        text = f"There {verb} {nominal_step(first)}"
        for s in steps[1:]:
            text += f", and after that {nominal_step(s)}"
        if bg is not None:
            text += f", with {bg.gerund()} in the background"
        return text + "."
    raise ValueError(form)


ORDER_FORMS = ("can_be_heard", "there_are", "bare_and", "you_can_hear")


def no_order(phrases: list[Phrase], rng: random.Random, form: str) -> str:
    nps = [p.np() for p in phrases]
    if form == "can_be_heard":
        return _cap(_join(nps)) + " can be heard."
    if form == "there_are":
        return f"There {'are' if phrases[0].plural else 'is'} {_join(nps)}."
    if form == "bare_and":
        return _cap(_join(nps)) + "."
    return f"You can hear {_join(nps)}."


STUTTER_FORMS = ("word_repeat", "phrase_repeat", "triple_end", "sentence_repeat")


def stutter(ref: str, rng: random.Random, form: str) -> str:
    words = ref[:-1].split(" ")
    if form == "word_repeat":
        idx = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3] or [len(words) - 1]
        i = rng.choice(idx)
        return " ".join(words[: i + 1] + [words[i].lower()] + words[i + 1:]) + "."
    if form == "phrase_repeat":
        i = rng.randrange(0, max(1, len(words) - 2))
        span = [w.strip(",.") for w in words[i: i + 3]]
        span[0] = span[0].lower() if i == 0 else span[0]
        return " ".join(words[: i + 3] + span + words[i + 3:]) + "."
    if form == "triple_end":
        return " ".join(words + [words[-1]] * 2) + "."
    return f"{ref} {ref}"


CUTOFF_FORMS = ("connective", "adjective", "article", "midword")


def cutoff(view: SceneView, rng: random.Random, form: str, event: dict) -> str:
    p = Phrase(event["cls"], rng)
    if form == "connective":
        return f"{_cap(p.clause())}{rng.choice((', followed by', ', then', ' while', ' and then'))}"
    if form == "adjective":
        return rng.choice(("The sound of a", "There is a", "You can hear a")) + " " + rng.choice(
            ("high", "loud", "low", "faint"))
    if form == "article":
        return f"{_cap(p.clause())} and {rng.choice(('a', 'the'))}"
    other = Phrase(_absent(view, rng) if rng.random() < 0.5 else rng.choice(view.events)["cls"], rng)
    word = other.noun.text.split(" ")[-1]
    return f"{_cap(p.clause())} and {rng.choice(('a', 'the'))} {word[: max(2, len(word) // 2)]}"


# ----------------------------------------------------------------------------------------------------------------
# Kinds
# ----------------------------------------------------------------------------------------------------------------

SUITE_VERSION = 1  # raise when a kind or a form changes: scores made with another version are not comparable
REQUIRED_KINDS = ("negation_vs_partial", "negation_vs_reference", "verbless_vs_reference", "invented_with_article",
                  "invented_without_article", "plural_vs_wrong_event", "paraphrase_vs_wrong_event",
                  "order_vs_no_order")
EXTRA_KINDS = ("stutter_vs_reference", "cutoff_vs_partial", "wrong_order", "wrong_attribute", "other_clip",
               "nonsense_word", "partial_vs_reference", "simultaneous_as_sequence")


def _swap(steps: list[list[Phrase]], bg: Phrase | None, view: SceneView, rng: random.Random,
          **kw) -> tuple[list[list[Phrase]], Phrase | None]:
    """The same wording with one source replaced by an absent class."""
    slots = [(i, j) for i, s in enumerate(steps) for j in range(len(s))] + ([None] if bg is not None else [])
    slot = rng.choice(slots)
    wrong = Phrase(_absent(view, rng), rng, **kw)
    new_steps = [list(s) for s in steps]
    if slot is None:
        return new_steps, wrong
    new_steps[slot[0]][slot[1]] = wrong
    return new_steps, bg


def _seeded(seed: int, clip_id: str, kind: str, tag: str = "") -> random.Random:
    return random.Random(f"{seed}:{clip_id}:{kind}:{tag}")


def _pick(forms: tuple[str, ...], index: int, ok=lambda form: True) -> str | None:
    for k in range(len(forms)):
        form = forms[(index + k) % len(forms)]
        if ok(form):
            return form
    return None


def _row(clip, kind, form, better, worse) -> dict:
    return {"clip_id": clip.id, "kind": kind, "form": form, "better": better, "worse": worse}


def _kind_rows(kind: str, index: int, clip, view: SceneView, clips, views, seed: int) -> dict | list[dict] | None:
    rng = _seeded(seed, clip.id, kind)
    n_events = len(view.events)
    if kind == "negation_vs_partial":
        form = _pick(NEGATION_FORMS, index, lambda f: f != "neither_nor" or n_events > 1)
        return _row(clip, kind, form, partial(view, rng), negation(view, rng, form))
    if kind == "negation_vs_reference":
        form = _pick(NEGATION_FORMS, index + 3, lambda f: f != "neither_nor" or n_events > 1)
        return _row(clip, kind, form, reference(view, rng), negation(view, rng, form))
    if kind == "verbless_vs_reference":
        form = _pick(VERBLESS_FORMS, index)
        return _row(clip, kind, form, reference(view, rng), verbless(view, rng, form))
    if kind in ("invented_with_article", "invented_without_article"):
        form = _pick(INVENTED_FORMS, index)
        ref = reference(view, rng)
        return _row(clip, kind, form, ref,
                    add_invented(ref, _invented(view, rng, kind == "invented_with_article"), form, rng))
    if kind == "plural_vs_wrong_event":
        form = _pick(PLURAL_FORMS, index)
        steps, bg = _phrases(view, rng, plural=True)
        wrong_steps, wrong_bg = _swap(steps, bg, view, rng, plural=True)
        compose_seed = rng.random()
        return _row(clip, kind, form, plural_caption(steps, bg, random.Random(compose_seed), form),
                    plural_caption(wrong_steps, wrong_bg, random.Random(compose_seed), form))
    if kind == "paraphrase_vs_wrong_event":
        form = _pick(PARAPHRASE_FORMS, index, lambda f: f != "followed_by" or len(view.steps) > 1)
        steps, bg = _phrases(view, rng, colloquial=True, attr_p=0.2)
        wrong_steps, wrong_bg = _swap(steps, bg, view, rng, colloquial=True)
        compose_seed = rng.random()
        return _row(clip, kind, form, paraphrase(steps, bg, random.Random(compose_seed), form),
                    paraphrase(wrong_steps, wrong_bg, random.Random(compose_seed), form))
    if kind == "order_vs_no_order":  # two pairs per clip with sequential steps (a quarter of scenes have one step)
        if len(view.steps) < 2:
            return None
        rows = []
        for offset in (0, 2):
            form = _pick(ORDER_FORMS, index + offset)
            steps, bg = _phrases(view, rng, need_alone=True)
            better = describe(steps, bg, rng, style=rng.choice(("then", "followed_by", "after", "first", "before")))
            flat = [p for s in steps for p in s] + ([bg] if bg else [])
            rows.append(_row(clip, kind, form, better, no_order(flat, rng, form)))
        return rows
    # --- extra kinds ---
    if kind == "stutter_vs_reference":
        form = _pick(STUTTER_FORMS, index)
        ref = reference(view, rng)
        return _row(clip, kind, form, ref, stutter(ref, rng, form))
    if kind == "cutoff_vs_partial":
        form = _pick(CUTOFF_FORMS, index)
        event = rng.choice(view.events)
        return _row(clip, kind, form, partial(view, rng, event=event), cutoff(view, rng, form, event))
    if kind == "wrong_order":
        if len(view.steps) < 2:
            return None
        form = _pick(("then", "followed_by", "after", "before", "first"), index)
        steps, bg = _phrases(view, rng)
        compose_seed = rng.random()
        wrong = list(reversed(steps)) if len(steps) == 2 else [steps[1], steps[0], steps[2]]
        if len(steps) == 3 and rng.random() < 0.5:
            wrong = [steps[0], steps[2], steps[1]]
        return _row(clip, kind, form, describe(steps, bg, random.Random(compose_seed), style=form),
                    describe(wrong, bg, random.Random(compose_seed), style=form))
    if kind == "wrong_attribute":
        candidates = [(e, a) for e in view.events for a in ("loudness", "pitch", "rate") if a in e["attributes"]]
        preferred = ("loudness", "pitch", "rate")[index % 3]
        pool = [c for c in candidates if c[1] == preferred] or candidates
        event, attr = rng.choice(pool)
        value = event["attributes"][attr]
        compose_seed = rng.random()
        captions = []
        for v in (value, OPPOSITE[value]):
            r = random.Random(compose_seed)
            steps = [[Phrase(e["cls"], r, e["attributes"], attr=attr if e is event else None, attr_value=v,
                             plain=True) for e in s] for s in view.steps]
            bg = None
            if view.background:
                e = view.background
                bg = Phrase(e["cls"], r, e["attributes"], attr=attr if e is event else None, attr_value=v, plain=True)
            captions.append(describe(steps, bg, r))
        return _row(clip, kind, attr, captions[0], captions[1])
    if kind == "other_clip":
        form = ("disjoint", "shared_class")[index % 2]
        others = [(k, v) for k, v in enumerate(views) if clips[k].id != clip.id]
        if form == "shared_class":
            pool = [k for k, v in others if len(v.classes & view.classes) == 1 and v.classes != view.classes]
        else:
            pool = [k for k, v in others if not v.classes & view.classes]
        if not pool:
            form, pool = "disjoint", [k for k, v in others if not v.classes & view.classes]
        other = views[rng.choice(pool)]
        return _row(clip, kind, form, reference(view, rng), reference(other, rng))
    if kind == "nonsense_word":
        form = _pick(("extra_clause", "adjective", "prefix_sentence"), index)
        compose_seed = rng.random()
        word = rng.choice(NONSENSE)
        verb = rng.choice(("hums", "rattles", "squeaks", "clatters"))
        better = reference(view, random.Random(compose_seed), attr_p=0.0)
        if form == "extra_clause":
            worse = f"{better[:-1]}, while {_article(word)} {word} {verb}."
        elif form == "prefix_sentence":
            worse = f"{_cap(_article(word))} {word} {verb}. {better}"
        else:
            r = random.Random(compose_seed)
            adj = rng.choice(NONSENSE_ADJ)
            steps = [[Phrase(e["cls"], r, e["attributes"], attr_p=0.0,
                             extra_adj=adj if (i, j) == (0, 0) else None) for j, e in enumerate(s)]
                     for i, s in enumerate(view.steps)]
            bg = Phrase(view.background["cls"], r, view.background["attributes"]) if view.background else None
            worse = describe(steps, bg, r)
            if worse == better or adj not in worse:  # the first source's noun takes no adjective
                worse = f"{better[:-1]}, while {_article(word)} {word} {verb}."
                form = "extra_clause"
        return _row(clip, kind, form, better, worse)
    if kind == "partial_vs_reference":
        if n_events < 2:
            return None
        form = _pick(("clause", "can_be_heard", "you_can_hear", "there_is"), index)
        return _row(clip, kind, form, reference(view, rng), partial(view, rng, form=form))
    if kind == "simultaneous_as_sequence":
        multi = [i for i, s in enumerate(view.steps) if len(s) > 1]
        if not multi:
            return None
        form = _pick(("then", "followed_by", "after", "first"), index)
        steps, bg = _phrases(view, rng)
        split = [q for s in steps for q in ([[s[0]], [s[1]]] if len(s) > 1 else [s])]
        compose_seed = rng.random()
        better = describe(steps, bg, random.Random(compose_seed), style=form)
        worse = describe(split, bg, random.Random(compose_seed), style=form)
        return _row(clip, kind, form, better, worse)
    raise ValueError(kind)


def adversarial_pairs(clips, seed: int = 0, kinds: tuple[str, ...] = REQUIRED_KINDS + EXTRA_KINDS) -> list[dict]:
    """Rows {"clip_id", "kind", "form", "better", "worse"} for every clip and every kind that applies to it;
    a deterministic function of the clips and `seed`."""
    views = [SceneView.of(c) for c in clips]
    rows = []
    for kind in kinds:
        for index, (clip, view) in enumerate(zip(clips, views, strict=True)):
            made = _kind_rows(kind, index, clip, view, clips, views, seed)
            for row in [made] if isinstance(made, dict) else made or []:
                if row["better"] != row["worse"]:
                    rows.append(row)
    return rows


if __name__ == "__main__":  # print examples of every kind and form for a careful read
    import collections
    import sys

    import numpy as np

    from prefcap.data.records import Clip
    from prefcap.data.synth.scene import sample_scene

    rng = np.random.default_rng(7)
    clips = [Clip(id=f"target-{k}", domain="target", metadata={"scene": sample_scene(rng, "target").to_dict()})
             for k in range(int(sys.argv[1]) if len(sys.argv) > 1 else 60)]
    rows = adversarial_pairs(clips)
    by = collections.defaultdict(list)
    for row in rows:
        by[(row["kind"], row["form"])].append(row)
    for kind in REQUIRED_KINDS + EXTRA_KINDS:
        n = sum(len(v) for (k, _), v in by.items() if k == kind)
        print(f"\n=== {kind}: {n} rows")
        for (k, form), items in by.items():
            if k != kind:
                continue
            print(f"  -- {form} ({len(items)})")
            for row in items[:3]:
                print(f"     + {row['better']}\n     - {row['worse']}")
