"""Score the saved best checkpoints of a BraTS suite run again with the current scoring
(``bench.brats_scoring.score_test``: whole-slice prediction, the translation check, the stitched halves),
for a results.json written by an earlier version of the suite. Then
``weakseg bench brats --out OUT --report-only`` writes the report again.

    .venv/bin/python scripts/brats_rescore.py --data ../shared/data --out OUT --work WORK [--merge OUT2]

``--merge OUT2``: first append the folds and runs of another run of the suite (e.g. a fold run in a second
process with ``run_brats_suite(..., folds=[3])``; its run folders must be under WORK too); folds of OUT without
any finished run are dropped. The qualitative panel is drawn again from the first fold's genseg run.
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
    ap.add_argument("--merge", type=Path, help="another suite output folder whose folds and runs are appended")
    args = ap.parse_args()
    from napari_weakseg.bench.brats import PROFILES, panel_slices, score_test
    from napari_weakseg.bench.brats_report import PANEL
    from napari_weakseg.bench.panel import write_panel
    from napari_weakseg.data.brats import find_brats, list_cases, load_brats_case
    from napari_weakseg.inference import TrainedModel

    results = json.loads((args.out / "results.json").read_text())
    if args.merge:
        other = json.loads((args.merge / "results.json").read_text())
        done = {r["fold"] for r in results["runs"]}
        results["folds"] = [f for f in results["folds"] if f["fold"] in done] + other["folds"]
        results["runs"] += other["runs"]
        results["total_seconds"] = None  # two processes: no single wall time
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
    first = results["folds"][0]
    run_dir = args.work / f"fold{first['fold']}-seed0" / "genseg-volumes"
    if run_dir.is_dir():
        panel = panel_slices(TrainedModel.load(run_dir, which="best"), cases[first["test"]], prof.panel_rows)
        write_panel(args.out / PANEL, panel, "input (FLAIR)")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"scored {len(results['runs'])} run(s) again in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
