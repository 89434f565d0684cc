"""The cityscapes kind reads tiny files in MTAN's real 128x256 layout (7 or 19 classes, inverse
depth, optional instance offsets) and rejects malformed ones clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mtlpareto.data.cityscapes import CityscapesKind
from mtlpareto.data.dense_layout import augment_sample
from mtlpareto.errors import ConfigError, DatasetMissingError

H, W = 8, 16


def write_cityscapes(root: Path, n_train: int = 3, n_val: int = 2, instance: bool = False) -> dict:
    rng = np.random.default_rng(0)
    truth = {}
    for split, n in (("train", n_train), ("val", n_val)):
        folders = ["image", "label_7", "label_19", "depth"] + (["instance"] if instance else [])
        for folder in folders:
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            values = {
                "image": rng.integers(0, 256, size=(H, W, 3)) / 255.0,
                "label_7": rng.integers(-1, 7, size=(H, W)).astype(np.float64),
                "label_19": rng.integers(-1, 19, size=(H, W)).astype(np.float64),
                "depth": np.where(rng.random((H, W, 1)) < 0.2, 0.0, rng.uniform(0.01, 0.3, size=(H, W, 1))),
            }
            if instance:
                offsets = np.full((H, W, 2), 250.0)
                offsets[2:4, 3:6] = rng.normal(size=(2, 3, 2))
                values["instance"] = offsets
            for folder, value in values.items():
                np.save(root / split / folder / f"{i}.npy", value)
            truth[(split, i)] = values
    return truth


def test_reads_seven_or_nineteen_classes_and_inverse_depth(tmp_path):
    truth = write_cityscapes(tmp_path)
    for classes in (7, 19):
        data = CityscapesKind.build(tmp_path, path=str(tmp_path), classes=classes, image_size=[H, W], check_counts=False)
        x, y = data["test"]
        assert set(y) == {"semantic", "depth"} and x.shape == (2, 3, H, W) and x.dtype == torch.uint8
        assert torch.equal(y["semantic"][0].long(), torch.from_numpy(truth[("val", 0)][f"label_{classes}"]).long())
        assert torch.allclose(y["depth"][0].float(), torch.from_numpy(truth[("val", 0)]["depth"]).permute(2, 0, 1).float(), rtol=1e-3)
        assert data["meta"]["target_kinds"] == {"semantic": "label", "depth": "disparity"}
        assert [t.out_channels for t in CityscapesKind.tasks({"classes": classes})] == [classes, 1]
    assert CityscapesKind.input_shape({}) == (3, 128, 256)


def test_instance_offsets_are_the_third_task(tmp_path):
    truth = write_cityscapes(tmp_path, instance=True)
    data = CityscapesKind.build(tmp_path, path=str(tmp_path), instance=True, image_size=[H, W], check_counts=False)
    offsets = data["train"][1]["instance"]
    assert offsets.shape == (3, 2, H, W) and offsets.dtype == torch.float16
    assert torch.allclose(offsets[1].float(), torch.from_numpy(truth[("train", 1)]["instance"]).permute(2, 0, 1).float(), atol=2e-3)
    assert [t.name for t in CityscapesKind.tasks({"instance": True})] == ["semantic", "depth", "instance"]
    # A mirrored crop: dx changes sign on instance pixels, the 250 marks stay.
    _, out = augment_sample(torch.zeros(3, H, W), {"instance": offsets[1]}, {"instance": "offset"}, 1.0, 0, 0, True)
    inside = offsets[1, 0] != 250
    assert torch.equal(out["instance"][1].flip(-1)[inside], -offsets[1, 1][inside])
    assert (out["instance"].flip(-1)[:, ~inside] == 250).all()


def test_missing_label_folder_and_missing_directory_are_named(tmp_path):
    write_cityscapes(tmp_path)
    with pytest.raises(DatasetMissingError, match=r"train/instance is missing[\s\S]*\{train,val\}/instance/<i>\.npy"):
        CityscapesKind.build(tmp_path, path=str(tmp_path), instance=True, image_size=[H, W], check_counts=False)
    with pytest.raises(DatasetMissingError, match=r"2975 train / 500 val[\s\S]*cityscapes2\.zip"):
        CityscapesKind.fetch({}, tmp_path / "nowhere")
    with pytest.raises(DatasetMissingError, match="not the official"):
        CityscapesKind.fetch({"path": str(tmp_path), "image_size": [H, W]}, tmp_path)


def test_malformed_files_fail_clearly(tmp_path):
    write_cityscapes(tmp_path)
    np.save(tmp_path / "val/label_7/1.npy", np.full((H, W), 7.0))
    with pytest.raises(DatasetMissingError, match=r"val/label_7/1\.npy: expected integer classes 0..6"):
        CityscapesKind.build(tmp_path, path=str(tmp_path), image_size=[H, W], check_counts=False)
    with pytest.raises(DatasetMissingError, match=r"expected an image of shape \(8, 17, 3\)"):
        CityscapesKind.build(tmp_path, path=str(tmp_path), image_size=[H, W + 1], check_counts=False)
    with pytest.raises(ConfigError, match="classes must be 7"):
        CityscapesKind.tasks({"classes": 20})


def _write_official(root: Path, split: str, city: str, stem: str, rng: np.random.Generator) -> dict:
    from PIL import Image

    h, w = 16, 32  # a stand-in for 1024x2048: halved to 8x16 below
    labels = rng.choice([7, 8, 11, 23, 24, 26, 0], size=(h, w)).astype(np.uint8)
    ids = labels.astype(np.int32).copy()
    ids[2:6, 4:12], labels[2:6, 4:12] = 26 * 1000 + 1, 26  # one car, 4x8 full-res pixels
    ids[10:14, 20:24], labels[10:14, 20:24] = 24 * 1000, 24  # one person (instance number 0)
    ids[0:2, 0:2], labels[0:2, 0:2] = 24, 24  # a crowd region: person class, no individual id
    disparity = rng.integers(1, 30000, size=(h, w)).astype(np.uint16)
    disparity[0, :] = 0
    folders = {"leftImg8bit": "_leftImg8bit.png", "gtFine": None, "disparity": "_disparity.png"}
    for top in folders:
        (root / top / split / city).mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
    Image.fromarray(labels).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
    Image.fromarray(ids.astype(np.uint16)).save(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png")
    Image.fromarray(disparity).save(root / "disparity" / split / city / f"{stem}_disparity.png")
    return {"labels": labels, "ids": ids, "disparity": disparity}


def test_sener_koltun_three_tasks_from_the_official_files(tmp_path):
    rng = np.random.default_rng(0)
    truth = {}
    for split, frames in (("train", [("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313")]), ("val", [("lindau", "lindau_000000_000019")])):
        for city, stem in frames:
            truth[stem] = _write_official(tmp_path, split, city, stem, rng)
    data = CityscapesKind.build(tmp_path, path=str(tmp_path), source="official", classes=19, instance=True, image_size=[8, 16])
    assert data["meta"]["frames"]["test"] == ["lindau/lindau_000000_000019"]
    x, y = data["test"]
    assert x.shape == (1, 3, 8, 16) and set(y) == {"semantic", "depth", "instance"}
    t = truth["lindau_000000_000019"]
    nearest = lambda a: a[1::2, 1::2]  # noqa: E731 - the pixel whose centre is nearest when halving
    train_id = {7: 0, 8: 1, 11: 2, 23: 10, 24: 11, 26: 13, 0: -1}
    assert torch.equal(y["semantic"][0].long(), torch.from_numpy(np.vectorize(train_id.get)(nearest(t["labels"]))).long())
    d = nearest(t["disparity"]).astype(np.float64)
    expected = np.where(d > 0, (d - 1) / 256 * 16 / 32, 0.0)
    assert torch.allclose(y["depth"][0, 0].double(), torch.from_numpy(expected), rtol=1e-3)
    offsets = y["instance"][0].float()
    car = torch.zeros(8, 16, dtype=torch.bool)
    car[1:3, 2:6] = True  # the car after halving: rows 1-2, columns 2-5; centroid (1.5, 3.5)
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(16.0), indexing="ij")
    assert torch.allclose((rows + offsets[0])[car], torch.tensor(1.5)) and torch.allclose((cols + offsets[1])[car], torch.tensor(3.5))
    person = torch.zeros(8, 16, dtype=torch.bool)
    person[5:7, 10:12] = True
    assert torch.allclose((cols + offsets[1])[person], torch.tensor(10.5))
    assert (offsets[:, ~(car | person)] == 250).all()  # background and the crowd region
    assert [t.name for t in CityscapesKind.tasks({"source": "official", "classes": 19, "instance": True})] == ["semantic", "depth", "instance"]
    seven = CityscapesKind.build(tmp_path, path=str(tmp_path), source="official", classes=7, image_size=[8, 16])
    assert set(seven["test"][1]) == {"semantic", "depth"} and int(seven["test"][1]["semantic"].max()) <= 6


def test_official_files_missing_are_named_with_the_layout(tmp_path):
    rng = np.random.default_rng(1)
    _write_official(tmp_path, "train", "aachen", "aachen_000000_000019", rng)
    _write_official(tmp_path, "val", "lindau", "lindau_000000_000019", rng)
    (tmp_path / "disparity/val/lindau/lindau_000000_000019_disparity.png").unlink()
    with pytest.raises(DatasetMissingError, match=r"lindau_000000_000019_disparity\.png is missing[\s\S]*gtFine/\{train,val\}/<city>"):
        CityscapesKind.build(tmp_path, path=str(tmp_path), source="official", image_size=[8, 16])
    with pytest.raises(DatasetMissingError, match=r"leftImg8bit/train is missing"):
        CityscapesKind.fetch({"source": "official"}, tmp_path / "empty")
    with pytest.raises(ConfigError, match="source must be"):
        CityscapesKind.tasks({"source": "gtFine"})
