"""The dense-prediction community's `.npy` layout: read, validate, write; train-time augmentation.

Layout (MTAN's preprocessed NYUv2 and Cityscapes, read as-is by LibMTL, Nash-MTL, FAMO):

    <root>/{train,val}/<folder>/<i>.npy      i = 0 .. n-1, the same n in every folder of a split

with, per sample (H x W the dataset's resolution):

    image/       H x W x 3   float in [0, 1]  (uint8 0..255 accepted too)
    label/       H x W       integer-valued classes 0..C-1, -1 unlabelled   (Cityscapes: label_7/ or label_19/)
    depth/       H x W x 1   float >= 0; NYUv2: metres; Cityscapes: inverse depth (disparity); 0 = invalid
    normal/      H x W x 3   float in [-1, 1], unit vectors, all-zero = invalid   (NYUv2 only)
    instance/    H x W x 2   float (dy, dx) to the instance centroid in pixels, 250 off instances
                             (this project's extension for Sener & Koltun's Cityscapes task; written by `scenes`)

The community calls its held-out split `val` and reports on it; this project's `test` split is
that folder, and its `val` split is a seeded random part of `train` (`val_size`), so model
selection never sees the reported split.

Processed tensors (what `read_layout` returns and `data/store` saves), N samples:

    images   uint8   [N, 3, H, W]     (float files are rounded to 1/255: 8-bit sources, half the size)
    semantic int8    [N, H, W]        (-1 unlabelled)
    depth    float16 [N, 1, H, W]     (step 2^-10 relative: ~4 mm at 4 m)
    normal   float16 [N, 3, H, W]
    instance float16 [N, 2, H, W]     (250 exact in float16)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from mtlpareto.data.problems import DatasetProblem, Forward
from mtlpareto.data.store import prepare_inputs
from mtlpareto.errors import ConfigError, DatasetMissingError
from mtlpareto.tasks import index_targets, targets_to
from mtlpareto.tasks.instance import IGNORE_VALUE as OFFSET_IGNORE

LAYOUT_SPLITS = ("train", "val")
# Target kinds: what a folder holds, which decides its checks, dtype and augmentation rule.
TARGET_KINDS = ("label", "depth", "disparity", "normal", "offset")
_CHANNELS = {"depth": 1, "disparity": 1, "normal": 3, "offset": 2}
_DTYPES = {"label": torch.int8, "depth": torch.float16, "disparity": torch.float16, "normal": torch.float16, "offset": torch.float16}


def layout_description(root: Path, folders: dict[str, str], height: int, width: int) -> str:
    """The expected layout, for error messages."""
    lines = [f"  expected layout under {root}:", f"    {{train,val}}/image/<i>.npy   {height} x {width} x 3, float in [0, 1]"]
    shapes = {"label": f"{height} x {width}, classes 0..C-1 and -1", "depth": f"{height} x {width} x 1, >= 0 (0 = invalid)", "disparity": f"{height} x {width} x 1, >= 0 (0 = invalid)", "normal": f"{height} x {width} x 3, unit or all-zero", "offset": f"{height} x {width} x 2, pixels, {OFFSET_IGNORE:g} off instances"}
    for folder, kind in folders.items():
        lines.append(f"    {{train,val}}/{folder}/<i>.npy   {shapes[kind]}")
    lines.append("    with i = 0 .. n-1 and the same n in every folder of a split")
    return "\n".join(lines)


def _indices(folder: Path) -> list[int]:
    names = [p.name for p in folder.iterdir() if p.suffix == ".npy"]
    bad = [n for n in names if not re.fullmatch(r"\d+\.npy", n)]
    if bad:
        raise DatasetMissingError(f"{folder}: file names must be <i>.npy with an integer i, found {bad[:3]}")
    return sorted(int(n[:-4]) for n in names)


def split_size(root: Path, split: str, folders: list[str], describe: str) -> int:
    """Number of samples of `split`, after checking that every folder holds 0.npy .. n-1.npy."""
    counts = {}
    for folder in ["image", *folders]:
        path = Path(root) / split / folder
        if not path.is_dir():
            raise DatasetMissingError(f"{path} is missing\n{describe}")
        indices = _indices(path)
        if indices != list(range(len(indices))):
            missing = sorted(set(range(max(indices, default=-1) + 1)) - set(indices))
            raise DatasetMissingError(f"{path}: files must be numbered 0 .. n-1 without gaps; missing {', '.join(f'{i}.npy' for i in missing[:5])}\n{describe}")
        counts[folder] = len(indices)
    if len(set(counts.values())) != 1:
        raise DatasetMissingError(f"{Path(root) / split}: folders hold different numbers of samples {counts}\n{describe}")
    n = counts["image"]
    if n == 0:
        raise DatasetMissingError(f"{Path(root) / split}/image holds no .npy files\n{describe}")
    return n


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # truncated or not an .npy file: name it
        raise DatasetMissingError(f"{path}: unreadable .npy file ({type(err).__name__}: {err})") from err


def _image(path: Path, height: int, width: int) -> np.ndarray:
    a = _load(path)
    if a.shape != (height, width, 3):
        raise DatasetMissingError(f"{path}: expected an image of shape ({height}, {width}, 3), got {a.shape}")
    if a.dtype == np.uint8:
        return a
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all() or a.min() < -1e-3 or a.max() > 1 + 1e-3:
        raise DatasetMissingError(f"{path}: expected float values in [0, 1] (or uint8), got dtype {a.dtype}, range {a.min()}..{a.max()}")
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def _target(path: Path, kind: str, height: int, width: int, n_classes: int | None) -> np.ndarray:
    a = _load(path)
    if kind == "label":
        if a.shape != (height, width):
            raise DatasetMissingError(f"{path}: expected a label map of shape ({height}, {width}), got {a.shape}")
        if not np.isfinite(a).all() or (a != np.round(a)).any() or a.min() < -1 or a.max() > n_classes - 1:
            raise DatasetMissingError(f"{path}: expected integer classes 0..{n_classes - 1} and -1 (unlabelled), got range {a.min()}..{a.max()}")
        return a.astype(np.int8)
    channels = _CHANNELS[kind]
    if a.shape == (height, width) and channels == 1:
        a = a[..., None]  # depth saved without its channel axis: same values
    if a.shape != (height, width, channels):
        raise DatasetMissingError(f"{path}: expected shape ({height}, {width}, {channels}) for {kind}, got {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer) or not np.isfinite(a).all():
        raise DatasetMissingError(f"{path}: expected finite numbers for {kind}, got dtype {a.dtype}")
    if kind in ("depth", "disparity") and a.min() < 0:
        raise DatasetMissingError(f"{path}: {kind} must be >= 0 (0 = invalid), found {a.min()}")
    if kind == "normal" and np.abs(a).max() > 1.01:
        raise DatasetMissingError(f"{path}: normals must lie in [-1, 1], found {np.abs(a).max()}")
    return np.moveaxis(a, -1, 0)


def read_split(root: Path, split: str, folders: dict[str, str], names: dict[str, str], height: int, width: int, n_classes: int | None, describe: str, limit: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One layout split as (uint8 images [N, 3, H, W], {task name: target tensor}); see the module docstring.

    `folders` maps folder -> target kind, `names` folder -> task name; `limit` reads the first samples only.
    """
    n = split_size(root, split, list(folders), describe)
    if limit is not None:
        n = min(n, limit)
    base = Path(root) / split
    images = torch.empty(n, 3, height, width, dtype=torch.uint8)
    targets = {}
    for folder, kind in folders.items():
        shape = (n, height, width) if kind == "label" else (n, _CHANNELS[kind], height, width)
        targets[names[folder]] = torch.empty(shape, dtype=_DTYPES[kind])
    for i in range(n):
        images[i] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(_image(base / "image" / f"{i}.npy", height, width), -1, 0)))
        for folder, kind in folders.items():
            value = _target(base / folder / f"{i}.npy", kind, height, width, n_classes)
            targets[names[folder]][i] = torch.from_numpy(np.ascontiguousarray(value)).to(_DTYPES[kind])
    return images, targets


