"""Recompute the suggestions' check (``annotator.suggestion_check``) of every suggest round of an effort suite's results
from its saved run folders, and store it in results.json (for results written before the check counted the
slices with the most wrong pixels). Then ``weakseg bench effort --out OUT --report-only`` redraws the report.

    python scripts/effort_recheck.py OUT DATA      # OUT/results.json, DATA holding brats2015/
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(out: str, data: str) -> int:
    from napari_weakseg.annotator import suggestion_check
    from napari_weakseg.bench.effort import build_case_study
    from napari_weakseg.data.brats import find_brats
    from napari_weakseg.inference import TrainedModel
    from napari_weakseg.study import load_study

    path = Path(out) / "results.json"
    results = json.loads(path.read_text())
    threshold = 0.5
    truths = {}
    for curve in (c for c in results["curves"] if c["strategy"] == "suggest"):  # the curves the report checks
        if curve["case"] not in truths:
            with tempfile.TemporaryDirectory() as tmp:
                truths[curve["case"]] = build_case_study(find_brats(Path(data)) / curve["case"], Path(tmp) / "s")
        truth = truths[curve["case"]]
        for rnd in curve["rounds"]:
            run = Path(rnd["run_dir"])
            im = load_study(run.parents[1]).images[0]  # the curve's study folder, its masks set to this round's
            im.mask[:] = 0
            im.mask[rnd["painted"]] = truth[rnd["painted"]]
            im.mask_changed()
            prob = TrainedModel.load(run).predict_image(im)["prob"]
            rnd["worst_in_top"], rnd["worst_by_chance"], rnd["errors_in_top"] = suggestion_check(im, prob, truth, threshold)
        print(curve["case"], curve["method"], curve["strategy"], [r["errors_in_top"] for r in curve["rounds"]], file=sys.stderr)
    path.write_text(json.dumps(results, indent=1, default=lambda x: x.item() if isinstance(x, np.generic) else str(x)))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
