"""PASCAL-Context, multi-task version (Maninis et al., ASTMT, CVPR 2019; used by MTI-Net and DYMU).

Archive: ``PASCAL_MT.tgz`` from ASTMT's authors (``URL`` below), extracted as ``PASCAL_MT/``:

    JPEGImages/<id>.jpg                      RGB photographs, about 500 x 375
    ImageSets/Context/{train,val}.txt        one image id per line: 4,998 train / 5,105 val
    semseg/pascal-context/<id>.png           semantic labels 0..20 (VOC's 21 classes), 255 unlabelled
                                             (ASTMT reads semseg/VOC12/<id>.png first when it exists)
    human_parts/<id>.mat                     PASCAL-Part annotation: struct ``anno`` with ``objects``
                                             (class, class_ind, mask, parts (part_name, mask))
    sal_distill/<id>.png                     distilled saliency, 0..255
    normals_distill/<id>.png                 distilled surface normals, RGB = (n + 1) / 2 * 255
    pascal-context/trainval/<id>.mat         ``LabelMap``: PASCAL-Context's 459 classes (1-based)

How each label is decoded (ASTMT's conventions, reimplemented here):

* semantic: the PNG's values; 255 -> -1 (ignored); 21 classes.
* parts: every person object (``class_ind`` 15) with parts paints its parts with 6 groups
  (ASTMT's ``num_human_parts: 6``: head, torso, upper arms, lower arms and hands, upper legs,
  lower legs and feet), 0 elsewhere; an image without any part pixel is ignored entirely (-1
  everywhere: ASTMT's ``AddIgnoreRegions``), so background counts only in images with people.
  7 classes.
* saliency: PNG / 255 > 0.5 -> 1, else 0.
* normal: PNG * 2 / 255 - 1, kept only on pixels whose ``LabelMap`` class is one NYUv2 also
  has (ASTMT's ``normals_valid_classes``, listed below), all-zero (invalid) elsewhere.
* edge: the boundaries of ``LabelMap``: pixels where its 4-neighbour Laplacian (reflected
  border) is non-zero, thinned to one pixel (Guo & Hall's parallel thinning, as
  skimage.morphology.thin, which ASTMT calls).

Every map is computed at the photograph's resolution, then resized to ``image_size`` (MTI-Net:
512 x 512, aspect ratio not kept): the image bilinearly, every label by nearest neighbour (the
normals too, so an invalid pixel never blends into a valid one; MTI-Net resizes them bicubically
and renormalises).  ``tasks:`` picks any subset of ``semantic, parts, saliency, normal, edge``,
in that order or the given one; only the files those tasks need are read.

Splits: the official ``val`` list is this project's ``test`` split (the papers report on it);
``val`` is a seeded ``val_size`` of the official ``train`` list.

Fetch: the folder already there (``path:``, default ``<root>/PASCAL_MT``; every file of every
listed id is checked), else ``<root>/PASCAL_MT.tgz`` (placed by hand, copied from ``mirror:``
or, with ``download: true``, downloaded from ``URL``), extracted.  No checksum or size is
published for the archive: ``sha256:`` verifies it when given; without it the archive's SHA-256
is recorded in the fetch manifest, marked unverified.

Targets: {"semantic": int8 [N, H, W], "parts": int8 [N, H, W], "saliency": uint8 [N, H, W],
"normal": float16 [N, 3, H, W], "edge": uint8 [N, H, W]}; images uint8 [N, 3, H, W], fed to the
network normalised by ImageNet's mean and std (as MTI-Net does, for pretrained backbones).
"""

from __future__ import annotations

import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mtlpareto.data import DATASETS
from mtlpareto.data.cityscapes_official import _resize
from mtlpareto.data.dense_layout import DenseProblem, check_augment, hold_out
from mtlpareto.errors import ConfigError, DatasetMissingError
from mtlpareto.io import sha256_file
from mtlpareto.tasks import Task
from mtlpareto.tasks.edges import EdgeTask
from mtlpareto.tasks.normals import SurfaceNormalTask
from mtlpareto.tasks.saliency import SaliencyTask
from mtlpareto.tasks.segmentation import SegmentationTask

