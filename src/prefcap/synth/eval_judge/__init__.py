"""The independent evaluation judge: a careful listener who reads captions with spaCy and its own vocabulary.

It shares no parser, lexicon or scoring with the training panel (a test walks its imports), so a policy trained on
the training panel's judgments cannot win here by exploiting a blind spot of that panel. Only the annotator
machinery (noise, ties, biases: `prefcap.synth.panel`) is common to both.
"""

from prefcap.synth.eval_judge.reading import Reading, read_caption
from prefcap.synth.eval_judge.scoring import EVALUATION_PANEL, CarefulWeights, heard_scene, score_terms

__all__ = ["EVALUATION_PANEL", "CarefulWeights", "Reading", "heard_scene", "read_caption", "score_terms"]
