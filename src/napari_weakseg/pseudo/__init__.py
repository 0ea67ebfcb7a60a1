"""The pseudo-label method's pieces outside the Trainer: its options, the quality-based selection
of pseudo labels and the noise-robust iterative training (Wang et al.)."""