FOLDER = "PASCAL_MT"
ARCHIVE = "PASCAL_MT.tgz"
URL = "https://data.vision.ee.ethz.ch/kmaninis/share/MTL/PASCAL_MT.tgz"
OFFICIAL_COUNTS = {"train": 4998, "val": 5105}
OFFICIAL_SIZE = (512, 512)  # MTI-Net's training and test resolution
TASK_NAMES = ("semantic", "parts", "saliency", "normal", "edge")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
PERSON_CLASS = VOC_CLASSES.index("person")  # PASCAL-Part's class_ind of a person
PART_CLASSES = ("background", "head", "torso", "upper arm", "lower arm", "upper leg", "lower leg")
# PASCAL-Part's person part names -> the 6 groups (ASTMT's HUMAN_PART[6]).
_PART_GROUPS = {
    "head": ("hair", "head", "lear", "lebrow", "leye", "mouth", "nose", "rear", "rebrow", "reye"),
    "torso": ("neck", "torso"),
    "upper arm": ("luarm", "ruarm"),
    "lower arm": ("lhand", "llarm", "rhand", "rlarm"),
    "upper leg": ("luleg", "ruleg"),
    "lower leg": ("lfoot", "llleg", "rfoot", "rlleg"),
}
PART_INDEX = {part: PART_CLASSES.index(group) for group, parts in _PART_GROUPS.items() for part in parts}
# PASCAL-Context classes (LabelMap ids) whose name is also an NYUv2 class, plus tvmonitor: where
# the distilled normals are kept (ASTMT: the names shared by its nyu_classes.json and
# context_classes.json, 'unknown' excluded).  170 ids.
NORMAL_CLASSES = frozenset((
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30, 33, 34, 36, 37, 38, 39, 41, 43, 46, 49, 50, 51, 53, 55,
    56, 59, 61, 62, 65, 66, 68, 69, 72, 73, 78, 83, 84, 85, 87, 88, 95, 96, 101, 104, 105, 107, 111, 113, 115,
    122, 124, 135, 141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172, 174, 181, 183, 184, 191, 193, 195,
    197, 199, 202, 213, 215, 216, 219, 220, 223, 225, 228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251,
    252, 255, 260, 261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286, 287, 288, 290, 291, 292, 293, 295,
    304, 307, 309, 310, 314, 315, 319, 323, 329, 330, 331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368,
    370, 371, 374, 379, 380, 383, 384, 397, 401, 403, 405, 407, 408, 411, 412, 413, 414, 417, 419, 421, 423,
    427, 429, 430, 432, 440, 441, 442, 443, 444, 446, 454, 457,
))

# The layout as error messages show it.
_LAYOUT = (
    ("JPEGImages/<id>.jpg", "RGB image"),
    ("ImageSets/Context/{train,val}.txt", "image ids, one a line (4998 / 5105)"),
    ("semseg/pascal-context/<id>.png", "semantic: classes 0..20, 255 unlabelled (or semseg/VOC12/<id>.png)"),
    ("human_parts/<id>.mat", "parts: PASCAL-Part struct anno.objects(class_ind, mask, parts(part_name, mask))"),
    ("sal_distill/<id>.png", "saliency: 0..255, > 127 salient"),
    ("normals_distill/<id>.png", "normal: RGB = (n + 1) / 2 * 255"),
    ("pascal-context/trainval/<id>.mat", "edge and normal: LabelMap, PASCAL-Context classes"),
)
TARGET_KINDS = {"semantic": "label", "parts": "label", "saliency": "mask", "normal": "normal", "edge": "mask"}


# --------------------------------------------------------------------------- options


