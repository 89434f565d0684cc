"""The nyuv2 kind reads tiny files in MTAN's real layout, rejects malformed ones clearly, fetches
an archive with its checksum, and augments training batches deterministically."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlpareto.data.dense_layout import DenseProblem, augment_sample, check_augment
from mtlpareto.data.nyuv2 import NYUv2Kind
from mtlpareto.errors import ConfigError, DatasetMissingError

H, W = 12, 16


def write_nyuv2(root: Path, n_train: int = 3, n_val: int = 2, seed: int = 0) -> dict:
    """Files as MTAN's archive holds them: float64 arrays, channel last, labels as floats with -1."""
    rng = np.random.default_rng(seed)
    truth = {}
    for split, n in (("train", n_train), ("val", n_val)):
        for folder in ("image", "label", "depth", "normal"):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = rng.integers(0, 256, size=(H, W, 3)) / 255.0
            label = rng.integers(-1, 13, size=(H, W)).astype(np.float64)
            depth = rng.uniform(0.5, 9.0, size=(H, W, 1))
            depth[0, :3] = 0.0  # invalid readings
            normal = rng.normal(size=(H, W, 3))
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
            normal[depth[..., 0] == 0] = 0.0
            for folder, value in (("image", image), ("label", label), ("depth", depth), ("normal", normal)):
                np.save(root / split / folder / f"{i}.npy", value)
            truth[(split, i)] = (image, label, depth, normal)
    return truth


def _build(root: Path, **options):
    return NYUv2Kind.build(root, path=str(root), image_size=[H, W], check_counts=False, **options)


def test_reads_the_real_layout_into_compact_tensors(tmp_path):
    truth = write_nyuv2(tmp_path)
    data = _build(tmp_path, val_size=1, seed=3)
    assert [len(data[s][0]) for s in ("train", "val", "test")] == [2, 1, 2]
    x, y = data["test"]  # the community's val/ folder is this project's test split
    image, label, depth, normal = truth[("val", 1)]
    assert x.dtype == torch.uint8 and torch.equal(x[1], torch.from_numpy(np.round(image * 255).astype(np.uint8)).permute(2, 0, 1))
    assert y["semantic"].dtype == torch.int8 and torch.equal(y["semantic"][1].long(), torch.from_numpy(label).long())
    assert y["depth"].shape == (2, 1, H, W) and torch.allclose(y["depth"][1].float(), torch.from_numpy(depth).permute(2, 0, 1).float(), rtol=1e-3)
    assert y["normal"].shape == (2, 3, H, W) and torch.allclose(y["normal"][1].float(), torch.from_numpy(normal).permute(2, 0, 1).float(), atol=1e-3)
    # train + val are the train folder, disjoint and complete.
    train_folder = torch.stack([torch.from_numpy(truth[("train", i)][2]).permute(2, 0, 1).half() for i in range(3)])
    both = torch.cat([data["train"][1]["depth"], data["val"][1]["depth"]])
    assert sorted(map(tuple, both.flatten(1).tolist())) == sorted(map(tuple, train_folder.flatten(1).tolist()))
    assert data["meta"]["target_kinds"] == {"semantic": "label", "depth": "depth", "normal": "normal"}
    assert NYUv2Kind.input_shape({}) == (3, 288, 384) and [t.name for t in NYUv2Kind.tasks({})] == ["semantic", "depth", "normal"]


def test_a_missing_directory_names_the_expected_layout(tmp_path):
    with pytest.raises(DatasetMissingError) as err:
        NYUv2Kind.fetch({"image_size": [H, W]}, tmp_path)
    message = str(err.value)
    assert str(tmp_path / "nyuv2") in message and "{train,val}/depth/<i>.npy" in message and "download is off" in message
    assert "795 train / 654 val" in message


@pytest.mark.parametrize("damage,expected", [
    (lambda r: (r / "val/normal").rename(r / "val/normals"), r"val/normal is missing[\s\S]*expected layout"),
    (lambda r: (r / "train/depth/1.npy").unlink(), "numbered 0 .. n-1 without gaps; missing 1.npy"),
    (lambda r: np.save(r / "train/label/0.npy", np.full((H, W), 13.0)), r"integer classes 0..12 and -1"),
    (lambda r: np.save(r / "train/depth/0.npy", np.ones((H, W + 1, 1))), rf"expected shape \({H}, {W}, 1\) for depth"),
    (lambda r: np.save(r / "val/image/0.npy", np.full((H, W, 3), 2.0)), r"float values in \[0, 1\]"),
    (lambda r: (r / "train/normal/2.npy").write_bytes(b"not numpy"), "unreadable .npy file"),
    (lambda r: np.save(r / "train/depth/2.npy", -np.ones((H, W, 1))), "must be >= 0"),
])
def test_malformed_files_fail_naming_the_file_and_the_problem(tmp_path, damage, expected):
    write_nyuv2(tmp_path)
    damage(tmp_path)
    with pytest.raises(DatasetMissingError, match=expected):
        _build(tmp_path)


def test_the_official_counts_are_checked_unless_switched_off(tmp_path):
    write_nyuv2(tmp_path)
    with pytest.raises(DatasetMissingError, match=r"holds \{'train': 3, 'val': 2\} samples, not the official"):
        NYUv2Kind.fetch({"path": str(tmp_path), "image_size": [H, W]}, tmp_path)
    assert NYUv2Kind.fetch({"path": str(tmp_path), "image_size": [H, W], "check_counts": False}, tmp_path)["counts"] == {"train": 3, "val": 2}


