"""Print examples of every kind and form for a careful read: `python -m prefcap.synth.adversarial [N]`."""

import collections
import sys

import numpy as np

from prefcap.data.records import Clip
from prefcap.synth.adversarial import EXTRA_KINDS, REQUIRED_KINDS, adversarial_pairs
from prefcap.synth.scene import sample_scene

rng = np.random.default_rng(7)
clips = [Clip(id=f"target-{k}", domain="target", metadata={"scene": sample_scene(rng, "target").to_dict()})
         for k in range(int(sys.argv[1]) if len(sys.argv) > 1 else 60)]
rows = adversarial_pairs(clips)
by = collections.defaultdict(list)
for row in rows:
    by[(row["kind"], row["form"])].append(row)
for kind in REQUIRED_KINDS + EXTRA_KINDS:
    n = sum(len(v) for (k, _), v in by.items() if k == kind)
    print(f"\n=== {kind}: {n} rows")
    for (k, form), items in by.items():
        if k != kind:
            continue
        print(f"  -- {form} ({len(items)})")
        for row in items[:3]:
            print(f"     + {row['better']}\n     - {row['worse']}")
