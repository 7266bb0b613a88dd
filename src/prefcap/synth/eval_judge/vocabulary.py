"""What the evaluation judge knows of English: sound sources, the verbs of sounds, the words of attributes,
relations and negation.

Written for this judge from everyday English, not from the corpus: it knows far more sources than the scenes
hold (animals, people, vehicles, tools, weather, household), so a caption that names any of them where the clip
has none is caught inventing, and it knows the synonyms people use ("police car", "gusts", "a buzzer"). Entries are
lemmas (spaCy's lemma of each word; plurals and verb forms reduce to them). A *concept* is one of the scene's
sound classes or the name of any other source; an entry lists every concept it may mean ("ringing": a bell, an
alarm or a phone), and a mention is right when one of them is in the clip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The scene classes this judge can be asked about. Their names are the corpus's, since scenes are stored with
# them; the words that name them below are this judge's own.
SCENE_CLASSES = frozenset({
    "siren", "beeping", "bell", "engine", "rain", "knocking", "footsteps", "clock", "birds", "whistle", "drum",
    "piano", "alarm", "wind",
})


@dataclass(frozen=True)
class Sense:
    concepts: tuple[str, ...]  # what the words may name; any concept outside SCENE_CLASSES is another source
    vague: bool = False  # names a kind of sound rather than its source ("music", "a tone")


def _table(text: str) -> dict[tuple[str, ...], Sense]:
    """Entries "lemma phrase, lemma phrase: concept concept [vague]" (the phrases may run over several lines)
    -> {phrase words: Sense}."""
    table: dict[tuple[str, ...], Sense] = {}
    for entry in re.findall(r"[^:]+:[^\n]*", text):
        if "#" in entry:
            raise ValueError(f"no comments inside a vocabulary table: {entry!r}")
        phrases, _, meaning = " ".join(entry.split()).partition(":")
        if not meaning.strip():
            raise ValueError(f"vocabulary entry without a meaning: {phrases!r}")
        words = meaning.split()
        sense = Sense(tuple(w for w in words if w != "vague"), vague="vague" in words)
        for phrase in phrases.split(","):
            table[tuple(phrase.split())] = sense
    return table


# Nouns (and gerunds used as nouns) that name a sound's source.
SOURCE_NOUNS = _table("""
siren, police siren, ambulance siren, emergency siren, fire siren, air raid siren, police car, ambulance, fire
    truck, fire engine, squad car, wail, wailing, klaxon: siren
beep, beeping, bleep, bleeping, beeper, electronic beep, pip: beeping
tone, electronic tone, signal, electronic signal: beeping alarm vague
bell, church bell, doorbell, bicycle bell, handbell, chime, chiming, wind chime, gong, toll, tolling, peal,
    carillon, ding, dong: bell
ringing: bell alarm phone
engine, motor, car engine, motor engine, engine hum, idling, car, truck, vehicle, van, bus, motorcycle, motorbike,
    tractor, lawnmower, lawn mower, generator, traffic, vehicle engine: engine
rumble, rumbling, roar, roaring: engine thunder
hum, humming, drone, droning, whir, whirr, whirring: engine insect fan vague
rain, rainfall, raindrop, drizzle, downpour, rainstorm, shower, pitter patter, pattering, patter: rain
storm: rain wind
thunderstorm: rain thunder
knock, knocking, rap, rapping, door knock, door knocking: knocking
tap, tapping, bang, banging, thud, thudding, pounding, thump, thumping: knocking drum
footstep, step, footfall, footsteps, walking, stomp, stomping, shuffle, shuffling, pacing, tread: footsteps
clock, ticking, tick, tock, tick tock, ticking clock, clock tick, wall clock, grandfather clock, pocket watch,
    watch, metronome, clockwork: clock
timer: clock beeping
microwave, oven timer, kitchen timer: beeping object
bird, songbird, birdsong, bird song, birdcall, bird call, chirp, chirping, tweet, tweeting, twitter, twittering,
    warble, warbling, sparrow, robin, finch, songbird chirp, pigeon, dove, crow, seagull, gull, owl, parrot, blackbird,
    nightingale, wren, starling: birds
whistle, whistling, referee whistle, whistle blast, police whistle, tin whistle, shriek, shrieking: whistle
drum, drummer, drumming, drumbeat, drum beat, bass drum, snare, snare drum, tom, percussion, kick drum, bongo,
    tambourine, beat: drum
