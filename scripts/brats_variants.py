"""Variants of the BraTS cpu suite, masks on one training volume only (the notes under the BraTS section of
docs/benchmarks.md): other method-config overrides, another working size, some folds; not part of the suite.

usage: python scripts/brats_variants.py DATA OUT --methods genseg,seg-only [--size 240] [--folds 0,1]
                                        [--seeds 1] [--steps 800] [--config '{"flip_halves": true}']
e.g.   ... ../shared/data /tmp/brats-flip --methods genseg --folds 0,1 --seeds 1 --config '{"flip_halves": true}'
       ... ../shared/data /tmp/brats-native --methods genseg --size 240 --config '{"train_crop": 48}'

Same data, folds, validation volume and kept masks as the suite (``volumes``: which volume keeps its masks rotates
with the seed); writes OUT/results.json and report.md and prints one line per run.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from napari_weakseg.bench.brats import PROFILES, run_brats_suite
from napari_weakseg.methods.config import merge_options

p = argparse.ArgumentParser()
p.add_argument("data", type=Path)
p.add_argument("out", type=Path)
p.add_argument("--methods", required=True)
p.add_argument("--size", type=int, help="in-plane size the 240x240 slices are area-averaged to (the profile's: 48)")
p.add_argument("--folds", help="comma-separated (default: every fold)")
p.add_argument("--seeds", type=int, default=1)
p.add_argument("--steps", type=int)
p.add_argument("--config", default="{}", help="method-config overrides (JSON) on top of the profile's")
args = p.parse_args()
base = PROFILES["cpu"]
extra = json.loads(args.config)
prof = replace(
    base,
    size=args.size or base.size,
    seeds=args.seeds,
    seed_methods=tuple(args.methods.split(",")),
    full_methods=(),
    slice_methods=(),
    overrides=merge_options(base.overrides, extra),
)
folds = [int(f) for f in args.folds.split(",")] if args.folds else None
results = run_brats_suite(
    args.data, args.out, prof, steps=args.steps, methods=tuple(args.methods.split(",")), log=print, work=args.out / "work", folds=folds
)
for run in results["runs"]:
    print(
        f"{run['method']} fold {run['fold']} seed {run['seed']}, size {prof.size}, {extra or 'no overrides'}: Dice {run['dice']:.3f} "
        f"(best validation {run['best_val_dice'] or 0:.3f} at step {run['best_step']}; {run['train_seconds']:.0f} s)"
    )
