"""The choices of how a training step runs (``--precision``, ``--compile``), in one torch-free place for the CLI,
the dock's form, the run-setting checks and ``step_speed``."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_MODES = ("auto", "on", "off")
