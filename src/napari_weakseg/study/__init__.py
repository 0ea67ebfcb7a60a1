"""The Study: images, per-slice presence/absence tags and sparse masks (no Qt)."""

from .folder import SCHEMA_VERSION, load_study, save_study
from .model import Study, StudyImage, Tag

__all__ = ["SCHEMA_VERSION", "Study", "StudyImage", "Tag", "load_study", "save_study"]
