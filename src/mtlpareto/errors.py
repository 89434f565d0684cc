"""Errors that carry a message meant for the user (the CLI prints it without a traceback)."""


class MTLParetoError(Exception):
    """Base class: the message names the problem and, where possible, the fix."""


class ConfigError(MTLParetoError):
    """params.yaml (or a command-line value) is invalid."""


class DatasetMissingError(MTLParetoError):
    """A dataset's files are absent and cannot be downloaded."""


class TrainingError(MTLParetoError):
    """Training cannot continue (e.g. a non-finite loss)."""
