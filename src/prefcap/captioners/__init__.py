"""Captioners: anything that writes captions for audio and can score its own token sequences."""
