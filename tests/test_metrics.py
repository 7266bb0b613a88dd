"""Caption metrics on hand-checkable cases. One METEOR JVM and one SBERT model serve the whole module."""

import math

import pytest

from prefcap import text
from prefcap.eval import metrics
from prefcap.eval.metrics import compute_metrics
from prefcap.text import diversity_stats

REFS = {
    "c1": ["a dog barks while cars pass by on a busy street", "a dog is barking near a road with traffic"],
    "c2": ["rain falls steadily on a metal roof", "heavy rain hits a tin roof"],
    "c3": ["a man speaks and then a door slams shut", "a man talks before a door closes loudly"],
    "c4": ["birds chirp in a quiet forest in the morning", "several birds sing among the trees"],
}
SPICE_INSTALLED = all((metrics.SPICE_LIB / jar).is_file() for jar in metrics.SPICE_JARS)


@pytest.fixture(scope="module")
def identical() -> dict:
    """Each candidate is its clip's only reference."""
    return compute_metrics({k: v[0] for k, v in REFS.items()}, {k: [v[0]] for k, v in REFS.items()})


@pytest.fixture(scope="module")
def disjoint() -> dict:
    cands = {"c1": "stock prices rose sharply", "c2": "committee approved budget proposal",
             "c3": "software update installed successfully", "c4": "football team won championship"}
    return compute_metrics(cands, REFS)


@pytest.fixture(scope="module")
def close() -> dict:
    cands = {"c1": "a dog barks while cars pass by on a street", "c2": "heavy rain falls on a metal roof",
             "c3": "a man speaks and then a door closes", "c4": "birds chirp in a quiet forest"}
    return compute_metrics(cands, REFS)


@pytest.fixture(scope="module")
def loose() -> dict:
    cands = {"c1": "a dog makes noise", "c2": "water is dripping", "c3": "someone is talking",
             "c4": "animals make sounds outdoors"}
    return compute_metrics(cands, REFS)


def test_keys(identical):
    assert list(identical) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
                               "spider", "sbert_sim", "distinct_1", "distinct_2", "repetition_rate", "mean_words",
                               "vocab_size", "truncated_ending_rate"]


def test_identical_candidates_score_perfectly(identical):
    for n in range(1, 5):
        assert identical[f"bleu_{n}"] == pytest.approx(1.0, abs=1e-6)
    assert identical["rouge_l"] == pytest.approx(1.0)
    assert identical["meteor"] > 0.95
    assert identical["cider_d"] == pytest.approx(10.0)  # CIDEr-D's maximum for captions of >= 4 words
    assert identical["sbert_sim"] == pytest.approx(1.0, abs=1e-3)


def test_candidates_sharing_no_word_score_zero(disjoint):
    for n in range(1, 5):
        assert disjoint[f"bleu_{n}"] < 1e-6
    assert disjoint["rouge_l"] == 0.0
    assert disjoint["cider_d"] == 0.0
    assert disjoint["meteor"] < 0.05
    assert disjoint["sbert_sim"] < 0.3


def test_closer_candidates_score_higher(close, loose):
    for key in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim"):
        assert close[key] > loose[key], key
    assert loose["cider_d"] > 0.0


def test_cider_d_hand_computed():
    # N = 2 clips, so every n-gram here has idf log 2. Clip x: unigram and bigram cosines 1, no 3/4-grams -> 10 * 2/4.
    # Clip y: unigram cosine 1/sqrt(2), bigram-length gap 1 -> penalty exp(-1/72); no higher n-grams.
    result = compute_metrics({"x": "Dog barks.", "y": "rain"}, {"x": ["dog barks"], "y": ["rain falls"]},
                             sbert_model=None, spice=False)
    expected = (5.0 + 10.0 * math.exp(-1 / 72) / (4 * math.sqrt(2))) / 2
    assert result["cider_d"] == pytest.approx(expected)
    assert result["sbert_sim"] is None


@pytest.mark.skipif(SPICE_INSTALLED, reason="SPICE's CoreNLP jars are installed here")
def test_spice_none_without_jars(identical):
    assert identical["spice"] is None
    assert identical["spider"] is None