def _archive(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "made" / "nyuv2"
    write_nyuv2(source)
    archive = tmp_path / "nyuv2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(source.rglob("*.npy")):
            zf.write(file, file.relative_to(source.parent))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_an_archive_mirror_is_verified_by_its_checksum_and_extracted(tmp_path):
    archive, digest = _archive(tmp_path)
    root = tmp_path / "raw"
    spec = {"image_size": [H, W], "check_counts": False, "mirror": str(archive)}
    with pytest.raises(DatasetMissingError, match="SHA-256 mismatch"):
        NYUv2Kind.fetch({**spec, "sha256": "0" * 64}, root)
    assert not (root / "nyuv2").exists()
    manifest = NYUv2Kind.fetch({**spec, "sha256": digest}, root)
    assert manifest["archive"] == {"archive": str(archive), "sha256": digest, "verified": True}
    assert manifest["counts"] == {"train": 3, "val": 2}
    assert len(NYUv2Kind.build(root, image_size=[H, W], check_counts=False)["test"][0]) == 2


def test_augmentation_scales_depth_and_flips_normals():
    image = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)[0]
    depth = torch.full((1, 4, 6), 3.0, dtype=torch.float16)
    normal = torch.zeros(3, 4, 6, dtype=torch.float16)
    normal[0], normal[2] = 0.6, -0.8
    label = torch.arange(24, dtype=torch.int8).reshape(4, 6) % 13
    kinds = {"semantic": "label", "depth": "depth", "normal": "normal"}
    same, plain = augment_sample(image, {"semantic": label, "depth": depth, "normal": normal}, kinds, 1.0, 0, 0, False)
    assert torch.equal(same, image) and torch.equal(plain["depth"], depth)
    flipped_image, flipped = augment_sample(image, {"semantic": label, "depth": depth, "normal": normal}, kinds, 1.0, 0, 0, True)
    assert torch.equal(flipped_image, image.flip(-1)) and torch.equal(flipped["semantic"], label.flip(-1))
    assert (flipped["normal"][0] == -0.6).all() and (flipped["normal"][2] == -0.8).all()
    # Scale 2: the 2x3 crop at (1, 2) magnified to 4x6; depth halves, labels keep their values.
    _, zoomed = augment_sample(image, {"semantic": label, "depth": depth, "normal": normal}, kinds, 2.0, 1, 2, False)
    assert (zoomed["depth"] == 1.5).all() and zoomed["depth"].dtype == torch.float16
    assert set(zoomed["semantic"].unique().tolist()) == set(label[1:3, 2:5].unique().tolist())
    assert zoomed["semantic"].dtype == torch.int8 and torch.equal(zoomed["normal"], normal)


def test_augmented_batches_are_a_deterministic_function_of_the_generator(tmp_path):
    write_nyuv2(tmp_path, n_train=6)
    data = _build(tmp_path, augment=True)
    tasks = NYUv2Kind.tasks({})
    problem = DenseProblem(data, tasks, batch_size=4)
    first = [b for b in problem.batches(torch.Generator().manual_seed(1))]
    again = [b for b in problem.batches(torch.Generator().manual_seed(1))]
    other = [b for b in problem.batches(torch.Generator().manual_seed(2))]
    assert len(first) == 2 and first[0][0].shape == (4, 3, H, W) and first[0][1]["depth"].shape == (4, 1, H, W)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1]["normal"], b[1]["normal"]) for a, b in zip(first, again))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))
    # Without augmentation the batches are the plain DatasetProblem's.
    plain = DenseProblem(_build(tmp_path), tasks, batch_size=4)
    from mtlpareto.data.problems import DatasetProblem

    reference = DatasetProblem(_build(tmp_path), tasks, batch_size=4)
    for a, b in zip(plain.batches(torch.Generator().manual_seed(1)), reference.batches(torch.Generator().manual_seed(1))):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1]["semantic"], b[1]["semantic"])
    assert len(problem.losses([torch.zeros(4, 13, H, W), torch.zeros(4, 1, H, W), torch.ones(4, 3, H, W)], first[0])) == 3


def test_augment_option_is_checked():
    assert check_augment(True, "x") == {"scales": [1.0, 1.2, 1.5], "flip": True}
    assert check_augment(None, "x") is None and check_augment(False, "x") is None
    with pytest.raises(ConfigError, match=r"nyuv2\.augment\.scales"):
        NYUv2Kind.tasks({"augment": {"scales": [0.5]}})
    with pytest.raises(ConfigError, match="image_size"):
        NYUv2Kind.input_shape({"image_size": 288})


def test_dense_problems_evaluate_in_training_sized_batches(tmp_path):
    write_nyuv2(tmp_path, n_train=3, n_val=5)
    problem = DenseProblem(_build(tmp_path), NYUv2Kind.tasks({}), batch_size=2)
    seen = []

    def forward(x):
        seen.append(len(x))
        n = len(x)
        return [torch.zeros(n, 13, H, W), torch.ones(n, 1, H, W), torch.ones(n, 3, H, W)]

    scores = problem.score(forward, "test")
    assert seen == [2, 2, 1] and set(scores) == {"semantic", "depth", "normal"}


def test_an_archive_extracts_to_a_path_of_any_name(tmp_path):
    archive, digest = _archive(tmp_path)
    target = tmp_path / "elsewhere" / "NYU-preprocessed"
    manifest = NYUv2Kind.fetch({"image_size": [H, W], "check_counts": False, "mirror": f"file://{archive}", "path": str(target)}, tmp_path)
    assert manifest["archive"]["verified"] is False and manifest["archive"]["sha256"] == digest  # recorded, not verified
    assert (target / "val" / "normal" / "1.npy").is_file() and not any(p.name.startswith(".") for p in target.parent.iterdir())
