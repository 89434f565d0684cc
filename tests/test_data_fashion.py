"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (recompressed official files) via `mirror:`."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlpareto.data import sources
from mtlpareto.errors import DatasetMissingError
from test_data_multimnist import decode_idx, tiny_mnist_files, write_gz

DEBIAN_DIR = Path(sources.SYSTEM_PACKAGES["fashion_mnist"][1])


def _recompressed_mirror(directory: Path, files: dict[str, bytes]) -> None:
    """The files gzipped as Debian ships them: other header (mtime), so other .gz MD5s."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (directory / f"{name}.gz").write_bytes(gzip.compress(blob, mtime=1591347949))


def test_recompressed_gz_accepted_by_its_content_md5(tmp_path, monkeypatch):
    import torchvision

    files = tiny_mnist_files(seed=3)
    # torchvision's resources: the .gz MD5s of "upstream's" compression (mtime 0) ...
    resources = write_gz(tmp_path / "upstream", files)
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "resources", resources)
    # ... and the official content MD5s of the same IDX bytes.
    monkeypatch.setitem(sources.EXTRACTED_MD5, "fashion_mnist", {n: hashlib.md5(b).hexdigest() for n, b in files.items()})
    mirror = tmp_path / "debian"
    _recompressed_mirror(mirror, files)
    assert all(hashlib.md5((mirror / f).read_bytes()).hexdigest() != md5 for f, md5 in resources)

    root = tmp_path / "root"
    x, y = sources.load_source("fashion_mnist", root, train=True, mirror=str(mirror))
    assert np.array_equal(x.numpy(), decode_idx(files["train-images-idx3-ubyte"], True))
    assert np.array_equal(y.numpy(), decode_idx(files["train-labels-idx1-ubyte"], False))
    xt, yt = sources.load_source("fashion_mnist", root, train=False)  # already extracted: no mirror needed
    assert np.array_equal(xt.numpy(), decode_idx(files["t10k-images-idx3-ubyte"], True))
    assert not list((root / "FashionMNIST" / "raw").glob("*.partial"))


def test_recompressed_gz_with_other_content_is_refused(tmp_path, monkeypatch):
    import torchvision

    files = tiny_mnist_files(seed=4)
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "resources", write_gz(tmp_path / "upstream", files))
    monkeypatch.setitem(sources.EXTRACTED_MD5, "fashion_mnist", {n: hashlib.md5(b).hexdigest() for n, b in files.items()})
    tampered = dict(files)
    blob = bytearray(files["train-labels-idx1-ubyte"])
    blob[-1] ^= 1  # one label changed
    tampered["train-labels-idx1-ubyte"] = bytes(blob)
    mirror = tmp_path / "debian"
    _recompressed_mirror(mirror, tampered)
    with pytest.raises(DatasetMissingError, match=r"train-labels-idx1-ubyte\.gz: MD5 mismatch .*its content has MD5 .*delete it"):
        sources.load_source("fashion_mnist", tmp_path / "root", train=True, mirror=str(mirror))
    # a file that is not gzip at all is named as such
    _recompressed_mirror(mirror, files)
    (mirror / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetMissingError, match="not a readable gzip file"):
        sources.load_source("fashion_mnist", tmp_path / "root2", train=False, mirror=str(mirror))


def test_local_mirror_of_extracted_idx_files(tmp_path):
    files = tiny_mnist_files(seed=5)
    mirror = tmp_path / "idx"
    mirror.mkdir()
    for name, blob in files.items():
        (mirror / name).write_bytes(blob)
    x, y = sources.load_source("fashion_mnist", tmp_path / "root", train=False, mirror=str(mirror))
    assert np.array_equal(y.numpy(), decode_idx(files["t10k-labels-idx1-ubyte"], False))


def test_missing_debian_directory_names_the_package(tmp_path, monkeypatch):
    absent = tmp_path / "usr/share/datasets/fashion-mnist"
    monkeypatch.setitem(sources.SYSTEM_PACKAGES, "fashion_mnist", ("dataset-fashion-mnist", str(absent)))
    with pytest.raises(DatasetMissingError, match=r"does not exist.*apt-get install dataset-fashion-mnist"):
        sources.load_source("fashion_mnist", tmp_path / "root", train=True, mirror=str(absent))
    # without a mirror, the list of fixes names the package and its directory too
    with pytest.raises(DatasetMissingError, match=rf"apt-get install dataset-fashion-mnist`, then set `mirror: {absent}"):
        sources.load_source("fashion_mnist", tmp_path / "root", train=True)


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_fashion_mnist(tmp_path):
    # The official release: 60,000 train / 10,000 test images, 6,000 / 1,000 per class.
    x, y = sources.load_source("fashion_mnist", tmp_path, train=True, mirror=str(DEBIAN_DIR))
    assert x.shape == (60000, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 6000))
    xt, yt = sources.load_source("fashion_mnist", tmp_path, train=False)
    assert xt.shape == (10000, 28, 28)
    assert torch.equal(torch.bincount(yt, minlength=10), torch.full((10,), 1000))
    raw = sources.raw_folder("fashion_mnist", tmp_path)
    for name, md5 in sources.EXTRACTED_MD5["fashion_mnist"].items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5
