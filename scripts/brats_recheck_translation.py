"""Score the saved best checkpoints of a BraTS suite run again with the current scoring
(``bench.brats_scoring.score_test``: whole-slice prediction, the translation check, the stitched halves),
for a results.json written by an earlier version of the suite. Then
``weakseg bench brats --out OUT --report-only`` writes the report again.

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
    from napari_weakseg.bench.brats import PROFILES, score_test
    from napari_weakseg.data.brats import find_brats, list_cases, load_brats_case
    from napari_weakseg.inference import TrainedModel

    results = json.loads((args.out / "results.json").read_text())
    prof = PROFILES[results["profile"]]
    cases = {
        c.name: c
        for c in (load_brats_case(d, prof.size, prof.min_brain, prof.brain_normalisation) for d in list_cases(find_brats(args.data)))
    }
    tests = {f["fold"]: f["test"] for f in results["folds"]}
    for run in results["runs"]:
        run_dir = args.work / f"fold{run['fold']}-seed{run['seed']}" / f"{run['method']}-{run['setting']}"
        run.pop("dice_whole_slices", None)
        run.update(score_test(TrainedModel.load(run_dir, which="best"), cases[tests[run["fold"]]], prof))
    results["checkpoint_scored"] = "best"
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"scored {len(results['runs'])} run(s) again in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
