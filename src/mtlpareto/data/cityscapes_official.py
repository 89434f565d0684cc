"""Sener & Koltun's three Cityscapes tasks built from the official files (placed by hand).

Official layout (https://www.cityscapes-dataset.com, behind a login: no download here):

    <path>/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   RGB 2048x1024
    <path>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png     label ids 0..33
    <path>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png  id*1000+k on instances
    <path>/disparity/{train,val}/<city>/<city>_<seq>_<frame>_disparity.png        uint16, (p - 1) / 256 px, 0 invalid

2,975 train / 500 val frames.  Per frame, resized to ``image_size`` (Sener & Koltun: 256x512):
the image bilinearly; label and instance maps by nearest neighbour, then

* semantic: the 19 evaluation classes (trainIds; ``classes: 19``) or the 7 categories
  (``classes: 7``), other ids -1;
* instance: for each pixel of an individual instance (instanceIds >= 1000: person, rider, car,
  truck, bus, train, motorcycle, bicycle) the (dy, dx) to the centroid of that instance's
  pixels at the stored resolution; 250 elsewhere (crowd regions included);
* depth: the disparity in pixels of the stored resolution ((p - 1) / 256 * width / 2048,
  nearest neighbour), 0 where the official map is 0 (invalid).

The label table is the official one (cityscapesScripts' labels.py: id -> trainId, category).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mtlpareto.errors import DatasetMissingError
from mtlpareto.tasks.instance import IGNORE_VALUE as OFFSET_IGNORE

OFFICIAL_WIDTH = 2048
# label id -> (trainId or -1, category id 1..7 or 0 = void), ids 0..33.
_LABELS: tuple[tuple[int, int], ...] = (
    (-1, 0), (-1, 0), (-1, 0), (-1, 0), (-1, 0), (-1, 0), (-1, 0),  # unlabeled .. ground
    (0, 1), (1, 1), (-1, 1), (-1, 1),  # road, sidewalk, parking, rail track
    (2, 2), (3, 2), (4, 2), (-1, 2), (-1, 2), (-1, 2),  # building, wall, fence, guard rail, bridge, tunnel
    (5, 3), (-1, 3), (6, 3), (7, 3),  # pole, polegroup, traffic light, traffic sign
    (8, 4), (9, 4), (10, 5),  # vegetation, terrain, sky
    (11, 6), (12, 6),  # person, rider
    (13, 7), (14, 7), (15, 7), (-1, 7), (-1, 7), (16, 7), (17, 7), (18, 7),  # car .. bicycle
)
TRAIN_ID = np.array([t for t, _ in _LABELS], dtype=np.int8)
CATEGORY = np.array([c - 1 for _, c in _LABELS], dtype=np.int8)  # 0..6, void -> -1
SUFFIXES = {"image": ("leftImg8bit", "_leftImg8bit.png"), "label": ("gtFine", "_gtFine_labelIds.png"), "instance": ("gtFine", "_gtFine_instanceIds.png"), "disparity": ("disparity", "_disparity.png")}


def describe(path: Path, reason: str) -> str:
    lines = "\n".join(f"    {top}/{{train,val}}/<city>/<city>_<seq>_<frame>{suffix}" for top, suffix in SUFFIXES.values())
    return (
        f"dataset cityscapes (source: official): {reason}\n  expected under {path}:\n{lines}\n"
        "  (leftImg8bit_trainvaltest.zip, gtFine_trainvaltest.zip and disparity_trainvaltest.zip from "
        "https://www.cityscapes-dataset.com/downloads/, extracted into that directory; 2975 train / 500 val frames)"
    )


def frames(path: Path, split: str) -> list[tuple[str, str]]:
    """(city, frame stem) of every image of a split, sorted; each must have its three annotation files."""
    image_dir = Path(path) / "leftImg8bit" / split
    if not image_dir.is_dir():
        raise DatasetMissingError(describe(path, f"{image_dir} is missing"))
    found = sorted((p.parent.name, p.name[: -len(SUFFIXES["image"][1])]) for p in image_dir.glob(f"*/*{SUFFIXES['image'][1]}"))
    if not found:
        raise DatasetMissingError(describe(path, f"{image_dir} holds no <city>/*_leftImg8bit.png"))
    for city, stem in found:
        for key in ("label", "instance", "disparity"):
            top, suffix = SUFFIXES[key]
            file = Path(path) / top / split / city / f"{stem}{suffix}"
            if not file.is_file():
                raise DatasetMissingError(describe(path, f"{file} is missing (the {key} of {stem})"))
    return found


def _read(file: Path, mode: str | None = None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as image:
            return np.asarray(image.convert(mode) if mode else image)
    except Exception as err:  # not a PNG, truncated: name the file
        raise DatasetMissingError(f"{file}: unreadable image ({type(err).__name__}: {err})") from err


def _resize(array: np.ndarray, height: int, width: int, bilinear: bool) -> np.ndarray:
    from PIL import Image

    if array.shape[:2] == (height, width):
        return array
    if bilinear:
        return np.asarray(Image.fromarray(array).resize((width, height), Image.BILINEAR))
    # Nearest neighbour by index (exact for integer maps of any dtype): the pixel whose centre is nearest.
    rows = np.minimum(((np.arange(height) + 0.5) * array.shape[0] / height).astype(int), array.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * array.shape[1] / width).astype(int), array.shape[1] - 1)
    return array[rows][:, cols]


def offsets_to_centroids(instance_ids: np.ndarray) -> np.ndarray:
    """[2, H, W] float32: (dy, dx) to the centroid of each individual instance (ids >= 1000); 250 elsewhere."""
    h, w = instance_ids.shape
    out = np.full((2, h, w), OFFSET_IGNORE, dtype=np.float32)
    rows, cols = np.mgrid[0:h, 0:w]
    for k in np.unique(instance_ids[instance_ids >= 1000]):
        mine = instance_ids == k
        out[0][mine] = rows[mine].mean() - rows[mine]
        out[1][mine] = cols[mine].mean() - cols[mine]
    return out


def read_official_split(path: Path, split: str, height: int, width: int, classes: int, limit: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[str]]:
    """(uint8 images [N, 3, H, W], {"semantic", "depth", "instance"}, frame names) of an official split."""
    names = frames(path, split)[:limit]
    n = len(names)
    images = torch.empty(n, 3, height, width, dtype=torch.uint8)
    semantic = torch.empty(n, height, width, dtype=torch.int8)
    depth = torch.empty(n, 1, height, width, dtype=torch.float16)
    instance = torch.empty(n, 2, height, width, dtype=torch.float16)
    table = TRAIN_ID if classes == 19 else CATEGORY
    for i, (city, stem) in enumerate(names):
        files = {key: Path(path) / top / split / city / f"{stem}{suffix}" for key, (top, suffix) in SUFFIXES.items()}
        image = _read(files["image"], "RGB")
        label_ids = _read(files["label"])
        ids = _read(files["instance"]).astype(np.int64)
        disparity = _read(files["disparity"]).astype(np.float64)
        shape = image.shape[:2]
        for key, array in (("label", label_ids), ("instance", ids), ("disparity", disparity)):
            if array.shape[:2] != shape or array.ndim != 2:
                raise DatasetMissingError(f"{files[key]}: expected a single-channel map of {shape[1]}x{shape[0]} like its image, got shape {array.shape}")
        if label_ids.max() >= len(_LABELS):
            raise DatasetMissingError(f"{files['label']}: label ids must be 0..{len(_LABELS) - 1} (the official labelIds), found {label_ids.max()}")
        images[i] = torch.from_numpy(np.ascontiguousarray(_resize(image, height, width, True).transpose(2, 0, 1)))
        semantic[i] = torch.from_numpy(table[_resize(label_ids, height, width, False)])
        instance[i] = torch.from_numpy(offsets_to_centroids(_resize(ids, height, width, False)))
        small = _resize(disparity, height, width, False)
        depth[i, 0] = torch.from_numpy(np.where(small > 0, (small - 1.0) / 256.0 * width / shape[1], 0.0))
    return images, {"semantic": semantic, "depth": depth, "instance": instance}, [f"{city}/{stem}" for city, stem in names]
