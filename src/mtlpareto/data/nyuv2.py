"""NYUv2 (13-class segmentation, depth, surface normals) in the community's preprocessed layout.

Files: MTAN's preprocessed NYUv2 (Liu et al. 2019; read as-is by LibMTL, Nash-MTL, FAMO):
``<path>/{train,val}/{image,label,depth,normal}/<i>.npy`` at 288x384, 795 train and 654 val
images (see data/dense_layout.py for each file's shape and values).  ``path`` defaults to
``<root>/nyuv2`` (root = the pipeline's data/raw).  The community reports on ``val``: here
that folder is the ``test`` split, and ``val`` is a seeded random ``val_size`` of ``train``.

Fetch: the layout already there (counts checked, 795/654 unless ``check_counts: false``), else
the archive ``nyuv2.zip`` from ``mirror`` (a local file or URL) or, with ``download: true``,
from MTAN's documented Dropbox link, extracted under ``<root>``.  Its publisher lists no
checksum: give ``sha256:`` to verify the archive (a mismatch fails); without it the archive's
SHA-256 is computed and written into the fetch manifest (marked unverified), so DVC and a
second machine can pin it.  Anything missing fails with the expected layout in the message.

Augmentation (``augment: true`` or ``{scales: [...], flip: bool}``) is applied per training
batch by `DenseProblem` (random scale crop with depth divided by the scale,
horizontal flip negating the normals' x); the processed file stays unaugmented.

Targets: {"semantic": int8 [N, H, W], "depth": float16 [N, 1, H, W] metres, "normal":
float16 [N, 3, H, W]}; images uint8 [N, 3, H, W].
"""

from __future__ import annotations

import shutil
import urllib.request
import zipfile
from pathlib import Path

from mtlpareto.data import DATASETS
from mtlpareto.data.dense_layout import DenseProblem, check_augment, hold_out, layout_description, read_split, split_size
from mtlpareto.data.scene_renderer import NYU13_CLASSES
from mtlpareto.errors import ConfigError, DatasetMissingError
from mtlpareto.io import sha256_file
from mtlpareto.tasks import Task
from mtlpareto.tasks.depth import DepthTask
from mtlpareto.tasks.normals import SurfaceNormalTask
from mtlpareto.tasks.segmentation import SegmentationTask

FOLDER = "nyuv2"
URL = "https://www.dropbox.com/s/p2nn02wijg7peiy/nyuv2.zip?dl=1"
OFFICIAL_SIZE = (288, 384)
OFFICIAL_COUNTS = {"train": 795, "val": 654}
FOLDERS = {"label": "label", "depth": "depth", "normal": "normal"}  # folder -> target kind
TASK_NAMES = {"label": "semantic", "depth": "depth", "normal": "normal"}  # folder -> task name
TARGET_KINDS = {"semantic": "label", "depth": "depth", "normal": "normal"}


def nyuv2_tasks() -> list[Task]:
    return [SegmentationTask("semantic", len(NYU13_CLASSES)), DepthTask("depth"), SurfaceNormalTask("normal")]


