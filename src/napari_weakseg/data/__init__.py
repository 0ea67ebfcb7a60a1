"""Data: synthetic generators (phantom with lesions), later samplers and augmentation."""

from .phantom import PhantomCase, make_phantom

__all__ = ["PhantomCase", "make_phantom"]