def write_split(root: Path, split: str, images: np.ndarray, targets: dict[str, np.ndarray], folders: dict[str, str]) -> None:
    """Write samples in the layout: images uint8 [N, H, W, 3] saved as float32 in [0, 1] (the community's);
    `targets[folder]` [N, H, W] (labels) or [N, H, W, C], saved as float32 (labels as their integer values)."""
    for folder in ["image", *folders]:
        (Path(root) / split / folder).mkdir(parents=True, exist_ok=True)
    for i in range(len(images)):
        np.save(Path(root) / split / "image" / f"{i}.npy", images[i].astype(np.float32) / 255.0)
        for folder in folders:
            np.save(Path(root) / split / folder / f"{i}.npy", targets[folder][i].astype(np.float32))


def hold_out(images: torch.Tensor, targets: dict[str, torch.Tensor], val_size: int, seed: int, where: str) -> tuple[tuple, tuple]:
    """(train, val): a seeded random `val_size` samples of a split become the validation split."""
    n = images.shape[0]
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < n:
        raise ConfigError(f"{where}: val_size must be an integer in [0, {n}) (the train folder holds {n} samples), got {val_size!r}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values
    return (images[train_idx], index_targets(targets, train_idx)), (images[val_idx], index_targets(targets, val_idx))


# --------------------------------------------------------------------------- augmentation


def check_augment(augment: Any, where: str) -> dict | None:
    """`augment:` of a dense dataset: false/null (none), true (scales 1, 1.2, 1.5 and flips) or {scales, flip}."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return {"scales": [1.0, 1.2, 1.5], "flip": True}
    if not isinstance(augment, dict) or set(augment) - {"scales", "flip"}:
        raise ConfigError(f"{where}.augment: expected true, false or {{scales: [1.0, 1.2, 1.5], flip: true}}, got {augment!r}")
    scales = augment.get("scales", [1.0, 1.2, 1.5])
    if not isinstance(scales, list) or not scales or any(isinstance(s, bool) or not isinstance(s, (int, float)) or s < 1 for s in scales):
        raise ConfigError(f"{where}.augment.scales: expected a non-empty list of numbers >= 1, got {scales!r}")
    flip = augment.get("flip", True)
    if not isinstance(flip, bool):
        raise ConfigError(f"{where}.augment.flip: expected true or false, got {flip!r}")
    return {"scales": [float(s) for s in scales], "flip": flip}


def augment_sample(image: torch.Tensor, targets: dict[str, torch.Tensor], kinds: dict[str, str], scale: float, top: int, left: int, flip: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Crop H/scale x W/scale at (top, left), resize back to H x W, optionally mirror; one sample.

    The crop magnifies by `scale`, as if the camera were `scale` times nearer: depth is divided by
    it, disparity and pixel offsets multiplied.  Images are resized bilinearly; labels, depth,
    normals and offsets by nearest neighbour, so no class, invalid-pixel mark or unit normal is
    blended (MTAN's community code resizes normals bilinearly; nearest keeps them unit and their
    zeros invalid).  A mirror negates the normals' x and the offsets' dx.
    """
    _, height, width = image.shape
    h, w = int(height / scale), int(width / scale)

    def crop(t: torch.Tensor, mode: str) -> torch.Tensor:
        part = t[..., top : top + h, left : left + w]
        if (h, w) == (height, width):
            return part
        batch = part.unsqueeze(0) if part.dim() == 3 else part[None, None]
        kwargs = {"align_corners": True} if mode == "bilinear" else {}
        out = F.interpolate(batch.float(), size=(height, width), mode=mode, **kwargs)
        return (out[0] if part.dim() == 3 else out[0, 0]).to(t.dtype)

    image = crop(image, "bilinear")
    out = {}
    for name, target in targets.items():
        kind = kinds[name]
        t = crop(target, "nearest")
        if kind == "depth":
            t = t / scale
        elif kind == "disparity":
            t = t * scale
        elif kind == "offset":
            t = torch.where(t == OFFSET_IGNORE, t, t * scale)
        out[name] = t
    if flip:
        image = image.flip(-1)
        for name, t in out.items():
            t = t.flip(-1)
            if kinds[name] == "normal":
                t = t.clone()
                t[0] = -t[0]
            elif kinds[name] == "offset":
                t = t.clone()
                t[1] = torch.where(t[1] == OFFSET_IGNORE, t[1], -t[1])
            out[name] = t
    return image, out


class DenseProblem(DatasetProblem):
    """A dense dataset: training batches augmented per sample when its meta asks for it, and
    evaluation in batches of the training size (DatasetProblem's 1,024 images at once would
    hold gigabytes of full-resolution feature maps).

    The processed dataset stays unaugmented (evaluation reads it as is); `meta["augment"]`
    ({scales, flip} or None) and `meta["target_kinds"]` ({task: kind}) say what to do.  The
    draws come from a generator seeded, once per epoch, from the loop's loader generator, so a
    run is a deterministic function of its seed and resumes exactly from an epoch checkpoint.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augment = self.meta.get("augment")
        self.kinds = self.meta.get("target_kinds", {})

    def score(self, forward: Forward, split: str, batch_size: int | None = None) -> dict[str, dict[str, float | None]]:
        return super().score(forward, split, batch_size or self.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, Any]]:
        if not self.augment:
            yield from super().batches(generator)
            return
        order = torch.randperm(self.x.shape[0], generator=generator)
        draws = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        scales = self.augment["scales"]
        for step in range(self.steps_per_epoch):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            x = prepare_inputs(self.x[idx], self.meta)
            y = index_targets(self.y, idx)
            images, targets = [], {name: [] for name in y}
            for k in range(len(idx)):
                scale = scales[int(torch.randint(0, len(scales), (1,), generator=draws))]
                height, width = x.shape[-2:]
                top = int(torch.randint(0, height - int(height / scale) + 1, (1,), generator=draws))
                left = int(torch.randint(0, width - int(width / scale) + 1, (1,), generator=draws))
                flip = bool(self.augment["flip"]) and bool(torch.rand(1, generator=draws) < 0.5)
                image, sample = augment_sample(x[k], {n: t[k] for n, t in y.items()}, self.kinds, scale, top, left, flip)
                images.append(image)
                for name, t in sample.items():
                    targets[name].append(t)
            batch_x = torch.stack(images).to(self.device).contiguous(memory_format=self.memory_format)
            yield batch_x, targets_to({name: torch.stack(ts) for name, ts in targets.items()}, self.device)
