"""CelebA as 40 binary tasks (Sener & Koltun 2018, Sec. 4.2 and App. C.2; Liu et al. 2015).

Every attribute of ``list_attr_celeba.txt`` is one task: a 2-class classification (the paper's
2-way softmax + cross-entropy per attribute), scored by accuracy; the tables report the error
``100 - accuracy``.  Splits are the official ones of ``list_eval_partition.txt`` (train 162,770
/ valid 19,867 / test 19,962), read by torchvision's own ``CelebA`` class (``target_type="attr"``,
which maps the file's -1/1 to 0/1).  Images (178x218 aligned crops) are resized to
``image_size`` x ``image_size`` (64 in App. C.2; a plain bilinear resize without keeping the
aspect ratio, as the official loader's ``imresize(img, (64, 64))``) and stored as uint8.

On-disk layout (torchvision's): ``<root>/celeba/`` holding

    img_align_celeba/                 the 202,599 JPGs (or img_align_celeba.zip, extracted on fetch)
    list_attr_celeba.txt              count line, header of 40 names, then "000001.jpg -1  1 ..."
    list_eval_partition.txt           "000001.jpg 0" (0 train, 1 valid, 2 test)
    identity_CelebA.txt               "000001.jpg 2880"
    list_bbox_celeba.txt              count line, header, then "000001.jpg x y w h"
    list_landmarks_align_celeba.txt   count line, header, then "000001.jpg" + 10 ints

torchvision parses all five text files on construction, so all must be present even though only
the attributes and the partition are used.  ``root`` is the pipeline's ``data/raw``, so files go
to ``data/raw/celeba/``.

Integrity (torchvision 0.29): ``CelebA._check_integrity`` MD5-checks the five text files and only
tests that the ``img_align_celeba/`` folder exists; images are never hashed (by torchvision or
here; a missing or unreadable listed image fails the build with its name).  With
``check_md5: false`` a subclass replaces that check by an existence check of the same files - the
one documented bypass, meant for the tests' tiny files (and for annotation files re-saved with
other line endings); everything else (parsing, split selection, -1/1 -> 0/1) stays torchvision's.

Download: torchvision fetches from Google Drive with ``gdown``; that is often rate-limited and is
unreachable offline, so ``download: true`` tries it and otherwise fails with the manual-placement
instructions.

Memory: the build streams images in batches into preallocated uint8 tensors and never holds a
float copy of a split: 202,599 x 3 x 64 x 64 bytes = 2.49 GB (2.32 GiB) for the full dataset at
64x64 (train alone 2.0 GB), plus a transient ~1 GB while torchvision parses the text files, so
about 3.5 GB peak; training and evaluation load the same 2.49 GB file.  Normalisation statistics
(per-channel mean/std of the train split on the [0, 1] scale) are accumulated per batch in float64.
Decoding + resizing costs ~0.9 ms per image on one CPU core (~3 min for all 202,599); ``workers``
spreads it over DataLoader processes without changing the result (the order is kept).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mtlpareto.data import DATASETS
from mtlpareto.tasks import Task
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.errors import ConfigError, DatasetMissingError

# The 40 attributes in file order (header of list_attr_celeba.txt).  Needed without the data:
# validating params.yaml counts the tasks.
ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip
BASE_FOLDER = "celeba"  # torchvision's CelebA.base_folder
IMAGE_DIR = "img_align_celeba"
IMAGE_ZIP = "img_align_celeba.zip"
# Our split names -> torchvision's.
SPLITS = {"train": "train", "val": "valid", "test": "test"}
OFFICIAL_SIZES = {"train": 162_770, "val": 19_867, "test": 19_962}
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
_BATCH = 256  # images decoded per DataLoader batch: bounds the transient per-batch copies


def celeba_folder(root: Path) -> Path:
    """``<root>/celeba``: where torchvision (and manual placement) keeps the files."""
    return Path(root) / BASE_FOLDER


def expected_files() -> list[tuple[str, str]]:
    """``(filename, md5)`` of the annotation files torchvision verifies, plus the image zip."""
    from torchvision.datasets import CelebA

    return [(filename, md5) for _, md5, filename in CelebA.file_list]


def attribute_subset(attributes: list[str] | None) -> list[str]:
    """The chosen attributes in file order (None = all 40); ConfigError on unknown names."""
    if attributes is None:
        return list(ATTRIBUTES)
    if isinstance(attributes, str) or not isinstance(attributes, (list, tuple)) or not attributes:
        raise ConfigError(f"attributes: expected a non-empty list of attribute names or null, got {attributes!r}")
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ConfigError(f"attributes: unknown CelebA attribute(s) {unknown}; valid: {', '.join(ATTRIBUTES)}")
    if len(set(attributes)) != len(attributes):
        raise ConfigError(f"attributes: duplicate names in {list(attributes)}")
    # File order, whatever the listed order: task indices then match the official column order.
    return [a for a in ATTRIBUTES if a in set(attributes)]


def _check_options(image_size: Any, max_train: Any, max_val: Any, max_test: Any, workers: Any) -> None:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or not 8 <= image_size <= 512:
        raise ConfigError(f"image_size: expected an integer in [8, 512], got {image_size!r}")
    for key, value in (("max_train", max_train), ("max_val", max_val), ("max_test", max_test)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"{key}: expected a non-negative integer or null (all), got {value!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ConfigError(f"workers: expected a non-negative integer, got {workers!r}")


# --------------------------------------------------------------------------- fetch


def _missing_message(root: Path, reason: str) -> str:
    folder = celeba_folder(root)
    files = "\n".join(f"    {name}  (md5 {md5})" for name, md5 in expected_files() if name != IMAGE_ZIP)
    return (
        f"dataset 'celeba' (torchvision CelebA): {reason}\n"
        f"  expected directory: {folder}\n"
        f"  expected contents:\n"
        f"    {IMAGE_DIR}/  (the 202,599 aligned JPGs 000001.jpg ... 202599.jpg; or {IMAGE_ZIP}, "
        f"md5 {dict(expected_files())[IMAGE_ZIP]}, extracted on fetch)\n{files}\n"
        "  source: https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive folders "
        "'Img' and 'Anno', 'Eval'); torchvision downloads them from Google Drive with gdown\n"
        "  fix one of:\n"
        "    - set `download: true` for this dataset in params.yaml (needs network, `pip install gdown`, "
        "and Google Drive quota);\n"
        f"    - copy the files above into {folder}/ by hand (same names, torchvision's layout)."
    )


def missing_files(root: Path, check_md5: bool = True) -> list[str]:
    """What torchvision's integrity check would reject, as readable reasons (empty = present)."""
    from torchvision.datasets.utils import check_integrity

    folder = celeba_folder(root)
    problems = []
    for name, md5 in expected_files():
        if name == IMAGE_ZIP:
            continue  # torchvision allows the archive to be deleted once extracted
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing")
        elif check_md5 and not check_integrity(str(path), md5):
            problems.append(f"{name} fails its MD5 check (expected {md5}; corrupt, truncated or not the official file)")
    if not (folder / IMAGE_DIR).is_dir():
        problems.append(f"{IMAGE_DIR}/ missing")
    return problems