def _size(image_size: object) -> tuple[int, int]:
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in image_size):
        raise ConfigError(f"pascal_context: image_size must be [height, width] with positive integers, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _task_names(tasks: object) -> list[str]:
    if tasks is None:
        return list(TASK_NAMES)
    if not isinstance(tasks, (list, tuple)) or not tasks or any(t not in TASK_NAMES for t in tasks) or len(set(tasks)) != len(tasks):
        raise ConfigError(f"pascal_context: tasks must be a non-empty list of distinct names among {', '.join(TASK_NAMES)}, got {tasks!r}")
    return list(tasks)


def pascal_context_tasks(names: list[str] | None = None) -> list[Task]:
    """The Task objects of the selected tasks, in the given order."""
    build = {
        "semantic": lambda: SegmentationTask("semantic", len(VOC_CLASSES)),
        "parts": lambda: SegmentationTask("parts", len(PART_CLASSES)),
        "saliency": lambda: SaliencyTask("saliency"),
        "normal": lambda: SurfaceNormalTask("normal"),
        "edge": lambda: EdgeTask("edge"),
    }
    return [build[name]() for name in _task_names(names)]


# --------------------------------------------------------------------------- layout


def describe(folder: Path, reason: str) -> str:
    """The expected layout and the ways to provide it, for error messages."""
    lines = "\n".join(f"    {path:<38} {what}" for path, what in _LAYOUT)
    return (
        f"dataset pascal_context: {reason}\n  expected under {folder}:\n{lines}\n"
        f"  source: ASTMT's archive {ARCHIVE} (Maninis et al. 2019), {URL}\n"
        "  fix one of:\n"
        "    - set `download: true` for this dataset in params.yaml (needs network; no checksum is published, add `sha256:` to pin one);\n"
        f"    - set `mirror:` to a local copy (or URL) of {ARCHIVE};\n"
        f"    - put {ARCHIVE} at {folder.parent / ARCHIVE}, or extract it so that {folder} holds JPEGImages/ (or set `path:` to that directory)."
    )


def _folder(root: Path, path: str | None) -> Path:
    return Path(path).expanduser() if path else Path(root) / FOLDER


def image_ids(folder: Path, split: str) -> list[str]:
    """The ids of an official split (ImageSets/Context/<split>.txt), in file order."""
    listing = folder / "ImageSets" / "Context" / f"{split}.txt"
    if not listing.is_file():
        raise DatasetMissingError(describe(folder, f"{listing} is missing"))
    ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if not ids:
        raise DatasetMissingError(describe(folder, f"{listing} lists no image"))
    if len(set(ids)) != len(ids):
        raise DatasetMissingError(f"{listing}: an image id is listed twice")
    return ids


def _semseg_file(folder: Path, image_id: str) -> Path:
    voc = folder / "semseg" / "VOC12" / f"{image_id}.png"
    return voc if voc.is_file() else folder / "semseg" / "pascal-context" / f"{image_id}.png"


def sample_files(folder: Path, image_id: str, tasks: list[str]) -> dict[str, Path]:
    """{role: file} of one image for the selected tasks: image, semantic, parts, saliency, normal, context."""
    files = {"image": folder / "JPEGImages" / f"{image_id}.jpg"}
    if "semantic" in tasks:
        files["semantic"] = _semseg_file(folder, image_id)
    if "parts" in tasks:
        files["parts"] = folder / "human_parts" / f"{image_id}.mat"
    if "saliency" in tasks:
        files["saliency"] = folder / "sal_distill" / f"{image_id}.png"
    if "normal" in tasks:
        files["normal"] = folder / "normals_distill" / f"{image_id}.png"
    if "normal" in tasks or "edge" in tasks:
        files["context"] = folder / "pascal-context" / "trainval" / f"{image_id}.mat"
    return files


def check_layout(folder: Path, tasks: list[str], check_counts: bool = True) -> dict[str, int]:
    """Counts of the two official lists, after checking that every file the tasks need exists."""
    counts = {}
    for split in ("train", "val"):
        ids = image_ids(folder, split)
        for image_id in ids:
            for role, file in sample_files(folder, image_id, tasks).items():
                if not file.is_file():
                    raise DatasetMissingError(describe(folder, f"{file} is missing (the {role} file of {split} image {image_id}); a partial extraction?"))
        counts[split] = len(ids)
    if check_counts and counts != OFFICIAL_COUNTS:
        raise DatasetMissingError(describe(folder, f"ImageSets/Context lists {counts} images, not the official {OFFICIAL_COUNTS}; set check_counts: false for a subset"))
    return counts


# --------------------------------------------------------------------------- decoders


def _read_image(file: Path, mode: str | None = None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as image:
            return np.asarray(image.convert(mode) if mode else image)
    except Exception as err:  # not an image, truncated: name the file
        raise DatasetMissingError(f"{file}: unreadable image ({type(err).__name__}: {err})") from err


def _load_mat(file: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(str(file))
    except Exception as err:  # not a MATLAB file, truncated
        raise DatasetMissingError(f"{file}: unreadable .mat file ({type(err).__name__}: {err})") from err


def _field(record: Any, name: str, file: Path) -> Any:
    names = record.dtype.names or ()
    if name not in names:
        raise DatasetMissingError(f"{file}: expected a struct field {name!r}, found {', '.join(names) or 'none'} (not a PASCAL-Part annotation?)")
    return record[name]


def _scalar(value: Any) -> Any:
    return np.asarray(value).ravel()[0]


def read_semantic(file: Path) -> np.ndarray:
    """int8 [H, W]: classes 0..20, -1 where the PNG holds 255."""
    labels = _read_image(file).astype(np.int64)
    if labels.ndim != 2:
        raise DatasetMissingError(f"{file}: expected a single-channel label PNG, got shape {labels.shape}")
    labels[labels == 255] = -1
    if labels.max() >= len(VOC_CLASSES):
        raise DatasetMissingError(f"{file}: semantic labels must be 0..{len(VOC_CLASSES) - 1} or 255, found {labels.max()}")
    return labels.astype(np.int8)


def read_parts(file: Path) -> np.ndarray:
    """int8 [H, W]: the 6 part groups (1..6) of every person with parts, 0 elsewhere."""
    mat = _load_mat(file)
    anno = mat.get("anno")
    if anno is None or anno.dtype.names is None or anno.size != 1:
        raise DatasetMissingError(f"{file}: expected one struct 'anno' (a PASCAL-Part annotation), found {', '.join(k for k in mat if not k.startswith('__')) or 'nothing'}")
    objects = np.asarray(_field(anno.ravel()[0], "objects", file))
    target: np.ndarray | None = None
    for obj in objects.ravel():
        mask = np.asarray(_field(obj, "mask", file))
        if target is None:
            target = np.zeros(mask.shape, dtype=np.int8)
        if int(_scalar(_field(obj, "class_ind", file))) != PERSON_CLASS:
            continue
        parts = np.asarray(_field(obj, "parts", file))
        for part in parts.ravel() if parts.size else ():
            name = str(_scalar(_field(part, "part_name", file)))
            if name not in PART_INDEX:
                raise DatasetMissingError(f"{file}: unknown person part {name!r}; known: {', '.join(sorted(PART_INDEX))}")
            part_mask = np.asarray(_field(part, "mask", file)).astype(bool)
            if part_mask.shape != target.shape:
                raise DatasetMissingError(f"{file}: part {name!r} has a mask of shape {part_mask.shape}, its image {target.shape}")
            target[part_mask] = PART_INDEX[name]
    return target if target is not None else np.zeros((0, 0), dtype=np.int8)


def read_saliency(file: Path) -> np.ndarray:
    """uint8 [H, W]: 1 where the distilled saliency exceeds half its range."""
    values = _read_image(file)
    if values.ndim != 2:
        raise DatasetMissingError(f"{file}: expected a single-channel saliency PNG, got shape {values.shape}")
    return (values.astype(np.float64) / 255.0 > 0.5).astype(np.uint8)


def read_context_labels(file: Path) -> np.ndarray:
    """[H, W] PASCAL-Context class ids (``LabelMap``)."""
    mat = _load_mat(file)
    if "LabelMap" not in mat:
        raise DatasetMissingError(f"{file}: no variable 'LabelMap' (found {', '.join(k for k in mat if not k.startswith('__'))})")
    labels = np.asarray(mat["LabelMap"])
    if labels.ndim != 2:
        raise DatasetMissingError(f"{file}: LabelMap must be a 2-d map, got shape {labels.shape}")
    return labels.astype(np.int64)


def read_normals(file: Path, context: np.ndarray) -> np.ndarray:
    """float32 [H, W, 3] in [-1, 1] on pixels of NORMAL_CLASSES, 0 elsewhere."""
    rgb = _read_image(file)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DatasetMissingError(f"{file}: expected an RGB normals PNG, got shape {rgb.shape}")
    if rgb.shape[:2] != context.shape:
        raise DatasetMissingError(f"{file}: {rgb.shape[1]}x{rgb.shape[0]} does not match its LabelMap ({context.shape[1]}x{context.shape[0]})")
    normals = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
    normals[~np.isin(context, list(NORMAL_CLASSES))] = 0.0
    return normals


def thin(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a boolean mask: Guo & Hall's two-subiteration parallel thinning
    (algorithm A1 of Lam, Lee & Suen 1992, the one skimage.morphology.thin implements).

    With x1..x8 a pixel's neighbours counter-clockwise from east (E, NE, N, NW, W, SW, S, SE), a
    foreground pixel is deleted when (G1) exactly one of its four corners "x_{2i-1} = 0 and
    (x_{2i} or x_{2i+1})" holds, (G2) 2 <= min(n1, n2) <= 3 with n1 = #{k: x_{2k-1} or x_{2k}} and
    n2 = #{k: x_{2k} or x_{2k+1}}, and (G3) (x2 or x3 or not x8) and x1 is false in the first
    subiteration, (x6 or x7 or not x4) and x5 in the second.  Outside the image is background.
    """
    image = np.pad(np.asarray(mask, dtype=bool), 1)
    offsets = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))  # x1..x8 as (row, col)
    h, w = image.shape[0] - 2, image.shape[1] - 2
    while True:
        changed = False
        for first in (True, False):
            x = [None] + [image[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] for dr, dc in offsets]
            x.append(x[1])  # x9 = x1
            corners = sum((~x[2 * i - 1] & (x[2 * i] | x[2 * i + 1])).astype(np.int8) for i in range(1, 5))
            n1 = sum((x[2 * k - 1] | x[2 * k]).astype(np.int8) for k in range(1, 5))
            n2 = sum((x[2 * k] | x[2 * k + 1]).astype(np.int8) for k in range(1, 5))
            low = np.minimum(n1, n2)
            g3 = ((x[2] | x[3] | ~x[8]) & x[1]) if first else ((x[6] | x[7] | ~x[4]) & x[5])
            delete = image[1:-1, 1:-1] & (corners == 1) & (low >= 2) & (low <= 3) & ~g3
            if delete.any():
                image[1:-1, 1:-1] &= ~delete
                changed = True
        if not changed:
            return image[1:-1, 1:-1].copy()


def edges_from_labels(labels: np.ndarray) -> np.ndarray:
    """uint8 [H, W]: 1 on the thinned boundaries of a label map (ASTMT: thin(|Laplacian| > 0))."""
    padded = np.pad(labels.astype(np.float64), 1, mode="reflect")  # OpenCV's default border (reflect-101)
    laplacian = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4.0 * labels
    return thin(laplacian != 0).astype(np.uint8)


# --------------------------------------------------------------------------- reading a split


def read_split(folder: Path, split: str, tasks: list[str], height: int, width: int, limit: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[str]]:
    """(uint8 images [N, 3, H, W], {task: target}, image ids) of an official split, resized."""
    ids = image_ids(folder, split)[:limit]
    n = len(ids)
    images = torch.empty(n, 3, height, width, dtype=torch.uint8)
    shapes = {"semantic": (n, height, width), "parts": (n, height, width), "saliency": (n, height, width), "normal": (n, 3, height, width), "edge": (n, height, width)}
    dtypes = {"semantic": torch.int8, "parts": torch.int8, "saliency": torch.uint8, "normal": torch.float16, "edge": torch.uint8}
    targets = {task: torch.empty(shapes[task], dtype=dtypes[task]) for task in tasks}
    nearest: Callable[[np.ndarray], np.ndarray] = lambda a: _resize(a, height, width, False)  # noqa: E731
    for i, image_id in enumerate(ids):
        files = sample_files(folder, image_id, tasks)
        for role, file in files.items():
            if not file.is_file():
                raise DatasetMissingError(describe(folder, f"{file} is missing (the {role} file of {split} image {image_id})"))
        rgb = _read_image(files["image"], "RGB")
        images[i] = torch.from_numpy(np.ascontiguousarray(_resize(rgb, height, width, True).transpose(2, 0, 1)))
        context = read_context_labels(files["context"]) if "context" in files else None
        if "semantic" in tasks:
            targets["semantic"][i] = torch.from_numpy(nearest(read_semantic(files["semantic"])))
        if "parts" in tasks:
            parts = read_parts(files["parts"])
            parts = nearest(parts) if parts.size else np.zeros((height, width), dtype=np.int8)
            # No part pixel in the image: ignore it entirely (ASTMT's AddIgnoreRegions).
            targets["parts"][i] = torch.from_numpy(parts if (parts > 0).any() else np.full_like(parts, -1))
        if "saliency" in tasks:
            targets["saliency"][i] = torch.from_numpy(nearest(read_saliency(files["saliency"])))
        if "normal" in tasks:
            normals = nearest(read_normals(files["normal"], context))
            targets["normal"][i] = torch.from_numpy(np.ascontiguousarray(normals.transpose(2, 0, 1)))
        if "edge" in tasks:
            targets["edge"][i] = torch.from_numpy(nearest(edges_from_labels(context)))
    return images, targets, ids


# --------------------------------------------------------------------------- fetch


def _fetch_archive(folder: Path, source: str | None, sha256: str | None) -> dict:
    """Extract PASCAL_MT.tgz (placed next to the folder, or got from `source`) into `folder`."""
    archive = folder.parent / ARCHIVE
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not archive.is_file():
        if source is None:
            raise DatasetMissingError(describe(folder, f"neither {folder}/JPEGImages nor {archive} exists, and download is off"))
        partial = archive.with_name(archive.name + ".partial")
        try:
            if "://" in source and not source.startswith("file://"):
                with urllib.request.urlopen(source, timeout=60) as response, open(partial, "wb") as out:
                    shutil.copyfileobj(response, out)
            else:
                shutil.copyfile(Path(source.removeprefix("file://")).expanduser(), partial)
        except Exception as err:  # network and file errors come in many types: report them with the manual route
            partial.unlink(missing_ok=True)
            raise DatasetMissingError(describe(folder, f"could not get {source}: {type(err).__name__}: {err}")) from err
        partial.replace(archive)
    found = sha256_file(archive)
    if sha256 is not None and found != sha256.lower():
        raise DatasetMissingError(f"{archive}: SHA-256 mismatch (expected {sha256}, found {found}); delete it: it is corrupt or not the published archive")
    staging = folder.parent / f".{folder.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetMissingError(f"{archive}: not a readable .tgz archive ({type(err).__name__}: {err}); delete it and fetch again") from err
    # The archive holds PASCAL_MT/...; accept the layout at its top level too.
    entries = [p for p in staging.iterdir() if not p.name.startswith(".")]
    content = entries[0] if len(entries) == 1 and entries[0].is_dir() and not (staging / "JPEGImages").is_dir() else staging
    if not (content / "JPEGImages").is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetMissingError(describe(folder, f"{archive} holds no JPEGImages/ folder"))
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # an empty placeholder directory
    if folder.exists():
        shutil.rmtree(staging)
        raise DatasetMissingError(f"{folder} exists but lacks JPEGImages/; move it away so {archive} can be extracted there")
    content.rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return {"archive": str(archive), "source": source, "sha256": found, "verified": sha256 is not None}


@DATASETS.register("pascal_context")
class PascalContextKind:
    """PASCAL-Context (ASTMT's 5-task version): semantic, parts, saliency, normal, edge; see the module docstring."""

    problem = DenseProblem

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        _size(spec.get("image_size", list(OFFICIAL_SIZE)))
        check_augment(spec.get("augment"), "pascal_context")
        return pascal_context_tasks(spec.get("tasks"))

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (3, *_size(spec.get("image_size", list(OFFICIAL_SIZE))))

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        folder = _folder(root, spec.get("path"))
        tasks = _task_names(spec.get("tasks"))
        manifest: dict = {"folder": str(folder)}
        if not (folder / "JPEGImages").is_dir():
            source = spec.get("mirror") or (URL if spec.get("download", False) else None)
            manifest["archive"] = _fetch_archive(folder, None if source is None else str(source), spec.get("sha256"))
        manifest["counts"] = check_layout(folder, tasks, spec.get("check_counts", True))
        return manifest

    @staticmethod
    def build(
        root: Path,
        path: str | None = None,
        tasks: list[str] | None = None,
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
        names = _task_names(tasks)
        folder = _folder(root, path)
        counts = check_layout(folder, names, check_counts)
        x_train, y_train, train_ids = read_split(folder, "train", names, height, width, max_train)
        x_test, y_test, test_ids = read_split(folder, "val", names, height, width, max_test)
        train, val = hold_out(x_train, y_train, val_size, seed, "pascal_context")
        return {
            "train": train,
            "val": val,
            "test": (x_test, y_test),
            "tasks": names,
            "meta": {
                "kind": "pascal_context",
                "folder": str(folder),
                "image_shape": [3, height, width],
                "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD),
                "classes": {"semantic": list(VOC_CLASSES), "parts": list(PART_CLASSES)},
                "layout_counts": counts,
                "sizes": {"train": len(train[0]), "val": len(val[0]), "test": len(x_test)},
                "image_ids": {"train_list": train_ids, "test": test_ids},
                "seed": seed,
                "augment": check_augment(augment, "pascal_context"),
                "target_kinds": {name: TARGET_KINDS[name] for name in names},
                "reference": "PASCAL-Context multi-task (Maninis et al. 2019, ASTMT's PASCAL_MT); Mottaghi et al. 2014; Chen et al. 2014 (parts)",
            },
        }
