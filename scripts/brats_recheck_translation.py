"""Recompute the BraTS suite's translation check (``bench.brats.residual_ratio``) and the whole-slice Dice
(``whole_slice_dice``) from the saved best checkpoints of a finished suite, for a results.json written before
the suite measured them.
Then ``weakseg bench brats --out OUT --report-only`` writes the report again.

    .venv/bin/python scripts/brats_recheck_translation.py --data ../shared/data --out OUT --work WORK
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()
    from napari_weakseg.bench.brats import PROFILES, residual_ratio, whole_slice_dice
    from napari_weakseg.data.brats import find_brats, list_cases, load_brats_case
    from napari_weakseg.inference import TrainedModel

    results = json.loads((args.out / "results.json").read_text())
    prof = PROFILES[results["profile"]]
    cases = {
        c.name: c
        for c in (load_brats_case(d, prof.size, prof.min_brain, prof.brain_normalisation) for d in list_cases(find_brats(args.data)))
    }
    tests = {f["fold"]: f["test"] for f in results["folds"]}
    n = 0
    for run in results["runs"]:
        if "residual" not in run:
            continue
        run_dir = args.work / f"fold{run['fold']}-seed{run['seed']}" / f"{run['method']}-{run['setting']}"
        model = TrainedModel.load(run_dir, which="best")
        case = cases[tests[run["fold"]]]
        out = model.predict_volume(case.images, split=case.split() if prof.halves else None)
        run["residual"] = residual_ratio(out["residual"], case, prof, out.get("healthy"))
        n += 1
    for run in results["runs"]:  # every run trained on halves: the same model on whole slices
        if prof.halves and "dice_whole_slices" not in run:
            run_dir = args.work / f"fold{run['fold']}-seed{run['seed']}" / f"{run['method']}-{run['setting']}"
            run["dice_whole_slices"] = whole_slice_dice(TrainedModel.load(run_dir, which="best"), cases[tests[run["fold"]]])
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"rechecked {n} run(s) in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
