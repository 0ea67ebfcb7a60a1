"""Errors that reach users as one clear sentence (napari notification or CLI line)."""


class WeaksegError(Exception):
    """Base class: the message is meant for the user, not a traceback."""


class InputError(WeaksegError):
    """A file, folder or value given by the user cannot be used as it is."""


class SchemaVersionError(WeaksegError):
    """A study folder was written with a schema this version cannot read."""
