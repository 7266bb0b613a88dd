"""prefcap: align automated audio captioning with human preferences."""

__version__ = "0.1.0"
