"""Audio–text encoders (CLAP): the frozen embedding space the reward model works in."""