def _extract_placed_zip(root: Path, check_md5: bool) -> None:
    """A manually placed img_align_celeba.zip is verified (MD5) and extracted, as torchvision would."""
    from torchvision.datasets.utils import calculate_md5, check_integrity, extract_archive

    folder = celeba_folder(root)
    archive = folder / IMAGE_ZIP
    if (folder / IMAGE_DIR).is_dir() or not archive.is_file():
        return
    md5 = dict(expected_files())[IMAGE_ZIP]
    if check_md5 and not check_integrity(str(archive), md5):
        raise DatasetMissingError(
            f"{archive}: MD5 mismatch (expected {md5}, found {calculate_md5(str(archive))}); "
            "the archive is corrupt or truncated - delete it and place/download it again"
        )
    extract_archive(str(archive), str(folder))


def fetch_celeba(root: Path, download: bool = False, check_md5: bool = True) -> dict:
    """Make ``<root>/celeba`` complete (placed files, zip extraction, torchvision download); manifest."""
    root = Path(root)
    _extract_placed_zip(root, check_md5)
    problems = missing_files(root, check_md5)
    if problems and download:
        from torchvision.datasets import CelebA

        try:
            # Downloads (gdown), MD5-checks and extracts whatever torchvision finds missing.
            CelebA(str(root), split="all", target_type="attr", download=True)
        except Exception as err:  # noqa: BLE001 - gdown/HTTP/quota errors come in many types
            raise DatasetMissingError(
                _missing_message(root, f"{'; '.join(problems)}; torchvision's download failed: {str(err).strip()}")
            ) from err
        problems = missing_files(root, check_md5)
    if problems:
        suffix = "" if download else " and download is off"
        raise DatasetMissingError(_missing_message(root, "; ".join(problems) + suffix))
    folder = celeba_folder(root)
    return {
        "root": str(folder),
        "files": {name: md5 for name, md5 in expected_files() if name != IMAGE_ZIP},
        # Counted, not hashed: hashing 200k JPGs costs minutes and torchvision does not either.
        "n_images": sum(1 for entry in (folder / IMAGE_DIR).iterdir() if entry.suffix.lower() == ".jpg"),
        "verified": "torchvision md5 of the annotation files" if check_md5 else "existence only (check_md5: false)",
    }


