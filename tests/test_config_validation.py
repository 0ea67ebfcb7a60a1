"""Every option checked before work starts: one InputError naming the option, never a traceback or a
silent nonsense run (the hostile tester's cases)."""

from __future__ import annotations

import re

import pytest
from test_train_cli import assert_one_line_error, cli
from test_training import phantom_study

from napari_weakseg.errors import InputError
from napari_weakseg.methods import MethodConfig, merge, method_preset
from napari_weakseg.training.trainer import TrainConfig, Trainer


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"input_size": 7}, "input_size"),
        ({"input_size": -64}, "input_size"),
        ({"input_size": 100}, "input_size"),
        ({"betas": 5}, "betas"),
        ({"betas": [0.5, 2.0]}, "betas[1]"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"threshold": 2}, "threshold"),
        ({"threshold": -1}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"net": {"depth": 100000}}, "net.depth"),
        ({"weights": {"seg": -1}}, "weights.seg"),
        ({"weights": {"seg": "a"}}, "weights.seg"),
        ({"net": {"decoder_kernel": 4}}, "net.decoder_kernel"),
        ({"absence_as_empty": "yes"}, "absence_as_empty"),
        ({"net": {"unique_channels": 64}}, "net.unique_channels"),
        ({"disc_norm": "batchy"}, "disc_norm"),
        ({"net": {"baseline_decoder": "other"}}, "net.baseline_decoder"),
        ({"ema_decay": 1.5}, "ema_decay"),
        ({"batch_size": True}, "batch_size"),
        ({"lr_decay_start": 2}, "lr_decay_start"),
    ],
)
def test_a_bad_option_is_one_error_that_names_it(overrides, key):
    with pytest.raises(InputError, match="option " + re.escape(key) + r"( |$)") as info:
        merge(method_preset("genseg", "quick"), overrides)
    assert "\n" not in str(info.value)


def test_a_malformed_config_is_refused():
    for bad in ([1, 2], None, {"net": 5}):
        with pytest.raises(InputError, match="method config"):
            MethodConfig.from_dict(bad)
    with pytest.raises(InputError, match="option weights must be"):
        MethodConfig.from_dict({**method_preset("genseg", "quick").to_dict(), "weights": {}})


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"steps": -5}, "steps"),
        ({"steps": 0}, "steps"),
        ({"val_fraction": float("nan")}, "val_fraction"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"epochs": 0}, "epochs"),
        ({"overrides": [1]}, "overrides"),
    ],
)
def test_a_bad_run_setting_is_refused_before_anything_is_written(tmp_path, kw, key):
    study, _ = phantom_study()
    with pytest.raises(InputError, match=key):
        Trainer(study, tmp_path / "run", TrainConfig(method="seg-only", device="cpu", **kw))
    assert not (tmp_path / "run").exists()


def test_the_cli_says_it_in_one_line(tmp_path):
    study, _ = phantom_study()
    from napari_weakseg.study import save_study

    folder = save_study(study, tmp_path / "study")
    assert_one_line_error(cli("train", folder, "--method", "seg-only", "--out", tmp_path / "r", "--steps", "-5"), "option steps")
    cfg = tmp_path / "c.json"
    cfg.write_text('{"batch_size": 0}')
    assert_one_line_error(cli("train", folder, "--method", "seg-only", "--out", tmp_path / "r", "--config", cfg), "option batch_size")
    assert not (tmp_path / "r" / "last.pt").exists()
