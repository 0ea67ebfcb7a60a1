"""The training dock's settings form: method, preset, key options, device, and an Advanced section.

Plain Qt, no napari: it turns what the user set into a train config (method, preset, steps, device,
seed, validation fraction, method-config overrides). No method is special-cased: the list comes
from the core's registry and each method's preset fills the fields.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox

from ..training.dock_defaults import (
    DEFAULT_METHOD,
    DEFAULT_PRESET,
    DEFAULT_STEPS,
    MAX_DOWNSAMPLE,
    MAX_WORKING_SIZE,
    WARM_LR,
    dock_input_size,
    dock_train_config,
)
from ..training.step_options import COMPILE_MODES, PRECISIONS
from ..training.validation_default import MIN_ANNOTATED_FOR_VALIDATION, default_val_fraction
from .spin_boxes import dspin, spin


def available_devices() -> list[tuple[str, str]]:
    """(value, label) pairs: auto (with what it resolves to), CPU, each CUDA device, MPS."""
    import torch

    devices = []
    if torch.cuda.is_available():
        devices += [(f"cuda:{i}", f"CUDA {i}: {torch.cuda.get_device_name(i)}") for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(("mps", "Apple MPS"))
    auto = devices[0][1] if devices else "CPU"
    return [("auto", f"auto ({auto})"), ("cpu", "CPU"), *devices]


class TrainingSettings(QGroupBox):
    def __init__(self):
        super().__init__("Method")
        from ..methods import METHODS

        form = QFormLayout(self)
        self.method = QComboBox()
        self.method.addItems(list(METHODS))  # every method the core registers, none special-cased
        for i, name in enumerate(METHODS):
            self.method.setItemData(i, METHODS[name].description, Qt.ToolTipRole)
        self.method.setCurrentText(DEFAULT_METHOD)
        self.preset = QComboBox()
        self.preset.addItems(["quick", "paper"])
        self.preset.setCurrentText(DEFAULT_PRESET)
        self.steps = spin(1, 1_000_000, DEFAULT_STEPS)
        self.input_size = spin(0, 1024, 64, "0 = native size")
        self.input_size.setToolTip(
            f"slices are resized to this square size (0: native size); the quick preset's follows the study's slices: "
            f"at most {MAX_DOWNSAMPLE:g}x downsampling, {MAX_WORKING_SIZE} at most"
        )
        self.slice_side: int | None = None  # the open study's longest slice side (``follow_study``)
        self.width = spin(2, 256, 8)
        self.seg_weight = dspin(0.0, 1e4, 10.0, 3)
        self.lr = dspin(1e-6, 1.0, 1e-3, 6)
        self.seed = spin(0, 2**31 - 1, 0)
        self.device = QComboBox()
        for value, label in available_devices():
            self.device.addItem(label, value)
        for label, w in (
            ("method", self.method),
            ("preset", self.preset),
            ("steps", self.steps),
            ("input size", self.input_size),
            ("width", self.width),
            ("labelled-loss weight", self.seg_weight),
            ("learning rate", self.lr),
            ("seed", self.seed),
            ("device", self.device),
        ):
            form.addRow(label, w)
        self.advanced = QGroupBox("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        adv = QFormLayout(self.advanced)
        self.batch = spin(1, 512, 8)
        self.ann_per_batch = spin(0, 512, 2)
        self.val_fraction = dspin(0.0, 0.9, 0.2, 2)
        self.val_fraction.setToolTip(
            f"with Advanced off: 0.2, or 0 (every mask trains) below {MIN_ANNOTATED_FOR_VALIDATION} annotated slices"
        )
        self.augment = QCheckBox()
        self.augment.setChecked(True)
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISIONS))
        self.precision.setToolTip(
            "bf16 autocast needs bf16 units (detected), fp16 a CUDA GPU; auto: bf16 where there are bf16 units, else fp32 (CPU), fp16 (GPU)"
        )
        self.compile = QComboBox()
        self.compile.addItems(list(COMPILE_MODES))
        self.compile.setToolTip("torch.compile the training step: its compile time pays only in long runs")
        self.warm_lr = dspin(0.01, 1.0, WARM_LR, 2)
        self.warm_lr.setToolTip("Correct and retrain fine-tunes at this factor of the learning rate (1: the full rate)")
        self.per_class = QCheckBox()
        self.per_class.setToolTip("segment each lesion class of the masks' labels (cyclegan-ssl); off: the whole lesion")
        for label, w in (
            ("batch size", self.batch),
            ("annotated per batch", self.ann_per_batch),
            ("validation fraction", self.val_fraction),
            ("augmentation", self.augment),
            ("precision", self.precision),
            ("compile", self.compile),
            ("retrain learning rate x", self.warm_lr),
            ("per lesion class", self.per_class),
        ):
            adv.addRow(label, w)
        form.addRow(self.advanced)
        self.preset.currentTextChanged.connect(self.apply_preset)
        self.method.currentTextChanged.connect(lambda _: self.apply_preset(self.preset.currentText()))

    def apply_preset(self, name: str) -> None:
        """Show the preset's values for the chosen method (a method may have its own, e.g. its learning rate)."""
        from ..methods import method_preset

        cfg = method_preset(self.method.currentText(), name)
        self.input_size.setValue(dock_input_size(cfg, self.slice_side) or 0)
        self.width.setValue(cfg.net.base)
        self.seg_weight.setValue(cfg.weights["seg"])
        self.lr.setValue(cfg.lr)
        self.batch.setValue(cfg.batch_size)
        self.ann_per_batch.setValue(cfg.annotated_per_batch)

    def follow_study(self, slice_side: int | None) -> None:
        """A study was opened whose longest slice side is ``slice_side`` (None: none is open): the input size for
        its slices (``dock_input_size``); the other fields stay as the user set them."""
        from ..methods import method_preset

        self.slice_side = slice_side
        cfg = method_preset(self.method.currentText(), self.preset.currentText())
        self.input_size.setValue(dock_input_size(cfg, slice_side) or 0)

    def follow_model(self, method: str | None, preset: str | None) -> None:
        """A model was loaded: show its method and preset (when the dock knows them), so that Retrain and Resume
        continue that model rather than start another method from its weights; a change refills the preset's fields."""
        if preset in [self.preset.itemText(i) for i in range(self.preset.count())]:
            self.preset.setCurrentText(preset)
        if method in [self.method.itemText(i) for i in range(self.method.count())]:
            self.method.setCurrentText(method)

    def show_val_fraction(self, n_annotated: int) -> float:
        """The validation fraction a run uses; with Advanced off the (greyed) field shows the default."""
        if not self.advanced.isChecked():
            self.val_fraction.setValue(default_val_fraction(n_annotated))
        return self.val_fraction.value()

    def train_config(self, n_annotated: int, extra: list[tuple[str, object]] = ()) -> dict:
        """The Trainer's config from the form; ``extra`` (key, value) overrides are merged in last."""
        overrides = {
            "input_size": self.input_size.value() or None,
            "lr": self.lr.value(),
            "net": {"base": self.width.value()},
            "weights": {"seg": self.seg_weight.value()},
        }
        if self.advanced.isChecked():
            overrides.update(
                batch_size=self.batch.value(), annotated_per_batch=self.ann_per_batch.value(), augment=self.augment.isChecked()
            )
        for key, value in extra:
            if isinstance(value, dict) and isinstance(overrides.get(key), dict):
                overrides[key] = {**overrides[key], **value}
            else:
                overrides[key] = value
        return dock_train_config(
            n_annotated,
            self.method.currentText(),
            self.steps.value(),
            self.preset.currentText(),
            self.device.currentData(),
            self.seed.value(),
            self.show_val_fraction(n_annotated),
            overrides,
            **(self._advanced_run_options() if self.advanced.isChecked() else {}),
        )

    def _advanced_run_options(self) -> dict:
        return {"precision": self.precision.currentText(), "compile": self.compile.currentText(), "warm_lr": self.warm_lr.value()}
