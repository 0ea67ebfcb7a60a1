"""Every method behind the one interface: a training step per phase, predict outputs, configs and presets."""

from __future__ import annotations

import math

import pytest
import torch

from napari_weakseg.errors import InputError
from napari_weakseg.methods import METHODS, GenSeg, MethodConfig, build_method, merge, method_preset, preset
from napari_weakseg.methods.baselines import MeanTeacher

TINY = {
    "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4, "res_blocks": 1},
    "input_size": 32,
    "batch_size": 2,
    "disc_base": 4,
}


def tiny_cfg(channels: int = 1, method: str = "genseg") -> MethodConfig:
    """The quick preset (with ``method``'s own settings, e.g. its loss weights), tiny networks."""
    return merge(method_preset(method, "quick", channels), TINY)


def random_batch(b: int = 2, c: int = 1, size: int = 32, annotated=(True, False), seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(b, 1, size, size)
    m[:, :, 8:20, 10:22] = 1.0
    return {
        "P": torch.randn(b, c, size, size, generator=g) + 2 * m,
        "A": torch.randn(b, c, size, size, generator=g),
        "M": m,
        "L": torch.tensor(annotated[:b]),
    }


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_registry():
    assert set(METHODS) == {"genseg", "genseg-sepdec", "seg-only", "ae", "mean-teacher", "cyclegan-ssl", "pseudo-label"}
    for name, cls in METHODS.items():
        assert cls.name == name and cls.description
        # pair sampling draws absence slices: the Trainer must refuse a study without them up front
        assert cls.needs_absence == (cls.sampling == "pairs")
    with pytest.raises(InputError, match="unknown method"):
        build_method("unet", tiny_cfg())


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("channels", [1, 2])
def test_one_step_per_phase(name, channels):
    from napari_weakseg.data.shape_prior import provide_aux

    method = build_method(name, tiny_cfg(channels, name))
    method.train()
    provide_aux(method, (32, 32))  # what the Trainer hands in (pseudo-label's shape prior; the others need none)
    opts = method.make_optimizers()
    assert set(opts) == set(method.phases)
    batch = random_batch(c=channels)
    if method.sampling == "annotated":
        batch["L"] = torch.ones(2, dtype=torch.bool)
    all_params = dict(method.named_parameters())
    for phase in method.phases:
        phase_ids = {id(p) for p in method.phase_parameters(phase)}
        before = {k: p.detach().clone() for k, p in all_params.items()}
        opts[phase].zero_grad(set_to_none=True)
        out = method(batch, phase)
        assert out["loss"].dim() == 0 and out["loss"].requires_grad
        assert all(math.isfinite(float(v.detach())) for v in out.values()), out
        out["loss"].backward()
        opts[phase].step()
        changed = {k for k, p in all_params.items() if not torch.equal(before[k], p.detach())}
        assert changed, f"{name}/{phase}: no parameter changed"
        # an optimiser only moves the parameters of its phase
        assert all(id(all_params[k]) in phase_ids for k in changed), sorted(k for k in changed if id(all_params[k]) not in phase_ids)
    method.after_step()
    assert len({id(p) for ps in (method.phase_parameters(ph) for ph in method.phases) for p in ps}) > 0


def test_genseg_phases_separate_generator_and_discriminators():
    m = GenSeg(tiny_cfg())
    gen = {id(p) for p in m.phase_parameters("generator")}
    disc = {id(p) for p in m.phase_parameters("discriminator")}
    assert gen and disc and not gen & disc
    assert gen | disc == {id(p) for p in m.parameters()}
    assert disc == {id(p) for p in [*m.disc_A.parameters(), *m.disc_P.parameters()]}
    out = m(random_batch(), "generator")
    assert set(out) == {"loss", "adv", "rec", "lat", "cyc", "seg"}
    assert set(m(random_batch(), "discriminator")) == {"loss", "disc"}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_predict_outputs(name):
    method = build_method(name, tiny_cfg(2, name)).eval()
    x = torch.randn(3, 2, 32, 32)
    out = method.predict(x)
    assert set(out) == set(method.outputs)
    assert out["prob"].shape == (3, 1, 32, 32)
    assert float(out["prob"].min()) >= 0 and float(out["prob"].max()) <= 1
    assert not out["prob"].requires_grad
    if name.startswith("genseg"):
        assert set(out) == {"prob", "healthy", "residual"}
        assert out["healthy"].shape == out["residual"].shape == (3, 2, 32, 32)
    elif name == "pseudo-label":  # per-slice quality scores
        assert out["score_disc"].shape == out["score_vae"].shape == (3,)
    else:
        assert set(out) == {"prob"}


@pytest.mark.parametrize("name", ["genseg", "genseg-sepdec"])
def test_sample_lesions(name):
    m = build_method(name, tiny_cfg(2)).eval()
    x = torch.randn(2, 2, 32, 32)
    a = m.sample_lesions(x, torch.Generator().manual_seed(1))
    b = m.sample_lesions(x, torch.Generator().manual_seed(1))
    c = m.sample_lesions(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert build_method("seg-only", tiny_cfg(2)).sample_lesions(x) is None


def test_mean_teacher_ema():
    m = MeanTeacher(tiny_cfg())
    assert m.cfg.ema_decay == 0.99
    student = [*m.encoder.parameters(), *m.dec_segment.parameters()]
    teacher = [*m.teacher["encoder"].parameters(), *m.teacher["dec_segment"].parameters()]
    assert len(student) == len(teacher) and all(not p.requires_grad for p in teacher)
    assert all(id(p) not in {id(q) for q in m.phase_parameters("main")} for p in teacher)
    # a training step moves the student only
    opt = m.make_optimizers()["main"]
    before = [p.detach().clone() for p in teacher]
    m(random_batch(), "main")["loss"].backward()
    opt.step()
    assert all(torch.equal(b, p) for b, p in zip(before, teacher, strict=False))
    assert any(not torch.equal(b, p) for b, p in zip(before, student, strict=False))
    m.after_step()
    for t_old, t_new, s in zip(before, teacher, student, strict=False):
        torch.testing.assert_close(t_new, 0.99 * t_old + 0.01 * s.detach(), rtol=1e-6, atol=1e-7)
    # buffers (spectral-norm power-iteration vectors) are copied from the student
    for tb, sb in zip(m.teacher["encoder"].buffers(), m.encoder.buffers(), strict=False):
        assert torch.equal(tb, sb)
    # predictions come from the teacher
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        m.eval()
        assert torch.equal(m.predict(x)["prob"], torch.sigmoid(m.teacher_logits(x)))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_segmentation_loss_without_annotations(name):
    method = build_method(name, tiny_cfg(method=name))
    logits = torch.randn(2, 1, 32, 32, requires_grad=True)
    batch = random_batch(annotated=(False, False))
    loss = method.segmentation_loss(logits, batch)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    # with one annotated slice, only that slice counts
    batch["L"] = torch.tensor([True, False])
    logits.grad = None
    loss = method.segmentation_loss(logits, batch)
    assert loss.item() > 0
    loss.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0


def test_methods_train_without_annotated_slices_in_the_batch():
    for name in ("genseg", "ae", "mean-teacher"):
        method = build_method(name, tiny_cfg())
        out = method(random_batch(annotated=(False, False)), method.phases[0])
        assert out["seg"].item() == 0.0 and math.isfinite(out["loss"].item())
        out["loss"].backward()


def test_config_round_trip():
    cfg = tiny_cfg(2)
    d = cfg.to_dict()
    import json

    again = MethodConfig.from_dict(json.loads(json.dumps(d)))
    assert again == cfg
    assert again.to_dict() == d
    assert isinstance(again.betas, tuple) and again.net.in_channels == 2


def test_config_unknown_keys():
    d = tiny_cfg().to_dict()
    with pytest.raises(InputError, match="learning_rate"):
        MethodConfig.from_dict({**d, "learning_rate": 0.1})
    with pytest.raises(InputError, match="widht"):
        MethodConfig.from_dict({**d, "net": {**d["net"], "widht": 3}})
    with pytest.raises(InputError):
        merge(preset("quick"), {"bogus": 1})
    with pytest.raises(InputError):
        preset("huge")


def test_merge_nested_override():
    base = preset("quick", 2)
    cfg = merge(base, {"lr": 5e-4, "net": {"base": 16}, "weights": {"seg": 3.0}})
    assert cfg.lr == 5e-4
    assert cfg.net.base == 16
    assert cfg.net.in_channels == 2 and cfg.net.depth == base.net.depth  # untouched nested keys stay
    assert cfg.weights["seg"] == 3.0 and cfg.weights["rec"] == base.weights["rec"]
    assert base.net.base != 16 or base.lr != 5e-4  # the preset itself is not modified
    assert preset("quick", 2) == base


def test_paper_preset():
    cfg = preset("paper")
    assert cfg.net.code_channels == 512 and cfg.net.unique_channels == 128
    assert cfg.weights == {"adv": 3.0, "rec": 50.0, "lat": 1.0, "cyc": 50.0, "seg": 0.01}
    assert abs(cfg.loss_weights()["rec"] - 50.0 / 104.01) < 1e-12  # relative weights (Sec. IV-B)
    w = MethodConfig(weights={"a": 1.0, "b": 3.0}, normalise_weights=True).loss_weights()
    assert w == {"a": 0.25, "b": 0.75}


def test_a_method_must_define_forward_and_predict():
    from napari_weakseg.methods import Method

    class Incomplete(Method):
        def forward(self, batch, phase):
            return {}

    with pytest.raises(TypeError, match="predict"):
        Incomplete(preset("quick", 1))


def test_absence_slices_as_empty_masks_penalise_false_positives():
    """With absence_as_empty, lesion predicted on absence slices raises the Dice loss; without, it is ignored."""
    batch = random_batch(annotated=(True, True))
    logits = torch.where(batch["M"] > 0, 5.0, -5.0)  # a perfect prediction on the presence slices
    confident_lesion, confident_empty = torch.full_like(logits, 5.0), torch.full_like(logits, -5.0)
    on = build_method("genseg", merge(tiny_cfg(), {"absence_as_empty": True}))
    off = build_method("genseg", merge(tiny_cfg(), {"absence_as_empty": False}))
    assert on.segmentation_loss(logits, batch, confident_lesion) > on.segmentation_loss(logits, batch, confident_empty) + 0.3
    assert off.segmentation_loss(logits, batch, confident_lesion) == off.segmentation_loss(logits, batch, confident_empty)
    for name in ("genseg", "ae", "mean-teacher"):  # every paired method trains with it
        method = build_method(name, merge(tiny_cfg(method=name), {"absence_as_empty": True}))
        out = method(random_batch(), method.phases[0])
        assert math.isfinite(float(out["loss"]))


def test_absence_negatives_are_capped_at_the_number_of_masks():
    """With one annotated slice in the batch, only the first absence slice joins the loss as an empty mask."""
    batch = random_batch(annotated=(True, False))
    logits = torch.where(batch["M"] > 0, 5.0, -5.0)
    method = build_method("genseg", merge(tiny_cfg(), {"absence_as_empty": True}))
    empty, lesion = torch.full_like(logits[:1], -5.0), torch.full_like(logits[:1], 5.0)
    assert method.segmentation_loss(logits, batch, torch.cat([empty, lesion])) == method.segmentation_loss(logits, batch, empty)
    assert method.segmentation_loss(logits, batch, torch.cat([lesion, empty])) > method.segmentation_loss(logits, batch, empty) + 0.3


def test_quick_preset_uses_the_absence_tags_and_the_paper_preset_does_not():
    quick, paper = preset("quick"), preset("paper")
    assert quick.absence_as_empty and not paper.absence_as_empty


@pytest.mark.parametrize("name", ["seg-only", "ae", "mean-teacher", "genseg", "genseg-sepdec"])
def test_untrained_networks_start_from_rare_lesions(name):
    """Prior initialisation: before training, the segmentation says "no lesion" almost everywhere
    (p ~ 0.01), so the soft Dice grows the few lesions instead of first erasing a full-image guess."""
    method = build_method(name, tiny_cfg(method=name)).eval()
    prob = method.predict(torch.randn(2, 1, 32, 32))["prob"]
    assert float(prob.median()) < 0.05 and float((prob >= 0.5).float().mean()) < 0.01
