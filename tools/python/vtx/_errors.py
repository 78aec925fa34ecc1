"""The exceptions vtx raises.

Every error is a :class:`vtx.Error`. Its message is one line naming the file or argument and the problem.

* :class:`vtx.FileError` (also an :class:`OSError`): a model folder, checkpoint, config or image file is missing,
  unreadable or corrupt -- what ``transformers`` reports as ``OSError`` too.
* :class:`vtx.InputError` (also a :class:`ValueError`): a bad argument -- wrong array shape or dtype, an unknown
  option, a model of the wrong task for the ``AutoModelFor...`` class.

So ``except OSError`` / ``except ValueError`` written for transformers keep working, and ``except vtx.Error``
catches both.
"""


class Error(Exception):
    """Base class of every error raised by vtx."""


class InputError(Error, ValueError):
    """Bad input: an array of the wrong shape or dtype, an unknown option, the wrong model for the task."""


class FileError(Error, OSError):
    """A missing, unreadable or corrupt file (model folder, config.json, safetensors, image)."""