# --------------------------------------------------------------------------- build


@functools.cache
def _unverified_class() -> type:
    from torchvision.datasets import CelebA

    class CelebAUnverified(CelebA):
        """Same parsing and splits; `_check_integrity` without MD5s (tiny test files, re-saved files)."""

        def _check_integrity(self) -> bool:
            return not missing_files(Path(self.root), check_md5=False)

    # A module-level name (served lazily by __getattr__ below) so DataLoader workers started with
    # spawn/forkserver can unpickle the dataset; defined lazily because importing torchvision is slow.
    CelebAUnverified.__module__ = __name__
    CelebAUnverified.__qualname__ = "CelebAUnverified"
    return CelebAUnverified


def __getattr__(name: str) -> Any:
    if name == "CelebAUnverified":
        return _unverified_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dataset_class(check_md5: bool = True) -> type:
    """torchvision's CelebA, or (check_md5=False) a subclass whose integrity check tests existence only."""
    from torchvision.datasets import CelebA

    return CelebA if check_md5 else _unverified_class()


class ResizeToUint8:
    """PIL image -> uint8 tensor [3, size, size] (bilinear, aspect not kept; picklable for workers)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Any) -> Tensor:
        from PIL import Image

        image = image.convert("RGB")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _subsample(n: int, max_n: int | None, seed: int, split: str) -> Tensor:
    """Sorted indices of a seeded random subset (all when max_n is None or >= n)."""
    if max_n is None or max_n >= n:
        return torch.arange(n)
    # One stream per split (SeedSequence of [seed, split]): max_val never changes the train subset.
    stream = int(np.random.SeedSequence([int(seed), _SPLIT_STREAM[split]]).generate_state(1)[0])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(stream))
    return perm[:max_n].sort().values


def _load_split(
    root: Path,
    split: str,
    image_size: int,
    max_n: int | None,
    seed: int,
    columns: list[int],
    check_md5: bool,
    workers: int,
    stats: dict | None,
) -> tuple[Tensor, Tensor, list[str], int]:
    """(uint8 [n, 3, S, S], int64 [n, T] in {0, 1}, file names, official split size)."""
    cls = dataset_class(check_md5)
    try:
        ds = cls(str(root), split=SPLITS[split], target_type="attr", transform=ResizeToUint8(image_size))
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        reason = "; ".join(missing_files(root, check_md5)) or str(err)
        raise DatasetMissingError(_missing_message(root, reason)) from err
    names = [a for a in ds.attr_names if a]  # the real header line ends in a space: one empty name
    if tuple(names) != ATTRIBUTES or ds.attr.shape[1:] != (len(ATTRIBUTES),):
        raise DatasetMissingError(
            f"{celeba_folder(root) / 'list_attr_celeba.txt'}: expected the 40 official attribute columns "
            f"{ATTRIBUTES[:3]}...; found header {names[:3]}... and {tuple(ds.attr.shape)} values"
        )
    attr = ds.attr
    if len(attr) and not bool(((attr == 0) | (attr == 1)).all()):
        raise DatasetMissingError(f"{celeba_folder(root) / 'list_attr_celeba.txt'}: attribute values other than -1/1")
    indices = _subsample(len(ds), max_n, seed, split)
    n = len(indices)
    x = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    y = attr[indices][:, columns].to(torch.int64)
    files = [ds.filename[i] for i in indices.tolist()]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, indices.tolist()), batch_size=_BATCH, shuffle=False, num_workers=workers
    )
    start = 0
    try:
        for images, _ in loader:  # in order: shuffle=False keeps the subset order with any workers
            x[start : start + len(images)] = images
            if stats is not None:
                flat = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(3, -1)
                stats["sum"] += flat.sum(dim=1)
                stats["sq"] += flat.square().sum(dim=1)
                stats["count"] += flat.shape[1]
            start += len(images)
    except (OSError, ValueError) as err:  # a listed JPG missing or unreadable
        raise DatasetMissingError(
            f"dataset 'celeba': cannot read an image of the {split} split under "
            f"{celeba_folder(root) / IMAGE_DIR}: {err}; re-place or re-extract {IMAGE_DIR}/"
        ) from err
    return x, y, files, len(ds)


def build_celeba(
    root: Path,
    image_size: int = 64,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
    attributes: list[str] | None = None,
    seed: int = 0,
    check_md5: bool = True,
    workers: int = 0,
    download: bool = False,
) -> dict:
    """{"train"|"val"|"test": (uint8 [n, 3, S, S], int64 [n, T]), "tasks": names, "meta": {...}}.

    `download` is fetch's concern; it is accepted so params.yaml's dataset block is one set of options.
    """
    _check_options(image_size, max_train, max_val, max_test, workers)
    names = attribute_subset(attributes)
    columns = [ATTRIBUTES.index(a) for a in names]
    root = Path(root)
    problems = missing_files(root, check_md5)
    if problems:
        raise DatasetMissingError(_missing_message(root, "; ".join(problems) + " (run `mtlpareto fetch` first)"))
    stats = {"sum": torch.zeros(3, dtype=torch.float64), "sq": torch.zeros(3, dtype=torch.float64), "count": 0}
    out: dict[str, tuple[Tensor, Tensor]] = {}
    files: dict[str, list[str]] = {}
    official: dict[str, int] = {}
    limits = {"train": max_train, "val": max_val, "test": max_test}
    for split in ("train", "val", "test"):
        x, y, files[split], official[split] = _load_split(
            root, split, image_size, limits[split], seed, columns, check_md5, workers, stats if split == "train" else None
        )
        out[split] = (x, y)
    if stats["count"]:
        mean = stats["sum"] / stats["count"]
        std = (stats["sq"] / stats["count"] - mean.square()).clamp_min(1e-12).sqrt()
        mean_list, std_list = [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
    else:
        mean_list, std_list = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    meta = {
        "kind": "celeba",
        "image_size": image_size,
        "image_shape": [3, image_size, image_size],
        "attributes": names,
        "n_classes": [2] * len(names),
        "seed": seed,
        "sizes": {split: len(out[split][0]) for split in out},
        "split_sizes": official,  # rows of each split in list_eval_partition.txt (before max_*)
        "files": files,  # which images each split holds, in order
        # Train-split per-channel statistics on the [0, 1] scale (prepare_inputs applies them).
        "mean": mean_list,
        "std": std_list,
        "reference": "Sener & Koltun 2018 (Sec. 4.2, App. C.2); Liu et al. 2015 (CelebA)",
    }
    return {"train": out["train"], "val": out["val"], "test": out["test"], "tasks": names, "meta": meta}


@DATASETS.register("celeba")
class CelebAKind:
    """CelebA multi-label classification: one binary task per attribute (40 by default)."""

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        # Called when params.yaml is validated: check the option values here too, so a bad
        # image_size fails at `mtlpareto validate`, not hours later in build-data.
        _check_options(
            spec["image_size"], spec["max_train"], spec["max_val"], spec["max_test"], spec["workers"]
        )
        return [ClassificationTask(name, 2) for name in attribute_subset(spec["attributes"])]

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        size = spec["image_size"]
        return (3, size, size)

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        return fetch_celeba(Path(root), download=bool(spec["download"]), check_md5=bool(spec["check_md5"]))

    build = staticmethod(build_celeba)