@pytest.mark.skipif(SPICE_INSTALLED, reason="SPICE's CoreNLP jars are installed here")
def test_spice_warns_once(caplog):
    metrics._warn_spice_missing.cache_clear()
    gts, res = {"x": ["a dog barks"]}, {"x": ["a dog"]}
    assert metrics._spice(gts, res) is None
    assert metrics._spice(gts, res) is None
    warnings = [r.getMessage() for r in caplog.records if "SPICE unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert "Stanford CoreNLP jars not found in" in warnings[0]


def test_sbert_model_loaded_once():
    assert metrics.load_sbert("default") is metrics.load_sbert("default")


def test_diversity_hand_computed():
    stats = diversity_stats(["A dog barks.", "a dog barks and a dog growls", "rain rain falls on the",
                             "a car passes by"])
    # 19 words, 12 distinct; 15 bigrams, 12 distinct.
    assert stats == {"distinct_1": pytest.approx(12 / 19), "distinct_2": pytest.approx(0.8),
                     "repetition_rate": 0.5, "mean_words": 4.75, "vocab_size": 12, "truncated_ending_rate": 0.25}


def test_diversity_without_bigrams():
    assert diversity_stats(["hello", ""])["distinct_2"] == 0.0


def test_diversity_in_compute_metrics(close):
    assert close["mean_words"] == pytest.approx((10 + 7 + 8 + 6) / 4)
    assert close["repetition_rate"] == 0.0
    assert close["truncated_ending_rate"] == 0.0


@pytest.mark.parametrize(("caption", "truncated"), [
    ("a dog barks and", True), ("a man speaks followed by", True), ("a woman talks with the", True),
    ("a bell rings then", True), ("engine noise while", True), ("birds sing, and a", True),
    ("a car passes by", False), ("a bell rings for a while", False), ("a dog barks.", False),
    ("someone walks in", False), ("", False),
])
def test_truncated_endings(caption, truncated):
    assert diversity_stats([caption])["truncated_ending_rate"] == float(truncated)


@pytest.mark.parametrize("caption", [
    # a dangling determiner, quantifier or possessive
    "some", "every", "this", "a dog barks at some", "birds chirp in every", "a man speaks into his",
    "people talk and several", "a bell rings in another", "no", "a woman clears her",
    # a dangling auxiliary or modal, or degree word
    "a siren can be", "the bell is", "a door has", "rain was", "the engine will", "a dog might", "the door is being",
    "a very", "the sound is quite", "it is rather", "the music is so", "the sound is too", "it is much too",
    # a dangling adjective: adjectives / degree words right after a determiner, no noun after them
    "the sound of a high", "a very loud", "a dog barks and a high-pitched", "a high pitched", "a metallic-sounding",
    "a loud and deep", "the rather faint", "rain falls on the heavy", "a man speaks over a distant, steady",
])
def test_truncated_endings_a_listener_hears(caption):
    assert text.has_truncated_ending(caption)
    assert diversity_stats([caption])["truncated_ending_rate"] == 1.0


@pytest.mark.parametrize("caption", [
    "a car passes by", "someone walks in", "water is turned on", "a bell rings for a while",
    # an adjective after a verb is a complement, not a cut-off phrase
    "the rain is loud", "a bell rings twice", "the engine is idling", "it is quiet", "the birds sound happy",
    "the rain is heavy and loud", "it is also pretty loud", "a short train passes leaving all fairly quiet",
    "it is not that loud", "a bell is sounding",
    # words that dangle elsewhere but are complete here
    "a cat meows too", "a dog barks for a minute or so", "someone plays with a pop can", "a kitten meows for her",
    "children speak to one another", "drums are played one after another", "the voice of a human being",
    "the wind blows a little", "a man turns on the light",
])
def test_complete_endings_are_not_flagged(caption):
    assert not text.has_truncated_ending(caption)


def test_no_reference_caption_of_the_synthetic_corpus_ends_truncated():
    import numpy as np

    from prefcap.synth.grammar import reference_captions
    from prefcap.synth.scene import sample_scene

    rng = np.random.default_rng(0)
    captions = [caption for domain in ("source", "target") for i in range(150)
                for caption in reference_captions(sample_scene(rng, domain), seed=i)]
    assert len(captions) == 1500
    assert [c for c in captions if text.has_truncated_ending(c)] == []


@pytest.mark.parametrize(("caption", "repetitive"), [
    ("a dog dog barks", True), ("rain falls rain falls", True), ("a dog barks and a cat meows", False),
    ("a b a c", False), ("", False),
])
def test_repetition(caption, repetitive):
    assert diversity_stats([caption])["repetition_rate"] == float(repetitive)


@pytest.mark.parametrize(("candidates", "references", "message"), [
    ({}, REFS, "no candidate"),
    ({"c1": "a dog"}, {}, "no references"),
    ({"zz": "a dog"}, REFS, "have no references"),
    ({"c1": "a dog"}, {"c1": []}, "have no references"),
    ({"c1": "a dog"}, {"c1": "a dog barks"}, "must be a list of str"),
    ({"c1": None}, REFS, "expected str"),
    ({"c1": "a dog"}, {"c1": ["..."]}, "reference with no word"),
])
def test_bad_inputs(candidates, references, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(candidates, references, sbert_model=None, spice=False)


def test_diversity_needs_captions():
    with pytest.raises(ValueError, match="no captions"):
        diversity_stats([])


def test_fluency_profile_counts_the_faults_a_listener_hears():
    from prefcap.text import FLUENCY_FEATURES, fluency_profile

    def profile(text):
        return dict(zip(FLUENCY_FEATURES, fluency_profile(text), strict=True))

    clean = profile("A dog barks while rain falls.")
    assert (clean["stutters"], clean["repeated_bigrams"], clean["truncated"], clean["malformed_words"]) == (0, 0, 0, 0)
    assert clean["words"] == 6 / 20
    assert profile("a dog can be can be heard")["stutters"] == 1
    assert profile("a siren wails and a siren wails")["repeated_bigrams"] == 2
    assert profile("in the park and in the street")["repeated_bigrams"] == 0  # function-word pairs may repeat
    assert profile("a siren wails followed by")["truncated"] == 1
    assert profile("loud shrieks chi\ufffd faintly")["malformed_words"] == 0.25
    assert profile("it's a dog-like sound, then silence.")["malformed_words"] == 0
    assert profile("dog, rain, bell")["function_words"] == 0 and clean["function_words"] == 2 / 6
    assert profile("No dog barks and the rain can't be heard, without wind.")["negations"] == 3
    assert clean["negations"] == 0