piano, piano music, piano melody, keyboard, pianist, grand piano, piano key, piano note, piano chord: piano
music, song: piano drum music vague
melody, tune: piano whistle music vague
note: piano whistle bell music vague
chord: piano music vague
alarm, fire alarm, car alarm, smoke alarm, burglar alarm, security alarm, buzzer, alarm bell, blare,
    blaring, buzz, buzzing: alarm
wind, breeze, gust, gust of wind, windstorm, gale, draft, draught, whoosh, whooshing, howling wind, howl, howling: wind
dog, puppy, bark, barking, woof, growl, growling, hound: dog
cat, kitten, meow, meowing, purr, purring: cat
cow, moo, mooing, horse, neigh, neighing, sheep, bleat, goat, pig, oink, rooster, hen, chicken, cluck, duck, quack,
    frog, croak, croaking, lion, roar of a lion, monkey, donkey, wolf, elephant: animal
insect, cricket, bee, fly, mosquito, cicada, grasshopper: insect
baby, infant, toddler: baby
crying, cry, sob, sobbing: baby voice
voice, speech, talk, talking, conversation, chatter, chattering, chat, speaking, speaker, shout, shouting, yell,
    yelling, scream, screaming, whisper, whispering, laughter, laugh, laughing, giggle, cough, coughing, sneeze,
    singing, singer, choir, announcement, announcer, crowd, audience, cheering, cheer, applause, clapping, clap: voice
radio, television, tv, ringtone: device
guitar, violin, cello, trumpet, trombone, saxophone, flute, clarinet, harp, organ, accordion, harmonica, bagpipe,
    orchestra, band, synthesizer: instrument
helicopter, airplane, aeroplane, plane, jet, aircraft, propeller: aircraft
train, railway, tram, subway: train
horn, car horn, honk, honking: horn
thunder, lightning, thunderclap: thunder
water, stream, river, creek, brook, waterfall, wave, ocean, sea, surf, tide, splash, splashing,
    faucet, sink, fountain, toilet, bubble, bubbling, gurgle, gurgling, trickle, trickling, flow, flowing: water
fire, crackle, crackling, campfire, fireplace, fireworks, firework: fire
explosion, blast, gunshot, gun, shot, gunfire, cannon: explosion
wee woo, nee naw, two-tone siren, woo-woo, woo-woo-woo: siren
plink, plonk, plink plonk, plunk: piano
beep beep, beep-beep, beep-beep-beep: beeping
warning, warning signal, warning tone: beeping alarm siren vague
ding dong, ding-dong, clang, clanging: bell
knock knock, knock-knock, rat-a-tat: knocking
tick-tock, tick tock: clock
tweet tweet, chirp chirp, cheep: birds
vroom, brrrm, brrrrm, brum: engine
toot, whistle note: whistle
boom boom, ba-dum, rat-a-tat-tat: drum
pitter-patter, drip drop: rain
drip, dripping, drop: rain water
woosh: wind
alarm clock: alarm clock
glass, shatter, shattering, crash, smash, slam, slamming, creak, creaking, squeak, squeaking, clatter, clattering,
    clang, clanging, clank, rattle, rattling, jingle, jingling, click, clicking, scrape, scraping, rustle, rustling,
    crunch, crunching, hammer, hammering, saw, sawing, drill, drilling, typing, vacuum, vacuum cleaner, blender, fan,
    air conditioner, refrigerator, fridge, washing machine, dishwasher, kettle, printer, paper, keys, coin, dish, plate,
    cutlery: object
""")

# People and animals that make the sound a verb names: "someone knocks" is knocking, "a man walks" is footsteps;
# with no sound verb they are heard as voices.
AGENTS = frozenset({
    "someone", "somebody", "person", "people", "man", "men", "woman", "women", "child", "children", "kid", "boy",
    "girl", "guy", "lady", "referee", "player", "musician", "crowd", "group", "neighbor",
    "neighbour", "visitor", "he", "she", "they",
})

# Verbs (lemmas) that name a sound, and what they name when their subject is not itself a source ("something
# beeps", "it is raining", "someone whistles"); with a source as subject they only describe it.
SOUND_VERBS = _table("""
wail: siren baby
blare: alarm siren horn music
beep, bleep: beeping
ring: bell alarm phone
chime, toll, peal, ding, dong: bell
hum, whir, whirr, drone: engine insect fan
idle, rev, rumble, roar, putter, sputter, purr: engine
drive, accelerate: engine
rain, pour, drizzle, patter, sprinkle: rain
drip: rain water
knock, rap: knocking
tap, bang, pound, thump, thud: knocking drum
walk, step, stomp, shuffle, pace, tread, march, tiptoe, stroll, stride, run, jog: footsteps
beat: drum
tick, tock: clock
chirp, tweet, twitter, warble, squawk, caw, coo, trill, peep: birds
sing: birds voice
whistle, shriek: whistle wind
drum: drum
boom: drum thunder explosion
buzz: alarm insect
blow, howl, gust, whoosh, rustle: wind
bark, woof, growl, yelp, whimper: dog
meow, mew: cat
moo, neigh, bleat, oink, cluck, quack, croak: animal
talk, speak, chat, say, shout, yell, scream, laugh, giggle, cry, sob, cough, sneeze, whisper, mumble, murmur,
    chatter, converse, cheer, clap, applaud, call, announce: voice
