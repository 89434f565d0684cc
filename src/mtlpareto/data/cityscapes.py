"""Cityscapes (semantic segmentation, inverse depth) in the community's preprocessed layout.

Files: MTAN's preprocessed Cityscapes at 128x256 (``cityscapes2.zip``, Liu et al. 2019; read
as-is by LibMTL, Nash-MTL, FAMO): ``<path>/{train,val}/{image,label_7|label_19,depth}/<i>.npy``,
2,975 train and 500 val images (data/dense_layout.py gives each file's shape and values).
``classes: 7`` reads ``label_7/`` (the 7 official categories), ``classes: 19`` ``label_19/``
(the 19 evaluation classes).  ``depth/`` holds inverse depth (a disparity; 0 = invalid).
``instance: true`` also reads ``instance/`` (per-pixel offsets to the instance centroid, 250
off instances: the third task of Sener & Koltun's Table 4), which `scenes` street exports
write.  ``source: official`` builds the same three tasks from the official Cityscapes files
instead (leftImg8bit/, gtFine/, disparity/; data/cityscapes_official.py), as Sener & Koltun
did: ``classes: 19, instance: true, image_size: [256, 512], val_size: 275``.

``path`` defaults to ``<root>/cityscapes``.  The community reports on ``val``: here it is the
``test`` split and ``val`` is a seeded ``val_size`` of ``train``.  There is no automatic
download (the archive sits behind MTAN's Dropbox link, the official files behind a login):
place the extracted folder by hand; anything missing fails with the expected layout.

Targets: {"semantic": int8 [N, H, W], "depth": float16 [N, 1, H, W] (disparity), and
"instance": float16 [N, 2, H, W] when asked for}; images uint8 [N, 3, H, W].
"""

from __future__ import annotations

from pathlib import Path

from mtlpareto.data import DATASETS
from mtlpareto.data import cityscapes_official
from mtlpareto.data.dense_layout import DenseProblem, check_augment, hold_out, layout_description, read_split, split_size
from mtlpareto.data.scene_renderer import CITYSCAPES7_CLASSES
from mtlpareto.errors import ConfigError, DatasetMissingError
from mtlpareto.tasks import Task
from mtlpareto.tasks.depth import DepthTask
from mtlpareto.tasks.instance import InstanceOffsetTask
from mtlpareto.tasks.segmentation import SegmentationTask

FOLDER = "cityscapes"
URL = "https://www.dropbox.com/s/lg2ktu7o8hzwf99/cityscapes2.zip?dl=0"
OFFICIAL_SIZE = (128, 256)
OFFICIAL_COUNTS = {"train": 2975, "val": 500}
CITYSCAPES19_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
CLASS_NAMES = {7: CITYSCAPES7_CLASSES, 19: CITYSCAPES19_CLASSES}


def _classes(classes: object) -> int:
    if classes not in CLASS_NAMES or isinstance(classes, bool):
        raise ConfigError(f"cityscapes: classes must be 7 (label_7/) or 19 (label_19/), got {classes!r}")
    return int(classes)


