"""Atomic file writes (a crash never leaves a half-written checkpoint or result) and reads
whose errors name the file: a user-caused problem (truncated, corrupt, unreadable, read-only)
is a `MTLParetoError` that says which file and what to do, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from mtlpareto.errors import MTLParetoError


class UnreadableFileError(MTLParetoError):
    """A file exists but cannot be read back (truncated, corrupt, or not ours)."""


class UnwritableFileError(MTLParetoError):
    """An output cannot be written (read-only directory, no space, a file in the way)."""


def _unwritable(path: Path, err: OSError) -> UnwritableFileError:
    reason = err.strerror or type(err).__name__
    return UnwritableFileError(f"cannot write {path} ({reason}); make {path.parent} writable (or free space) and rerun")


def ensure_writable(path: Path) -> None:
    """Fail before any work if `path` could not be written (e.g. a read-only results/)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise _unwritable(path, err) from err


def _atomic(path: Path, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _unwritable(path, err) from err
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _unwritable(path, err) from err
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(text: str, path: Path) -> None:
    _atomic(path, lambda fh: fh.write(text.encode()))


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def check_torch_file(path: Path, what: str, fix: str) -> None:
    """Fail naming the file unless `path` is a complete torch.save archive (every CRC checked).

    torch.save writes a zip archive; a truncated or overwritten file fails here in milliseconds
    instead of deep inside torch.load.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{what} {path} not found; {fix}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise UnreadableFileError(f"{what} {path} is unreadable ({type(err).__name__}: {err}); {fix}") from err
    if bad is not None:
        raise UnreadableFileError(f"{what} {path} is corrupt (member {bad} fails its checksum); {fix}")


def read_json_file(path: Path, what: str, fix: str) -> Any:
    """json.loads of a file, with errors that name it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UnreadableFileError(f"{what} {path} not found; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableFileError(f"{what} {path} is unreadable ({type(err).__name__}: {err}); {fix}") from err
