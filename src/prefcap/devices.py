"""Which device a run uses: `auto` takes the GPU when torch sees one; asking for one that is not there is an error
that names the problem, not a silent fall-back to the CPU."""

from __future__ import annotations

import torch

from prefcap.errors import PrefcapError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when a CUDA device is available, else "cpu"; "cpu" and "cuda" as asked."""
    if name not in DEVICES:
        raise PrefcapError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise PrefcapError("device 'cuda' asked for, but torch sees no CUDA device here (torch.cuda.is_available() is "
                           "False, torch " + torch.__version__ + "); use --device cpu or auto")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