def _size(image_size: object, where: str = "nyuv2") -> tuple[int, int]:
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in image_size):
        raise ConfigError(f"{where}: image_size must be [height, width] with integers >= 8, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _folder(root: Path, path: str | None) -> Path:
    return Path(path).expanduser() if path else Path(root) / FOLDER


def _describe(folder: Path, height: int, width: int, reason: str) -> str:
    return (
        f"dataset nyuv2: {reason}\n"
        + layout_description(folder, FOLDERS, height, width)
        + f"\n  official: {OFFICIAL_COUNTS['train']} train / {OFFICIAL_COUNTS['val']} val samples at {OFFICIAL_SIZE[0]}x{OFFICIAL_SIZE[1]}"
        + f"\n  source: MTAN's preprocessed archive nyuv2.zip, {URL}\n"
        "  fix one of:\n"
        "    - set `download: true` for this dataset in params.yaml (needs network; add `sha256:` to verify the archive);\n"
        "    - set `mirror:` to a local copy (or URL) of nyuv2.zip;\n"
        f"    - extract the archive so that {folder} holds train/ and val/ (or set `path:` to that directory)."
    )


def _check_counts(folder: Path, height: int, width: int, check_counts: bool) -> dict[str, int]:
    counts = {}
    for split in ("train", "val"):
        counts[split] = split_size(folder, split, list(FOLDERS), _describe(folder, height, width, f"{folder / split} is incomplete"))
    if check_counts and counts != OFFICIAL_COUNTS:
        raise DatasetMissingError(_describe(folder, height, width, f"{folder} holds {counts} samples, not the official {OFFICIAL_COUNTS} (a partial extraction?); set check_counts: false for a subset or a generated dataset"))
    return counts


def _fetch_archive(folder: Path, source: str, sha256: str | None, height: int, width: int) -> dict:
    folder.parent.mkdir(parents=True, exist_ok=True)
    archive = folder.parent / "nyuv2.zip"
    try:
        if "://" in source and not source.startswith("file://"):
            with urllib.request.urlopen(source, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        else:
            shutil.copyfile(Path(source.removeprefix("file://")).expanduser(), archive)
    except Exception as err:  # network and file errors come in many types: report them with the manual route
        raise DatasetMissingError(_describe(folder, height, width, f"could not get {source}: {type(err).__name__}: {err}")) from err
    found = sha256_file(archive)
    if sha256 is not None and found != sha256.lower():
        archive.unlink()
        raise DatasetMissingError(f"{source}: SHA-256 mismatch (expected {sha256}, found {found}); the archive is corrupt or not the published one")
    staging = folder.parent / f".{folder.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
    except zipfile.BadZipFile as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetMissingError(f"{archive}: not a zip archive ({err}); delete it and fetch again") from err
    # MTAN's archive holds nyuv2/{train,val}/...; accept train/ and val/ at its top level too.
    entries = [p for p in staging.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    content = entries[0] if len(entries) == 1 and entries[0].is_dir() and not (staging / "train").is_dir() else staging
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # an empty placeholder directory
    if folder.exists():
        shutil.rmtree(staging)
        raise DatasetMissingError(f"{folder} exists but lacks train/ or val/; move it away so the archive can be extracted there")
    content.rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return {"archive": source, "sha256": found, "verified": sha256 is not None}


@DATASETS.register("nyuv2")
class NYUv2Kind:
    """NYUv2: semantic (13 classes), depth (metres), normal; see the module docstring."""

    problem = DenseProblem

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        _size(spec.get("image_size", list(OFFICIAL_SIZE)))
        check_augment(spec.get("augment"), "nyuv2")
        return nyuv2_tasks()

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (3, *_size(spec.get("image_size", list(OFFICIAL_SIZE))))

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        height, width = _size(spec.get("image_size", list(OFFICIAL_SIZE)))
        folder = _folder(root, spec.get("path"))
        check_counts = spec.get("check_counts", True)
        manifest: dict = {"folder": str(folder)}
        if not (folder / "train").is_dir() or not (folder / "val").is_dir():
            source = spec.get("mirror") or (URL if spec.get("download", False) else None)
            if source is None:
                raise DatasetMissingError(_describe(folder, height, width, f"{folder} has no train/ and val/ and download is off"))
            manifest["archive"] = _fetch_archive(folder, str(source), spec.get("sha256"), height, width)
        manifest["counts"] = _check_counts(folder, height, width, check_counts)
        return manifest

    @staticmethod
    def build(
        root: Path,
        path: str | None = None,
        image_size: tuple[int, int] | list[int] = OFFICIAL_SIZE,
        val_size: int = 0,
        seed: int = 0,
        augment: bool | dict | None = None,
        check_counts: bool = True,
        max_train: int | None = None,
        max_test: int | None = None,
        download: bool = False,
        mirror: str | None = None,
        sha256: str | None = None,
    ) -> dict:
        """Processed splits; `download`, `mirror` and `sha256` are fetch's (accepted so params.yaml has one block)."""
        height, width = _size(image_size)
        folder = _folder(root, path)
        return build_from_layout(folder, height, width, val_size, seed, check_augment(augment, "nyuv2"), check_counts, max_train, max_test)


def build_from_layout(folder: Path, height: int, width: int, val_size: int = 0, seed: int = 0, augment: dict | None = None, check_counts: bool = False, max_train: int | None = None, max_test: int | None = None, meta: dict | None = None) -> dict:
    """The processed dataset of an NYUv2-layout directory (also what `scenes` indoor exports)."""
    counts = _check_counts(folder, height, width, check_counts)
    describe = _describe(folder, height, width, "malformed layout")
    x_train, y_train = read_split(folder, "train", FOLDERS, TASK_NAMES, height, width, len(NYU13_CLASSES), describe, max_train)
    x_test, y_test = read_split(folder, "val", FOLDERS, TASK_NAMES, height, width, len(NYU13_CLASSES), describe, max_test)
    train, val = hold_out(x_train, y_train, val_size, seed, "nyuv2")
    return {
        "train": train,
        "val": val,
        "test": (x_test, y_test),
        "tasks": list(TARGET_KINDS),
        "meta": {
            "kind": "nyuv2",
            "folder": str(folder),
            "image_shape": [3, height, width],
            "classes": list(NYU13_CLASSES),
            "layout_counts": counts,
            "sizes": {"train": len(train[0]), "val": len(val[0]), "test": len(x_test)},
            "seed": seed,
            "augment": augment,
            "target_kinds": dict(TARGET_KINDS),
            "reference": "MTAN's preprocessed NYUv2 (Liu et al. 2019); Silberman et al. 2012",
            **(meta or {}),
        },
    }
