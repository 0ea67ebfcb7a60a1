"""The speed suite's A/B part alone: eager fp32 against the other ways to run the same step, and whether they
cost Dice, without the suite's training/inference/GUI parts (minutes instead of an hour on 2 cores).

    .venv/bin/python scripts/speed_ab.py --out /tmp/speed-ab [--methods genseg,seg-only] [--variants "eager fp32,eager bf16"]

Writes OUT/ab.json (``measure_variants``: {method: {variant: run}}) and OUT/ab_dice.json (``measure_variant_dice``:
genseg's Dice on the demo phantom per variant and seed); both are what ``weakseg bench speed`` records under
``ab`` and ``ab_dice``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from napari_weakseg.bench.speed import VARIANTS, measure_variant_dice, measure_variants
from napari_weakseg.demo import build_demo_study
from napari_weakseg.training.dock_defaults import DEFAULT_STEPS


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--methods", default="genseg,seg-only,cyclegan-ssl,pseudo-label")
    p.add_argument("--variants", default="eager fp32,eager bf16", help=f"of: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dice-seeds", default="0,1,2", help="genseg's Dice per variant over these seeds ('' : not measured)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)  # never over an earlier measurement
    study = build_demo_study(args.out / "study")
    variants = tuple(v.strip() for v in args.variants.split(","))
    t0 = time.perf_counter()
    ab = measure_variants(study, args.out / "ab", tuple(args.methods.split(",")), args.device, args.steps, args.repeats, print, variants)
    ab["seconds"] = time.perf_counter() - t0
    (args.out / "ab.json").write_text(json.dumps(ab, indent=1))
    if args.dice_seeds:
        seeds = tuple(int(s) for s in args.dice_seeds.split(","))
        dice = measure_variant_dice(study, args.out / "dice", "genseg", args.device, DEFAULT_STEPS, seeds, variants, print)
        (args.out / "ab_dice.json").write_text(json.dumps(dice, indent=1))
    for method, runs in ab["methods"].items():
        print(method, {k: round(v.get("pairs_per_s", float("nan")), 2) for k, v in runs.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
