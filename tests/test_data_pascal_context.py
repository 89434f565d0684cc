"""The pascal_context kind reads a tiny PASCAL_MT archive written in the real formats (JPEG, PNG,
PASCAL-Part and PASCAL-Context .mat files) back with exact labels, and names what is missing."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from mtlpareto.data import dataset_tasks
from mtlpareto.data.dense_layout import DenseProblem
from mtlpareto.data.pascal_context import NORMAL_CLASSES, PascalContextKind, edges_from_labels, thin
from mtlpareto.errors import ConfigError, DatasetMissingError

H, W = 6, 8
IDS = {"train": ["2008_000002", "2008_000003", "2008_000007"], "val": ["2008_000010", "2008_000011"]}
# PASCAL-Context ids: 3 air conditioner and 427 tvmonitor keep normals (NYUv2 has an air
# conditioner; tvmonitor is ASTMT's addition), 1 accordion and 2 aeroplane do not.
KEEPS_NORMALS, DROPS_NORMALS = (3, 427), (1, 2)


def _struct(dtype: list[str], rows: list[tuple]) -> np.ndarray:
    array = np.zeros((1, len(rows)), dtype=[(name, object) for name in dtype])
    for i, row in enumerate(rows):
        array[0, i] = row
    return array


def _parts_mat(path: Path, objects: list[tuple[int, np.ndarray, list[tuple[str, np.ndarray]]]]) -> None:
    """A PASCAL-Part annotation: anno.imname, anno.objects(class, class_ind, mask, parts(part_name, mask))."""
    rows = []
    for class_ind, mask, parts in objects:
        part_array = _struct(["part_name", "mask"], [(name, m.astype(np.uint8)) for name, m in parts]) if parts else np.zeros((0, 0))
        rows.append(("person" if class_ind == 15 else "dog", np.array([[class_ind]], dtype=np.uint8), mask.astype(np.uint8), part_array))
    anno = np.zeros((1, 1), dtype=[("imname", object), ("objects", object)])
    anno[0, 0] = (path.stem, _struct(["class", "class_ind", "mask", "parts"], rows))
    savemat(path, {"anno": anno})


def _box(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[rows, cols] = True
    return mask


def write_pascal_mt(folder: Path, seed: int = 0) -> dict:
    """Files as PASCAL_MT.tgz holds them; returns what each label must decode to."""
    rng = np.random.default_rng(seed)
    for sub in ("JPEGImages", "ImageSets/Context", "semseg/pascal-context", "human_parts", "sal_distill", "normals_distill", "pascal-context/trainval"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    truth = {}
    for split, ids in IDS.items():
        (folder / "ImageSets" / "Context" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for k, image_id in enumerate(ids):
            Image.fromarray(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=90)
            semseg = rng.integers(0, 21, size=(H, W)).astype(np.uint8)
            semseg[0, :2] = 255  # unlabelled
            Image.fromarray(semseg).save(folder / "semseg" / "pascal-context" / f"{image_id}.png")
            saliency = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
            Image.fromarray(saliency).save(folder / "sal_distill" / f"{image_id}.png")
            normals = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
            Image.fromarray(normals).save(folder / "normals_distill" / f"{image_id}.png")
            context = rng.choice(KEEPS_NORMALS + DROPS_NORMALS, size=(H, W)).astype(np.uint16)
            if (split, k) == ("train", 0):
                context[:] = 3
                context[2, 2] = 427  # one island: a plus of Laplacian pixels, thinned to (2, 1), (2, 2)
            savemat(folder / "pascal-context" / "trainval" / f"{image_id}.mat", {"LabelMap": context})
            head, arm = _box(slice(0, 2), slice(0, 3)), _box(slice(3, 5), slice(4, 6))
            objects = {
                ("train", 0): [(15, head | arm | _box(slice(2, 3), slice(0, 8)), [("hair", head), ("llarm", arm)]), (15, _box(slice(5, 6), slice(0, 8)), []), (12, _box(slice(2, 3), slice(6, 8)), [("head", _box(slice(2, 3), slice(6, 8)))])],
                ("train", 1): [(12, head, [("head", head)])],  # a dog only: no person parts
                ("train", 2): [(15, arm, [])],  # a person without part annotations
            }.get((split, k), [(15, head, [("torso", head)])])
            _parts_mat(folder / "human_parts" / f"{image_id}.mat", objects)
            truth[image_id] = {"semseg": semseg, "saliency": saliency, "normals": normals, "context": context}
    return truth


def _build(folder: Path, **options):
    return PascalContextKind.build(folder.parent, path=str(folder), image_size=options.pop("image_size", [H, W]), check_counts=False, **options)


def test_reads_every_label_exactly(tmp_path):
    folder = tmp_path / "PASCAL_MT"
    truth = write_pascal_mt(folder)
    data = _build(folder)
    assert [len(data[s][0]) for s in ("train", "val", "test")] == [3, 0, 2]
    x, y = data["train"]
    first = truth["2008_000002"]
    with Image.open(folder / "JPEGImages" / "2008_000002.jpg") as image:
        assert torch.equal(x[0], torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))
    expected_semseg = np.where(first["semseg"] == 255, -1, first["semseg"].astype(np.int64))
    assert y["semantic"].dtype == torch.int8 and torch.equal(y["semantic"][0].long(), torch.from_numpy(expected_semseg))
    assert y["saliency"].dtype == torch.uint8 and torch.equal(y["saliency"][0], torch.from_numpy((first["saliency"] >= 128).astype(np.uint8)))
    keep = np.isin(first["context"], KEEPS_NORMALS)[..., None]
    expected_normals = np.where(keep, first["normals"] / 127.5 - 1.0, 0.0).transpose(2, 0, 1)
    assert y["normal"].dtype == torch.float16 and torch.allclose(y["normal"][0].double(), torch.from_numpy(expected_normals), atol=1e-3)
    expected_edge = np.zeros((H, W), dtype=np.uint8)
    expected_edge[2, 1] = expected_edge[2, 2] = 1
    assert torch.equal(y["edge"][0], torch.from_numpy(expected_edge))
    # Parts: hair -> head (1), llarm -> lower arm (4); the part-less person and the dog's head stay 0.
    expected_parts = np.zeros((H, W), dtype=np.int64)
    expected_parts[0:2, 0:3] = 1
    expected_parts[3:5, 4:6] = 4
    assert torch.equal(y["parts"][0].long(), torch.from_numpy(expected_parts))
    # No person part in the image (a dog; a person without parts): the whole map is ignored.
    assert (y["parts"][1] == -1).all() and (y["parts"][2] == -1).all()
    assert data["meta"]["image_ids"]["test"] == IDS["val"]
    assert data["meta"]["target_kinds"] == {"semantic": "label", "parts": "label", "saliency": "mask", "normal": "normal", "edge": "mask"}


def test_resizes_labels_by_nearest_neighbour(tmp_path):
    folder = tmp_path / "PASCAL_MT"
    truth = write_pascal_mt(folder)
    data = _build(folder, image_size=[3, 4], tasks=["semantic"], val_size=1, seed=0)
    assert list(data["train"][1]) == ["semantic"] and data["train"][0].shape[1:] == (3, 3, 4)
    # 6 x 8 -> 3 x 4: the pixels whose centres are nearest, rows 1, 3, 5 and columns 1, 3, 5, 7.
    source = truth[IDS["val"][1]]["semseg"][[1, 3, 5]][:, [1, 3, 5, 7]].astype(np.int64)
    assert torch.equal(data["test"][1]["semantic"][1].long(), torch.from_numpy(np.where(source == 255, -1, source)))


def test_images_without_people_add_nothing_to_the_parts_loss():
    parts = dataset_tasks({"kind": "pascal_context", "tasks": ["parts"]})[0]
    logits = torch.randn(2, 7, 3, 4, generator=torch.Generator().manual_seed(0))
    ignored = torch.full((1, 3, 4), -1, dtype=torch.int8)
    labelled = torch.randint(0, 7, (1, 3, 4), generator=torch.Generator().manual_seed(1)).to(torch.int8)
    assert float(parts.loss(logits[:1], ignored)) == 0.0  # an all-ignored batch: 0, not NaN
    both = parts.loss(logits, torch.cat([ignored, labelled]))
    assert torch.allclose(both, parts.loss(logits[1:], labelled))  # the mean over labelled pixels only


def test_task_selection_orders_and_validates(tmp_path):
    tasks = dataset_tasks({"kind": "pascal_context", "tasks": ["edge", "semantic"]})
    assert [(t.name, t.type_name) for t in tasks] == [("edge", "edges"), ("semantic", "segmentation")]
    assert [t.name for t in dataset_tasks({"kind": "pascal_context"})] == ["semantic", "parts", "saliency", "normal", "edge"]
    assert dataset_tasks({"kind": "pascal_context", "tasks": ["parts"]})[0].n_classes == 7
    with pytest.raises(ConfigError, match="tasks must be a non-empty list of distinct names"):
        dataset_tasks({"kind": "pascal_context", "tasks": ["depth"]})


def test_normal_classes_are_the_context_classes_nyuv2_shares():
    assert len(NORMAL_CLASSES) == 170
    assert {158, 440, 3, 427} <= NORMAL_CLASSES  # floor, wall, air conditioner, tvmonitor
    assert not {360, 1, 2, 431} & NORMAL_CLASSES  # sky, accordion, aeroplane, unknown


def test_thinning_follows_the_guo_hall_conditions():
    block = np.zeros((4, 4), dtype=bool)
    block[1:3, 1:3] = True
    # Worked by hand: the first subiteration deletes the 2x2 block's top-left, top-right and
    # bottom-right pixels (G3 keeps the bottom-left one), which then has no deletable neighbour.
    expected = np.zeros((4, 4), dtype=bool)
    expected[2, 1] = True
    assert np.array_equal(thin(block), expected)
    line = np.zeros((3, 7), dtype=bool)
    line[1, 1:6] = True
    assert np.array_equal(thin(line), line)  # already one pixel wide: unchanged
    band = np.zeros((8, 6), dtype=bool)
    band[1:7, 2:4] = True
    thinned = thin(band)
    assert not (thinned & ~band).any() and (thinned[2:6].sum(1) == 1).all()


def test_edges_are_the_thinned_label_boundaries():
    labels = np.ones((6, 6), dtype=np.int64)
    labels[:, 3:] = 2
    edges = edges_from_labels(labels)
    # |Laplacian| > 0 on both sides of the boundary (columns 2 and 3); thinning keeps one per row.
    assert not edges[:, [0, 1, 4, 5]].any() and (edges[1:5].sum(1) == 1).all()
    assert not edges_from_labels(np.full((4, 5), 7)).any()


def test_a_missing_file_is_named_with_the_layout(tmp_path):
    folder = tmp_path / "PASCAL_MT"
    write_pascal_mt(folder)
    (folder / "sal_distill" / f"{IDS['val'][1]}.png").unlink()
    with pytest.raises(DatasetMissingError, match=rf"sal_distill/{IDS['val'][1]}.png is missing \(the saliency file of val image") as err:
        PascalContextKind.fetch({"path": str(folder), "check_counts": False}, tmp_path)
    assert "normals_distill/<id>.png" in str(err.value) and "PASCAL_MT.tgz" in str(err.value)
    # Tasks that do not need the file do not look for it.
    manifest = PascalContextKind.fetch({"path": str(folder), "check_counts": False, "tasks": ["semantic", "edge"]}, tmp_path)
    assert manifest["counts"] == {"train": 3, "val": 2}


def test_malformed_labels_fail_naming_the_file(tmp_path):
    folder = tmp_path / "PASCAL_MT"
    write_pascal_mt(folder)
    image_id = IDS["train"][1]
    Image.fromarray(np.full((H, W), 30, dtype=np.uint8)).save(folder / "semseg" / "pascal-context" / f"{image_id}.png")
    with pytest.raises(DatasetMissingError, match=rf"{image_id}.png: semantic labels must be 0..20 or 255, found 30"):
        _build(folder, tasks=["semantic"])
    _parts_mat(folder / "human_parts" / f"{image_id}.mat", [(15, _box(slice(0, 2), slice(0, 2)), [("tail", _box(slice(0, 1), slice(0, 1)))])])
    with pytest.raises(DatasetMissingError, match=rf"{image_id}.mat: unknown person part 'tail'"):
        _build(folder, tasks=["parts"])
    savemat(folder / "human_parts" / f"{image_id}.mat", {"LabelMap": np.zeros((H, W))})
    with pytest.raises(DatasetMissingError, match="expected one struct 'anno'"):
        _build(folder, tasks=["parts"])


def test_the_official_counts_are_checked(tmp_path):
    folder = tmp_path / "PASCAL_MT"
    write_pascal_mt(folder)
    with pytest.raises(DatasetMissingError, match=r"lists \{'train': 3, 'val': 2\} images, not the official \{'train': 4998, 'val': 5105\}"):
        PascalContextKind.fetch({"path": str(folder)}, tmp_path)


def test_without_files_or_download_the_error_says_where_to_put_the_archive(tmp_path):
    with pytest.raises(DatasetMissingError) as err:
        PascalContextKind.fetch({}, tmp_path / "raw")
    message = str(err.value)
    assert "download is off" in message and str(tmp_path / "raw" / "PASCAL_MT.tgz") in message
    assert "https://data.vision.ee.ethz.ch/kmaninis/share/MTL/PASCAL_MT.tgz" in message


def _archive(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "made" / "PASCAL_MT"
    write_pascal_mt(source)
    archive = tmp_path / "mirror" / "PASCAL_MT.tgz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="PASCAL_MT")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_a_mirror_archive_is_verified_and_extracted(tmp_path):
    archive, digest = _archive(tmp_path)
    root = tmp_path / "raw"
    spec = {"check_counts": False, "mirror": str(archive), "image_size": [H, W]}
    with pytest.raises(DatasetMissingError, match="SHA-256 mismatch"):
        PascalContextKind.fetch({**spec, "sha256": "0" * 64}, root)
    assert not (root / "PASCAL_MT").exists()
    (root / "PASCAL_MT.tgz").unlink()
    manifest = PascalContextKind.fetch({**spec, "sha256": digest}, root)
    assert manifest["archive"]["verified"] and manifest["archive"]["sha256"] == digest
    assert manifest["counts"] == {"train": 3, "val": 2}
    assert len(PascalContextKind.build(root, check_counts=False, image_size=[H, W])["test"][0]) == 2


def test_an_archive_placed_by_hand_is_extracted_and_its_hash_recorded(tmp_path):
    archive, digest = _archive(tmp_path)
    root = tmp_path / "raw"
    root.mkdir()
    archive.rename(root / "PASCAL_MT.tgz")
    manifest = PascalContextKind.fetch({"check_counts": False}, root)
    assert manifest["archive"]["sha256"] == digest and manifest["archive"]["verified"] is False
    assert (root / "PASCAL_MT" / "JPEGImages").is_dir()


def test_batches_augment_every_task_and_losses_are_finite(tmp_path):
    folder = tmp_path / "PASCAL_MT"
    write_pascal_mt(folder)
    data = _build(folder, image_size=[8, 8], augment={"scales": [1.0, 1.5], "flip": True})
    tasks = dataset_tasks({"kind": "pascal_context"})
    problem = DenseProblem(data, tasks, batch_size=2)
    x, y = next(iter(problem.batches(torch.Generator().manual_seed(0))))
    assert x.shape == (2, 3, 8, 8) and set(y) == {"semantic", "parts", "saliency", "normal", "edge"}
    assert set(torch.unique(y["edge"]).tolist()) <= {0, 1} and set(torch.unique(y["saliency"]).tolist()) <= {0, 1}
    outputs = [torch.zeros(2, t.out_channels, 8, 8) for t in tasks]
    assert torch.isfinite(problem.losses(outputs, (x, y))).all()


@pytest.mark.parametrize("model", [{"name": "segnet", "width": 0.125}, {"name": "mobilenetv2", "output_stride": 16}], ids=["segnet", "mobilenetv2"])
def test_the_five_tasks_train_and_evaluate_through_the_one_loop(tmp_path, model):
    # batch 3: all 3 training images at once (the ASPP pooling branch refuses a 1-image batch)
    from mtlpareto.config import load_profile
    from mtlpareto.data.store import save_processed
    from mtlpareto.training import evaluate_run, train_run

    folder = tmp_path / "PASCAL_MT"
    write_pascal_mt(folder)
    prof = load_profile({"profile": "t", "profiles": {"t": {
        "device": "cpu", "seeds": [0],
        "datasets": {"pc": {"kind": "pascal_context", "path": str(folder), "image_size": [32, 32], "check_counts": False}},
        "experiments": {"pc": {"dataset": "pc", "model": model, "train": {"epochs": 1, "batch_size": 3, "optimizer": "adam", "lr": 0.001}, "methods": {"uniform": {}}}},
    }}})
    spec = prof.run_spec(prof.runs()[0])
    save_processed(PascalContextKind.build(tmp_path, path=str(folder), image_size=[32, 32], check_counts=False), tmp_path / "pc.pt")
    train_run(spec, tmp_path / "pc.pt", tmp_path / "model.pt", tmp_path / "log.jsonl", progress=False)
    record = evaluate_run(spec, torch.load(tmp_path / "pc.pt", weights_only=True), tmp_path / "model.pt")
    test = record["splits"]["test"]
    assert set(test) == {"semantic", "parts", "saliency", "normal", "edge"}
    assert set(test["saliency"]) == {"miou", "max_f", "loss"} and set(test["edge"]) == {"f_measure", "precision", "recall", "loss"}
    assert record["tasks"]["edge"]["primary"] == "f_measure" and record["tasks"]["saliency"]["higher_is_better"]["max_f"]
