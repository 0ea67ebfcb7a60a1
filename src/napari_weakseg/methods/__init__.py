"""Every method behind one interface (:class:`Method`); look them up by name."""

from __future__ import annotations

from ..errors import InputError
from .base import Method
from .baselines import AutoEncoding, MeanTeacher, SegOnly
from .config import MethodConfig, merge, preset
from .genseg import GenSeg, GenSegSepDec
from .pseudo_label import PseudoLabel

METHODS: dict[str, type[Method]] = {m.name: m for m in (GenSeg, GenSegSepDec, SegOnly, AutoEncoding, MeanTeacher, PseudoLabel)}


def build_method(name: str, cfg: MethodConfig) -> Method:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name](cfg)


__all__ = ["METHODS", "Method", "MethodConfig", "build_method", "merge", "preset"]
