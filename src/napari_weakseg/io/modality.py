"""Recognising MRI / CT modalities in channel names, so that a model is never applied to its channels
in another order (FLAIR where it learnt T1c) without a word."""

from __future__ import annotations

import re

from ..errors import InputError

# most specific first: t1c before t1, flair before t2 (FLAIR images are T2-weighted)
_PATTERNS = (
    ("T1c", r"t1[-_ ]?(c|ce|gd|post|contrast)|t1c"),
    ("FLAIR", r"flair"),
    ("T1", r"t1"),
    ("T2", r"t2"),
    ("DWI", r"dwi"),
    ("ADC", r"adc"),
    ("PD", r"\bpd\b|_pd_|^pd"),
    ("CT", r"\bct\b|^ct_|_ct$"),
)


def modality(name: str) -> str | None:
    """The modality a channel name says (FLAIR, T1c, T1, T2, DWI, ADC, PD, CT), or None."""
    low = name.lower()
    for label, pattern in _PATTERNS:
        if re.search(pattern, low):
            return label
    return None


def check_channel_order(trained: list[str], given: list[str], allow: bool = False) -> None:
    """InputError when every channel of both lists names a recognised modality and they differ (another
    order, or other modalities); ``allow`` lets the user say the given order is right. Unrecognised names
    (e.g. "channel0") cannot be compared and pass."""
    a, b = [modality(n) for n in trained], [modality(n) for n in given]
    if allow or len(a) != len(b) or None in a or None in b or a == b:
        return
    what = "in another order" if sorted(a) == sorted(b) else "other modalities"
    raise InputError(
        f"the model was trained on {', '.join(a)}; these channels are {', '.join(b)} ({what}): give the "
        "files in the training order, or pass --channels-as-given if they are right"
    )


def looks_like_mask(data, max_values: int = 16, sample: int = 200_000) -> bool:
    """True when every channel of ``data`` (C, ...) holds a few whole numbers only (at most ``max_values``
    distinct ones in a sample), as a label mask does and an MRI or CT image does not: a mask given where the
    image belongs."""
    import numpy as np

    flat = np.asarray(data).reshape(len(data), -1)
    step = max(1, flat.shape[1] // sample)
    return all(np.array_equal(c, np.round(c)) and len(np.unique(c)) <= max_values for c in flat[:, ::step])
