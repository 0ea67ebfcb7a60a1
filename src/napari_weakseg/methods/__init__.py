"""Every method behind one interface (:class:`Method`); look them up by name."""

from __future__ import annotations

from ..errors import InputError
from .base import Method
from .baselines import AutoEncoding, MeanTeacher, SegOnly
from .config import MethodConfig, merge, preset, with_options
from .cyclegan_ssl import CycleGanSSL
from .genseg import GenSeg, GenSegSepDec
from .pseudo_label import PseudoLabel

METHODS: dict[str, type[Method]] = {m.name: m for m in (GenSeg, GenSegSepDec, SegOnly, AutoEncoding, MeanTeacher, CycleGanSSL, PseudoLabel)}


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def build_method(name: str, cfg: MethodConfig) -> Method:
    return method_class(name)(cfg)


def method_preset(method: str, name: str, in_channels: int = 1) -> MethodConfig:
    """The ``name`` preset (``quick`` / ``paper``) with ``method``'s own settings applied."""
    return with_options(preset(name, in_channels), method_class(method).preset_options(name))


__all__ = ["METHODS", "Method", "MethodConfig", "build_method", "merge", "method_preset", "preset"]
