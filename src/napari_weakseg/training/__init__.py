"""Training: the Trainer, checkpoints, metrics."""
