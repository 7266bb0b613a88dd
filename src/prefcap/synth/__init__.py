"""The embedded default: procedural acoustic scenes, their caption grammar, and simulated annotators."""
