import numpy as np
import pytest

from prefcap.data.records import Clip
from prefcap.data.synth.scene import sample_scene


def synthetic_clips(domain: str, n: int, seed: int = 0) -> list[Clip]:
    """Clips that carry only a scene (no audio): enough for grammar, parser and annotator checks."""
    rng = np.random.default_rng(seed)
    return [Clip(id=f"{domain}-{k}", domain=domain, metadata={"scene": sample_scene(rng, domain).to_dict()})
            for k in range(n)]


@pytest.fixture(scope="session")
def target_clips() -> list[Clip]:
    return synthetic_clips("target", 300, seed=11)