def _size(image_size: object) -> tuple[int, int]:
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in image_size):
        raise ConfigError(f"cityscapes: image_size must be [height, width] with integers >= 8, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _source(source: object) -> str:
    if source not in ("layout", "official"):
        raise ConfigError(f"cityscapes: source must be 'layout' (MTAN's preprocessed .npy files) or 'official' (leftImg8bit/, gtFine/, disparity/), got {source!r}")
    return str(source)


def layout_folders(classes: int, instance: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(folder -> target kind, folder -> task name) of a Cityscapes layout."""
    folders = {f"label_{classes}": "label", "depth": "disparity"}
    names = {f"label_{classes}": "semantic", "depth": "depth"}
    if instance:
        folders["instance"], names["instance"] = "offset", "instance"
    return folders, names


def cityscapes_tasks(classes: int = 7, instance: bool = False) -> list[Task]:
    tasks: list[Task] = [SegmentationTask("semantic", classes), DepthTask("depth")]
    if instance:
        tasks.append(InstanceOffsetTask("instance"))
    return tasks


def _describe(folder: Path, folders: dict[str, str], height: int, width: int, reason: str) -> str:
    return (
        f"dataset cityscapes: {reason}\n"
        + layout_description(folder, folders, height, width)
        + f"\n  official: {OFFICIAL_COUNTS['train']} train / {OFFICIAL_COUNTS['val']} val samples at {OFFICIAL_SIZE[0]}x{OFFICIAL_SIZE[1]}"
        + f"\n  source: MTAN's preprocessed archive cityscapes2.zip (128x256), {URL}\n"
        f"  fix: extract it so that {folder} holds train/ and val/ (or set `path:` to that directory)."
    )


@DATASETS.register("cityscapes")
class CityscapesKind:
    """Cityscapes: semantic (7 or 19 classes), depth (disparity), optional instance offsets."""

    problem = DenseProblem

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        _source(spec.get("source", "layout"))
        _size(spec.get("image_size", OFFICIAL_SIZE))
        check_augment(spec.get("augment"), "cityscapes")
        return cityscapes_tasks(_classes(spec.get("classes", 7)), bool(spec.get("instance", False)))

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (3, *_size(spec.get("image_size", OFFICIAL_SIZE)))

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        height, width = _size(spec.get("image_size", OFFICIAL_SIZE))
        folder = Path(spec["path"]).expanduser() if spec.get("path") else Path(root) / FOLDER
        if _source(spec.get("source", "layout")) == "official":
            counts = {split: len(cityscapes_official.frames(folder, split)) for split in ("train", "val")}
            if spec.get("check_counts", True) and counts != OFFICIAL_COUNTS:
                raise DatasetMissingError(cityscapes_official.describe(folder, f"{folder} holds {counts} frames, not the official {OFFICIAL_COUNTS}; set check_counts: false for a subset"))
            return {"folder": str(folder), "source": "official", "counts": counts}
        folders, _ = layout_folders(_classes(spec.get("classes", 7)), bool(spec.get("instance", False)))
        return {"folder": str(folder), "counts": _check_counts(folder, folders, height, width, spec.get("check_counts", True))}

    @staticmethod
    def build(
        root: Path,
        path: str | None = None,
        classes: int = 7,
        instance: bool = False,
        image_size: tuple[int, int] | list[int] = OFFICIAL_SIZE,
        val_size: int = 0,
        seed: int = 0,
        augment: bool | dict | None = None,
        check_counts: bool = True,
        max_train: int | None = None,
        max_test: int | None = None,
        source: str = "layout",
    ) -> dict:
        height, width = _size(image_size)
        folder = Path(path).expanduser() if path else Path(root) / FOLDER
        if _source(source) == "official":
            return build_from_official(folder, height, width, _classes(classes), bool(instance), val_size, seed, check_augment(augment, "cityscapes"), max_train, max_test)
        return build_from_layout(folder, height, width, _classes(classes), bool(instance), val_size, seed, check_augment(augment, "cityscapes"), check_counts, max_train, max_test)


def _check_counts(folder: Path, folders: dict[str, str], height: int, width: int, check_counts: bool) -> dict[str, int]:
    counts = {split: split_size(folder, split, list(folders), _describe(folder, folders, height, width, f"{folder / split} is incomplete")) for split in ("train", "val")}
    if check_counts and counts != OFFICIAL_COUNTS:
        raise DatasetMissingError(_describe(folder, folders, height, width, f"{folder} holds {counts} samples, not the official {OFFICIAL_COUNTS}; set check_counts: false for a subset or a generated dataset"))
    return counts


def build_from_layout(folder: Path, height: int, width: int, classes: int = 7, instance: bool = False, val_size: int = 0, seed: int = 0, augment: dict | None = None, check_counts: bool = False, max_train: int | None = None, max_test: int | None = None, meta: dict | None = None) -> dict:
    """The processed dataset of a Cityscapes-layout directory (also what `scenes` street exports)."""
    folders, names = layout_folders(classes, instance)
    counts = _check_counts(folder, folders, height, width, check_counts)
    describe = _describe(folder, folders, height, width, "malformed layout")
    x_train, y_train = read_split(folder, "train", folders, names, height, width, classes, describe, max_train)
    x_test, y_test = read_split(folder, "val", folders, names, height, width, classes, describe, max_test)
    train, val = hold_out(x_train, y_train, val_size, seed, "cityscapes")
    kinds = {names[f]: k for f, k in folders.items()}
    return {
        "train": train,
        "val": val,
        "test": (x_test, y_test),
        "tasks": list(kinds),
        "meta": {
            "kind": "cityscapes",
            "folder": str(folder),
            "image_shape": [3, height, width],
            "classes": list(CLASS_NAMES[classes]),
            "layout_counts": counts,
            "sizes": {"train": len(train[0]), "val": len(val[0]), "test": len(x_test)},
            "seed": seed,
            "augment": augment,
            "target_kinds": kinds,
            "reference": "MTAN's preprocessed Cityscapes (Liu et al. 2019); Cordts et al. 2016; Sener & Koltun 2018 (instance)",
            **(meta or {}),
        },
    }


def build_from_official(folder: Path, height: int, width: int, classes: int = 19, instance: bool = True, val_size: int = 0, seed: int = 0, augment: dict | None = None, max_train: int | None = None, max_test: int | None = None) -> dict:
    """The processed dataset built from the official files (see data/cityscapes_official.py)."""
    x_train, y_train, train_frames = cityscapes_official.read_official_split(folder, "train", height, width, classes, max_train)
    x_test, y_test, test_frames = cityscapes_official.read_official_split(folder, "val", height, width, classes, max_test)
    if not instance:
        y_train.pop("instance"), y_test.pop("instance")
    train, val = hold_out(x_train, y_train, val_size, seed, "cityscapes")
    kinds = {"semantic": "label", "depth": "disparity", **({"instance": "offset"} if instance else {})}
    return {
        "train": train,
        "val": val,
        "test": (x_test, y_test),
        "tasks": list(kinds),
        "meta": {
            "kind": "cityscapes",
            "source": "official",
            "folder": str(folder),
            "image_shape": [3, height, width],
            "classes": list(CLASS_NAMES[classes]),
            "sizes": {"train": len(train[0]), "val": len(val[0]), "test": len(x_test)},
            "frames": {"train_folder": train_frames, "test": test_frames},
            "seed": seed,
            "augment": augment,
            "target_kinds": kinds,
            "reference": "Cordts et al. 2016 (official files); Sener & Koltun 2018, Sec. 4.3 and App. C.3",
        },
    }

