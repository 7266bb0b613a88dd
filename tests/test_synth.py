"""The synthetic corpus: determinism, audible classes and attributes, caption grammar, domains."""

from collections import Counter

import numpy as np
import pytest

from prefcap.data.records import read_captions, read_clips
from prefcap.errors import PrefcapError
from prefcap.synth import grammar
from prefcap.synth.corpus import SynthConfig, assign_splits, synthesize
from prefcap.synth.lexicon import CLASS_NAMES, CLASSES
from prefcap.synth.parse import parse_caption
from prefcap.synth.render import render_event
from prefcap.synth.scene import Event, Scene, sample_scene

SR = 16_000


def _band_features(x: np.ndarray) -> np.ndarray:
    """Mean and spread of 32 log-spaced band energies: a crude ear."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.unique(np.geomspace(1, 257, 33).astype(int))
    bands = np.log(np.stack([power[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:], strict=True)], 1) + 1e-8)
    return np.concatenate([bands.mean(0), bands.std(0)])


def _event(cls: str, **attributes: str) -> Event:
    return Event(cls, {"loudness": "loud", **attributes}, 0.0, 2.0)


def _random_attributes(cls: str, rng: np.random.Generator) -> dict[str, str]:
    event_class = CLASSES[cls]
    attributes = {}
    if event_class.has_pitch:
        attributes["pitch"] = str(rng.choice(["high", "low"]))
    if event_class.has_rate:
        attributes["rate"] = str(rng.choice(["fast", "slow"]))
    return attributes


def test_at_least_twelve_classes_are_acoustically_distinct():
    """Nearest-neighbour on band energies tells every class apart across random attributes."""
    rng = np.random.default_rng(0)
    features, labels = [], []
    for cls in CLASS_NAMES:
        for _ in range(6):
            features.append(_band_features(render_event(rng, _event(cls, **_random_attributes(cls, rng)), SR)))
            labels.append(cls)
    x = np.array(features)
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    distances = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    predicted = np.array(labels)[distances.argmin(1)]
    assert len(CLASS_NAMES) >= 12
    assert (predicted == np.array(labels)).mean() >= 0.95


def _centroid(x: np.ndarray) -> float:
    """Power-weighted spectral centroid in Hz."""
    power = np.abs(np.fft.rfft(x)) ** 2
    return float((np.fft.rfftfreq(len(x), 1 / SR) * power).sum() / power.sum())


def _onsets_per_second(x: np.ndarray) -> float:
    """Onsets (a >4 dB jump of the 10 ms energy envelope, at least 60 ms apart) per second."""
    hop = SR // 100
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    level = 10 * np.log10((frames**2).mean(1) + 1e-10)
    onsets, last = 0, -10
    for t in range(1, len(level)):
        if level[t] - level[t - 1] > 4 and t - last >= 6:
            onsets, last = onsets + 1, t
    return onsets / (len(x) / SR)


@pytest.mark.parametrize("cls", [c for c in CLASS_NAMES if CLASSES[c].has_pitch])
def test_pitch_attribute_is_audible(cls):
    rng = np.random.default_rng(1)
    high = _centroid(render_event(rng, _event(cls, pitch="high", rate="slow"), SR))
    low = _centroid(render_event(rng, _event(cls, pitch="low", rate="slow"), SR))
    assert high > 1.2 * low


@pytest.mark.parametrize("cls", [c for c in CLASS_NAMES if CLASSES[c].has_rate])
def test_rate_attribute_is_audible(cls):
    rng = np.random.default_rng(2)
    pitch = {"pitch": "high"} if CLASSES[cls].has_pitch else {}
    fast = _onsets_per_second(render_event(rng, Event(cls, {"loudness": "loud", "rate": "fast", **pitch}, 0, 4), SR))
    slow = _onsets_per_second(render_event(rng, Event(cls, {"loudness": "loud", "rate": "slow", **pitch}, 0, 4), SR))
    assert fast > 1.3 * slow


def test_soft_is_much_quieter_than_loud():
    rng = np.random.default_rng(3)
    for cls in CLASS_NAMES:
        loud = render_event(rng, Event(cls, {"loudness": "loud", **_random_attributes(cls, rng)}, 0, 2), SR)
        soft = render_event(rng, Event(cls, {"loudness": "soft", **_random_attributes(cls, rng)}, 0, 2), SR)
        ratio_db = 20 * np.log10(np.sqrt(np.mean(loud**2)) / np.sqrt(np.mean(soft**2)))
        assert 12 < ratio_db < 16, cls


def test_corpus_is_deterministic_and_complete(tmp_path):
    config = SynthConfig(n=30, domain="source", seed=5)
    clips = synthesize(tmp_path / "a", config, progress=False)
    synthesize(tmp_path / "b", config, progress=False)
    for name in ("clips.jsonl", "captions.jsonl", "audio/src-s5-000007.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = synthesize(tmp_path / "c", SynthConfig(n=30, domain="source", seed=6), progress=False)
    assert [c.metadata for c in other] != [c.metadata for c in clips]

    read_back = read_clips(tmp_path / "a" / "clips.jsonl")
    assert [c.id for c in read_back] == [c.id for c in clips]
    assert all(4.0 <= c.duration <= 5.0 and c.sample_rate == SR for c in read_back)
    assert Counter(c.split for c in read_back) == {"train": 24, "val": 3, "test": 3}
    references = Counter(c.clip_id for c in read_captions(tmp_path / "a" / "captions.jsonl"))
    assert set(references) == {c.id for c in clips} and set(references.values()) == {5}


def test_corpus_at_48khz(tmp_path):
    import soundfile as sf

    clip = synthesize(tmp_path, SynthConfig(n=1, sample_rate=48_000), progress=False)[0]
    audio, sr = sf.read(clip.audio_path)
    assert sr == 48_000 and len(audio) == round(clip.duration * 48_000)


def test_bad_synth_config_is_refused(tmp_path):
    with pytest.raises(PrefcapError, match="domain"):
        synthesize(tmp_path, SynthConfig(domain="mars"), progress=False)
    with pytest.raises(PrefcapError, match="sum to 1"):
        assign_splits(10, {"train": 0.5, "test": 0.2}, np.random.default_rng(0))


def test_split_sizes_are_exact():
    fractions = {"prefs": 0.35, "rl": 0.35, "val": 0.1, "test": 0.2}
    counts = Counter(assign_splits(101, fractions, np.random.default_rng(0)))
    assert sum(counts.values()) == 101
    assert all(abs(counts[name] - 101 * f) < 1 for name, f in fractions.items())


@pytest.mark.parametrize("domain", ["source", "target"])
def test_parser_reads_back_every_reference_exactly(domain):
    """What the grammar writes, the parser recovers: events, background, attributes, relations, no faults."""
    rng = np.random.default_rng(7)
    for k in range(400):
        scene = sample_scene(rng, domain)
        spec = grammar.spec_from_scene(scene, rng)
        parsed = parse_caption(grammar.render(spec, k))
        assert parsed.classes == scene.classes
        assert parsed.background == {e.cls for e in scene.events if e.background}
        for mention in spec.mentions:
            assert parsed.attributes_of(mention.cls) == {a: {v} for a, v in mention.attributes.items()}
        for first, second in parsed.before:
            assert scene.step_of(first) < scene.step_of(second)
        for pair in parsed.together:
            first, second = tuple(pair)
            assert scene.step_of(first) == scene.step_of(second)
        assert (parsed.repetitions, parsed.truncated, parsed.grammar_issues) == (0, False, 0)


def test_references_vary_in_wording_and_structure():
    rng = np.random.default_rng(8)
    scenes = [sample_scene(rng, "target") for _ in range(200)]
    captions = [grammar.reference_captions(scene, seed=k) for k, scene in enumerate(scenes)]
    assert all(len(set(refs)) == 5 for refs in captions)
    openings = Counter(" ".join(c.split()[:2]).lower() for refs in captions for c in refs)
    words = {w for refs in captions for c in refs for w in c.lower().strip(".").replace(",", "").split()}
    assert len(openings) > 100 and len(words) > 120
    joined = " ".join(c for refs in captions for c in refs).lower()
    for marker in (" then ", "followed by", "after ", " while ", "in the background", " is heard", "the sound of"):
        assert marker in joined


def test_corruptions_are_what_they_claim():
    rng = np.random.default_rng(9)
    scene = Scene.from_dict(
        {"events": [{"cls": "siren", "attributes": {"loudness": "loud", "pitch": "high"}, "onset": 0.1,
                     "offset": 2.0, "background": False},
                    {"cls": "bell", "attributes": {"loudness": "soft", "pitch": "low", "rate": "slow"},
                     "onset": 2.3, "offset": 4.0, "background": False}],
         "steps": [[0], [1]], "background": None, "duration": 4.2}
    )
    spec = grammar.spec_from_scene(scene, rng, attribute_prob=1.0)
    text = grammar.render(spec, 1)
    swapped = parse_caption(grammar.render(grammar.swap_mention(spec, 0, "drum"), 1))
    assert swapped.classes == {"drum", "bell"}
    assert parse_caption(grammar.render(grammar.drop_mention(spec, 1), 1)).classes == {"siren"}
    flipped = parse_caption(grammar.render(grammar.flip_attribute(spec, 0, "pitch", "high"), 1))
    assert flipped.attributes_of("siren")["pitch"] == {"low"}
    assert parse_caption(grammar.render(grammar.reverse_order(spec), 1)).before == {("bell", "siren")}
    assert parse_caption(grammar.repeat_phrase(text, rng)).repetitions > 0
    assert parse_caption(grammar.truncate(text, rng)).truncated
    assert parse_caption("A siren wails, followed by").truncated
    assert parse_caption("A the siren wails").grammar_issues > 0


def test_a_cut_caption_always_reads_as_cut():
    rng = np.random.default_rng(5)
    for scene in (sample_scene(rng, "target") for _ in range(200)):
        text = grammar.reference_captions(scene, seed=int(rng.integers(1000)), n=1)[0]
        assert parse_caption(grammar.truncate(text, rng)).truncated, text


def _rate(clips_scenes, predicate) -> float:
    return float(np.mean([predicate(s) for s in clips_scenes]))


def test_domains_differ_the_way_alignment_needs():
    rng = np.random.default_rng(10)
    source = [sample_scene(rng, "source") for _ in range(3000)]
    target = [sample_scene(rng, "target") for _ in range(3000)]
    rare = {"beeping", "bell", "whistle", "piano", "alarm"}
    # events rare in source are common in target
    assert _rate(target, lambda s: bool(s.classes & rare)) > 2.5 * _rate(source, lambda s: bool(s.classes & rare))

    # habits of source (rain comes with wind) do not hold in target
    def wind_given_rain(scenes):
        with_rain = [s for s in scenes if "rain" in s.classes and len(s.events) > 1]
        return np.mean(["wind" in s.classes for s in with_rain])

    assert wind_given_rain(source) > 3 * wind_given_rain(target)
    # target scenes are busier and more often sequential
    assert _rate(target, lambda s: len(s.events) == 3) > 2 * _rate(source, lambda s: len(s.events) == 3)
    assert _rate(target, lambda s: len(s.steps) > 1) > 1.5 * _rate(source, lambda s: len(s.steps) > 1)
