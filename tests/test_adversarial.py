"""The simulated listeners must not be fooled by captions that real people would see through.

Pairs come from tests/adversarial.py (plain everyday English, written independently of the corpus's caption grammar
and of the listeners' vocabularies). Every pair is judged in both left/right orders through `prefcap judge`, once
per panel; for every required kind the panel majority must pick the better caption almost always and the worse one
almost never. The extra kinds are a dev set: their shares are printed (pytest -s), not asserted.
"""

import collections
import json

import pytest

from conftest import synthetic_clips
from prefcap.cli import main
from prefcap.data.records import write_jsonl
from prefcap.synth.adversarial import EXTRA_KINDS, REQUIRED_KINDS, adversarial_pairs

N_CLIPS = 60
CLIP_SEED = 29
PAIR_SEED = 0
PANELS = ("train", "eval")

# (least share of pairs won by the better caption, largest share won by the worse one)
THRESHOLDS = {kind: (0.90, 0.05) for kind in REQUIRED_KINDS}
THRESHOLDS["order_vs_no_order"] = (0.60, 0.10)
# A paraphrase in everyday words is only asked of the evaluation panel.
EVAL_ONLY = {"paraphrase_vs_wrong_event"}

CASES = [(panel, kind) for panel in PANELS for kind in REQUIRED_KINDS if panel == "eval" or kind not in EVAL_ONLY]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """clips.jsonl and pairs.jsonl (every adversarial row twice: better as `a`, then better as `b`), and for each
    pairs row the adversarial row it came from and the side holding the better caption."""
    root = tmp_path_factory.mktemp("adversarial")
    clips = synthetic_clips("target", N_CLIPS, seed=CLIP_SEED)
    write_jsonl(root / "clips.jsonl", clips)
    pairs, origin = [], []
    for row in adversarial_pairs(clips, seed=PAIR_SEED):
        for better_side in ("a", "b"):
            a, b = (row["better"], row["worse"]) if better_side == "a" else (row["worse"], row["better"])
            pairs.append({"clip_id": row["clip_id"], "a": a, "b": b})
            origin.append((row, better_side))
    with (root / "pairs.jsonl").open("w") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair) + "\n")
    return root, pairs, origin


@pytest.fixture(scope="module")
def outcomes(suite):
    """panel -> tallies: {kind or (kind, form): Counter(better/worse/tie)} plus "lost": kind -> rows the worse won.
    Each panel is judged once, on first use."""
    root, pairs, origin = suite
    cache = {}

    def judged(panel: str) -> dict:
        if panel in cache:
            return cache[panel]
        out = root / f"judged-{panel}.jsonl"
        assert main(["judge", "--clips", str(root / "clips.jsonl"), "--pairs", str(root / "pairs.jsonl"),
                     "--panel", panel, "--out", str(out), "--seed", "0"]) == 0
        verdicts = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        assert len(verdicts) == len(pairs)
        tally = collections.defaultdict(collections.Counter)
        lost = collections.defaultdict(list)
        for pair, (row, better_side), verdict in zip(pairs, origin, verdicts, strict=True):
            assert (verdict["clip_id"], verdict["a"], verdict["b"]) == (pair["clip_id"], pair["a"], pair["b"])
            assert verdict["verdict"] in ("a", "b", "tie")
            assert isinstance(verdict["votes"], list)
            if verdict["verdict"] == "tie":
                result = "tie"
            else:
                result = "better" if verdict["verdict"] == better_side else "worse"
            tally[row["kind"]][result] += 1
            tally[(row["kind"], row["form"])][result] += 1
            if result == "worse":
                lost[row["kind"]].append(row)
        cache[panel] = {"tally": tally, "lost": lost}
        return cache[panel]

    return judged


def _shares(counts: collections.Counter) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {key: counts[key] / total for key in ("better", "worse", "tie")}


@pytest.mark.parametrize(("panel", "kind"), CASES, ids=[f"{panel}-{kind}" for panel, kind in CASES])
def test_listeners_are_not_fooled(outcomes, panel, kind):
    judged = outcomes(panel)
    counts = judged["tally"][kind]
    assert sum(counts.values()) >= 100, f"{kind}: too few pairs"
    shares = _shares(counts)
    least_better, most_worse = THRESHOLDS[kind]
    forms = {form: _shares(c) for (k, form), c in
             ((key, c) for key, c in judged["tally"].items() if isinstance(key, tuple)) if k == kind}
    detail = "; ".join(f"{form}: better {s['better']:.0%} worse {s['worse']:.0%}" for form, s in sorted(forms.items()))
    examples = "\n".join(f"  better: {row['better']}\n  worse:  {row['worse']}" for row in judged["lost"][kind][:4])
    message = (f"{panel} panel, {kind}: better {shares['better']:.1%}, worse {shares['worse']:.1%}, "
               f"tie {shares['tie']:.1%} ({detail})\nrows the worse caption won:\n{examples}")
    assert shares["better"] >= least_better, message
    assert shares["worse"] <= most_worse, message


def test_report_every_kind(outcomes):
    """Not asserted: the per-kind shares for both panels, required kinds and the extra dev kinds (pytest -s)."""
    tallies = {panel: outcomes(panel)["tally"] for panel in PANELS}
    header = f"{'kind':32} {'pairs':>5} " + " ".join(f"{p + ' better/worse/tie':>26}" for p in PANELS)
    lines = ["", "adversarial pairs (both orders): share of majority verdicts", header]
    for kind in REQUIRED_KINDS + EXTRA_KINDS:
        cells = []
        for panel in PANELS:
            s = _shares(tallies[panel][kind])
            cells.append(f"{s['better']:>8.0%} {s['worse']:>7.0%} {s['tie']:>7.0%}  ")
        mark = "" if kind in REQUIRED_KINDS else "  (extra)"
        lines.append(f"{kind:32} {sum(tallies['eval'][kind].values()):>5} " + " ".join(cells) + mark)
    print("\n".join(lines))


def test_the_builder_is_deterministic_and_covers_every_kind():
    """Runs without the judge: enough rows and forms per required kind, no pair of identical captions."""
    clips = synthetic_clips("target", N_CLIPS, seed=CLIP_SEED)
    rows = adversarial_pairs(clips, seed=PAIR_SEED)
    assert rows == adversarial_pairs(clips, seed=PAIR_SEED)
    assert rows != adversarial_pairs(clips, seed=PAIR_SEED + 1)
    by_kind = collections.defaultdict(list)
    for row in rows:
        assert set(row) == {"clip_id", "kind", "form", "better", "worse"}
        assert row["better"] != row["worse"] and row["better"] and row["worse"]
        by_kind[row["kind"]].append(row)
    assert set(by_kind) == set(REQUIRED_KINDS + EXTRA_KINDS)
    for kind in REQUIRED_KINDS:
        assert len(by_kind[kind]) >= 50, kind
        assert len({row["form"] for row in by_kind[kind]}) >= 3, kind