honk, toot: horn
thunder: thunder
splash, flow, trickle, gurgle, babble, bubble: water
crackle, sizzle: fire
explode, fire, shoot: explosion
crash, slam, shatter, smash, creak, squeak, clatter, clang, clank, rattle, jingle, click, scrape, crunch, hammer,
    saw, drill, type: object
""")

# Verbs of hearing and of happening: they carry no sound of their own.
GENERIC_VERBS = frozenset({
    "be", "hear", "sound", "play", "occur", "happen", "go", "continue", "start", "begin", "stop", "end", "follow",
    "precede", "accompany", "fade", "echo", "repeat", "fall", "pass", "approach", "move", "come", "leave",
    "resonate", "reverberate", "fill", "can", "could", "will", "would", "may", "might", "do", "have", "get", "keep",
    "make", "produce", "emit", "listen", "notice", "perceive", "detect", "record", "capture", "seem", "appear",
    "become", "remain", "stay", "join", "interrupt", "break", "cease", "die", "build", "grow", "rise", "intensify",
    "increase", "decrease", "sit", "stand", "work", "operate", "activate", "set", "turn", "pass by", "go off",
    "sound off", "take", "give", "follow up", "overlap", "mix", "blend", "alternate", "last", "persist",
})

# Nouns that are neither sources nor odd: places, parts of a recording, sound in general.
NEUTRAL_NOUNS = frozenset({
    "sound", "noise", "background", "foreground", "distance", "time", "moment", "while", "second", "minute",
    "pattern", "series", "sequence", "loop", "clip", "recording", "audio", "scene", "start", "beginning",
    "middle", "end", "area", "place", "room", "house", "home", "building", "street", "road", "city", "town",
    "outside", "inside", "park", "forest", "field", "roof", "ground", "floor", "wall", "window", "church",
    "station", "machine", "machinery", "device", "equipment", "appliance", "gadget", "phone", "telephone",
    "cellphone", "computer", "kit", "set", "roll", "solo", "recital", "performance", "track", "lesson", "yard",
    "garden", "kitchen", "office", "hall", "rhythm", "volume", "pitch",
    "tempo", "speed", "intensity", "level", "burst", "interval", "succession", "row", "bit", "lot", "couple",
    "kind", "type", "sort", "one", "thing", "something", "nothing", "anything", "everything", "it",
    "that", "this", "there", "police", "surface", "door", "doors", "doorway", "metal", "wood", "way", "front", "back",
    "top", "side", "direction", "silence", "pause", "gap", "break", "ambience", "atmosphere", "environment",
})

# Words that say a sound is absent, and nouns that say nothing is heard.
NEGATORS = frozenset({"no", "not", "n't", "never", "without", "neither", "nor", "none", "nobody", "nothing", "absent",
                      "missing"})
SILENCE_WORDS = frozenset({"silence", "silent", "quiet", "nothing", "nobody", "none"})
ABSENCE_NOUNS = frozenset({"absence", "lack"})
INSTEAD_WORDS = frozenset({"instead", "rather"})  # "a bell rather than a siren": the siren is not there

# Attribute words: (attribute, value). "low" and "high" are pitch, as in "a low hum".
ATTRIBUTE_WORDS: dict[str, tuple[str, str]] = {
    **{w: ("loudness", "loud") for w in (
        "loud", "loudly", "noisy", "noisily", "booming", "thunderous", "deafening", "powerful", "intense", "strong",
        "heavy", "clamorous", "forceful", "forcefully", "emphatic", "vigorous", "vigorously")},
    **{w: ("loudness", "soft") for w in (
        "soft", "softly", "quiet", "quietly", "faint", "faintly", "gentle", "gently", "muted", "muffled", "subdued",
        "light", "lightly", "hushed", "weak", "barely", "distant", "far", "dim", "low-volume", "delicate",
        "delicately")},
    **{w: ("pitch", "high") for w in (
        "high", "high-pitched", "shrill", "piercing", "squeaky", "squealing", "treble", "tinny")},
    **{w: ("pitch", "low") for w in ("low", "low-pitched", "deep", "bass", "rumbly", "booming-low", "throaty")},
    **{w: ("rate", "fast") for w in (
        "fast", "rapid", "rapidly", "quick", "quickly", "hurried", "hurriedly", "frantic", "frantically", "brisk",
        "briskly", "speedy", "swift", "swiftly", "hasty", "hastily", "urgent", "urgently")},
    **{w: ("rate", "slow") for w in (
        "slow", "slowly", "leisurely", "sluggish", "sluggishly", "unhurried", "lazy", "lazily", "plodding")},
}

# Relation words. Order: "then", "before", "followed by", "later"; reverse order: "after", "following";
# at the same time: "while", "as", "with", "together"; and the background.
FORWARD = frozenset({"then", "before", "later", "afterwards", "afterward", "next", "subsequently", "thereafter",
                     "eventually", "finally", "until", "till"})
FORWARD_PHRASES = (("followed", "by"), ("after", "that"), ("after", "which"), ("gives", "way", "to"),
                   ("give", "way", "to"), ("replaced", "by"), ("succeeded", "by"), ("and", "then"),
                   ("after", "this"))
BACKWARD = frozenset({"after", "following", "once"})
BACKWARD_PHRASES = (("preceded", "by"),)
TOGETHER = frozenset({"while", "as", "with", "together", "simultaneously", "alongside", "amid", "amidst",
                      "during", "over", "meanwhile", "concurrently", "accompanied", "along", "against"})
TOGETHER_PHRASES = (("at", "the", "same", "time"), ("at", "once"), ("along", "with"), ("accompanied", "by"),
                    ("in", "unison"), ("mixed", "with"), ("on", "top", "of"))
BACKGROUND_PHRASES = (("in", "the", "background"), ("in", "background"), ("behind", "it"), ("behind", "them"),
                      ("in", "the", "back"), ("underneath",), ("throughout",), ("all", "along"),
                      ("the", "whole", "time"), ("constantly", "in", "the", "background"))
BACKGROUND_LEADS = (("backdrop", "of"), ("background", "of"), ("bed", "of"))
FIRST_WORDS = frozenset({"first", "initially", "firstly", "begins", "starts"})

# Saying the caption names everything there is: "only a siren", "nothing else", "an otherwise silent room".
EXCLUSIVE_PHRASES = (("only",), ("nothing", "else"), ("nothing", "but"), ("no", "other"), ("otherwise", "silent"),
                     ("otherwise", "quiet"), ("no", "background"), ("background", "is", "quiet"),
                     ("background", "is", "silent"), ("background", "is", "totally", "quiet"), ("alone",))
# Words that make a claim uncertain.
HEDGES = frozenset({"maybe", "perhaps", "possibly", "probably", "might", "seems", "seem", "apparently", "unclear",
                    "uncertain", "presumably", "?"})
# A source after these is a comparison, not a sound of the clip: "a siren wails like a drum".
COMPARISON_PHRASES = (("like",), ("reminiscent", "of"), ("resembling",), ("similar", "to"), ("as", "if"),
                      ("akin", "to"))
# "X is louder than Y": the attribute and the value it claims for X.
COMPARATIVES: dict[str, tuple[str, str]] = {
    "louder": ("loudness", "loud"), "noisier": ("loudness", "loud"), "quieter": ("loudness", "soft"),
    "softer": ("loudness", "soft"), "fainter": ("loudness", "soft"), "higher": ("pitch", "high"),
    "higher-pitched": ("pitch", "high"), "shriller": ("pitch", "high"), "lower": ("pitch", "low"),
    "lower-pitched": ("pitch", "low"), "deeper": ("pitch", "low"), "faster": ("rate", "fast"),
    "quicker": ("rate", "fast"), "slower": ("rate", "slow"),
}
# Sound words said over and over as the sound goes ("beep beep beep", "drip drip"): not a stutter.
ONOMATOPOEIA = frozenset({"beep", "bleep", "ding", "dong", "tick", "tock", "drip", "drop", "boom", "bang", "knock",
                          "woo", "wee", "nee", "naw", "tweet", "chirp", "cheep", "vroom", "brum", "whoosh", "woosh",
                          "plink", "plonk", "plunk", "clang", "toot", "honk", "woof", "meow", "buzz", "tap", "rat",
                          "tat", "thump", "thud", "clip", "clop", "pitter", "patter", "ring"})
