"""Variants of the BraTS cpu suite at 1 % annotated only (the notes under the BraTS section of
docs/benchmarks.md): a longer schedule, or extra method-config overrides; not part of the suite.

usage: OMP_NUM_THREADS=1 python scripts/brats_variants.py DATA OUT STEPS METHODS [OVERRIDES_JSON]
e.g.   ... ../shared/data /tmp/brats-1000 1000 seg-only,genseg
       ... ../shared/data /tmp/brats-absempty 250 genseg '{"absence_as_empty": true}'

Same data, split (seed 0) and annotated slices as the suite; writes OUT/results.json and report.md.
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

from napari_weakseg.bench.brats import PROFILES, run_brats_suite

data, out, steps, methods = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), tuple(sys.argv[4].split(","))
extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
base = PROFILES["cpu"]
prof = replace(base, curve_fractions=(base.base_fraction,), cyclegan_fractions=(), overrides={**base.overrides, **extra})
results = run_brats_suite(data, out, prof, steps=steps, methods=methods, device="cpu", log=print, work=out / "work")
for run in results["runs"]:
    print(
        f"{run['method']} at {run['fraction']:.0%}, {steps} steps, {extra or 'no overrides'}: Dice {run['dice_pooled']:.3f}, "
        f"presence slices {run['dice_pooled_presence']:.3f}, FP pixels on absence slices {run['false_positive_pixels_absence']}"
    )
