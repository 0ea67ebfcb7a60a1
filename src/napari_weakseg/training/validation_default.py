"""How many annotated slices validate when the user does not say: one rule for the dock and the CLI.

No torch here: the CLI builds its help from it.
"""

MIN_ANNOTATED_FOR_VALIDATION = 10  # fewer annotated slices: all of them train (no validation split)


def default_val_fraction(n_annotated: int) -> float:
    """0.2, but none while there are few masks: with 3 annotated slices one held out is a third of
    the supervision lost, for a validation Dice on one slice that says little."""
    return 0.2 if n_annotated >= MIN_ANNOTATED_FOR_VALIDATION else 0.0
