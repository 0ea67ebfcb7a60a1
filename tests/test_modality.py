"""A model is never applied to its channels in another order without a word (FLAIR where it learnt T1c)."""

from __future__ import annotations

import pytest

from napari_weakseg.errors import InputError
from napari_weakseg.io.modality import check_channel_order, modality


def test_modalities_are_read_from_channel_names():
    names = {
        "Flair_subtrMeanDivStd": "FLAIR",
        "T1c_subtrMeanDivStd": "T1c",
        "pat3_t1ce.nii.gz": "T1c",
        "T1-Gd": "T1c",
        "t1": "T1",
        "BRATS_T2": "T2",
        "sub-01_dwi": "DWI",
        "channel0": None,
        "phantom": None,
    }
    assert {n: modality(n) for n in names} == names


def test_a_swapped_order_is_refused_unless_the_user_says_so():
    with pytest.raises(InputError, match="another order"):
        check_channel_order(["FLAIR", "T1c"], ["pat4_t1c.nii.gz", "pat4_flair.nii.gz"])
    with pytest.raises(InputError, match="other modalities"):
        check_channel_order(["FLAIR", "T1c"], ["t2", "t1c"])
    check_channel_order(["FLAIR", "T1c"], ["pat4_flair", "pat4_t1c"])  # same order, other names
    check_channel_order(["FLAIR", "T1c"], ["t1c", "flair"], allow=True)
    check_channel_order(["channel0", "channel1"], ["t1c", "flair"])  # nothing to compare with
