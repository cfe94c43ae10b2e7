"""Exceptions users see. Each carries a message that names the file and the problem,
so the CLI can print it without a traceback."""

from __future__ import annotations


class EkspresiError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class LabelError(EkspresiError, ValueError):
    """An emotion name or class selection that ekspresi cannot map."""


class BadInputError(EkspresiError, ValueError):
    """A file or value that cannot be used (corrupt image, wrong pixel count, ...)."""

    def __init__(self, path: str | None, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class ConfigError(EkspresiError, ValueError):
    """An invalid experiment configuration."""


class ModelError(EkspresiError, RuntimeError):
    """A model bundle or weight file that is missing, mismatched or corrupt."""


class MissingDependencyError(EkspresiError, ImportError):
    """An optional extra (``ekspresi[train]``) is needed for this command."""
