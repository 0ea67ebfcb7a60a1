"""The training process started from a script without a main guard runs the script only once."""

import subprocess
import sys
import textwrap


def test_spawned_worker_does_not_rerun_an_unguarded_script(tmp_path):
    marker = tmp_path / "runs.txt"
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(f"""
        import time
        from pathlib import Path
        from napari_weakseg.demo import build_demo_study
        from napari_weakseg.training.worker import JobSpec, TrainingProcess
        from napari_weakseg.training.events import Finished, Failed

        with open({str(marker)!r}, "a") as fh:   # top-level side effect, no main guard
            fh.write("ran\\n")
        study = build_demo_study(Path({str(tmp_path / "study")!r}))
        tiny = {{"input_size": 32, "batch_size": 2, "annotated_per_batch": 1, "augment": False,
                 "net": {{"base": 4, "depth": 2, "max_channels": 8, "code_channels": 8, "unique_channels": 4}}}}
        job = TrainingProcess(JobSpec(str(study), {str(tmp_path / "run")!r},
                              {{"method": "seg-only", "steps": 2, "overrides": tiny}}, threads=1))
        job.start()
        events = []
        deadline = time.time() + 120
        while time.time() < deadline and not any(isinstance(e, (Finished, Failed)) for e in events):
            events += job.poll()
            time.sleep(0.1)
        job.join(10)
        print(type(events[-1]).__name__ if events else "none")
    """)
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "Finished", result.stderr[-2000:]
    assert marker.read_text() == "ran\n"  # the child did not run the script again
