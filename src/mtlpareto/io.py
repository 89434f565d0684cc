"""Atomic file writes: a crash never leaves a half-written checkpoint or result."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mtlpareto.errors import MTLParetoError


class UnreadableFileError(MTLParetoError):
    """A file exists but cannot be read back (truncated, corrupt, or not ours)."""


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(text: str, path: Path) -> None:
    _atomic(path, lambda fh: fh.write(text.encode()))


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)


def load_torch_file(path: Path, what: str, fix: str, map_location: Any = "cpu", weights_only: bool = False) -> Any:
    """torch.load with errors that name the file: missing, unreadable or truncated.

    `what` says what the file is ("checkpoint", "resume file"), `fix` what to do about it.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{what} {path} not found; {fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:  # truncated zip, bad pickle, permissions: say which file, not a pickle traceback
        raise UnreadableFileError(f"{what} {path} is unreadable ({type(err).__name__}: {err}); {fix}") from err
