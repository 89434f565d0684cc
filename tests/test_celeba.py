"""CelebA as 40 binary tasks: tiny files in torchvision's on-disk format, the ResNet-18 MTL model,
the error tables (Tables 1 and 5 of seed 001), the radar figure (Fig. 2) and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import long_frame
import torch
import yaml
from PIL import Image

from mtlpareto.data import DATASETS, dataset_tasks, fetch_dataset, task_names
from mtlpareto.data import celeba
from mtlpareto.errors import ConfigError, DatasetMissingError
from mtlpareto.metrics.aggregate import COLUMNS
from mtlpareto.metrics.tables import TABLES, write_table
from mtlpareto.models import build_model

# ----------------------------------------------------------------------------- tiny files

# Split per image (0 train, 1 valid, 2 test), interleaved on purpose: membership must come from
# list_eval_partition.txt, not from file order.  >= 2 per split: torchvision 0.29 cannot select a
# one-image split (it iterates over a squeezed 0-d index tensor).
PARTITION = [0, 1, 0, 2, 0, 0, 1, 2, 0, 0, 2, 1]
WIDTH, HEIGHT = 178, 218  # the aligned CelebA crops


def colour(i: int) -> tuple[int, int, int]:
    return (20 * i + 10, 240 - 20 * i, 60 + 7 * i)


def write_tiny_celeba(root: Path, n: int = 12, seed: int = 0, images: bool = True) -> dict:
    """Write <root>/celeba/ exactly as torchvision expects it; return what was written.

    Formats follow the official files (and torchvision's ``_load_csv``: space-delimited,
    ``skipinitialspace``; ``header=1`` for attr/bbox/landmarks means line 0 is the count and
    line 1 the column names): attribute values are "%2d" (-1 / " 1") joined by single spaces, so
    columns are separated by one or two spaces, and the attribute header ends with a space as
    in the real file (torchvision then reports an empty 41st name).
    """
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    attrs = rng.choice([-1, 1], size=(n, 40))
    partition = PARTITION[:n]
    if images:
        for i, name in enumerate(names):
            Image.new("RGB", (WIDTH, HEIGHT), colour(i)).save(folder / "img_align_celeba" / name, quality=95)
    lines = [str(n), " ".join(celeba.ATTRIBUTES) + " "]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, attrs)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{name} {p}\n" for name, p in zip(names, partition)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{name} {1000 + i}\n" for i, name in enumerate(names)))
    bbox = [str(n), "image_id x_1 y_1 width height"] + [f"{name}    95  71 226 313" for name in names]
    (folder / "list_bbox_celeba.txt").write_text("\n".join(bbox) + "\n")
    landmark_names = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    marks = [str(n), landmark_names] + [f"{name} 69  109  106  113   77  142   73  152  108  154" for name in names]
    (folder / "list_landmarks_align_celeba.txt").write_text("\n".join(marks) + "\n")
    return {"names": names, "attrs01": (attrs + 1) // 2, "partition": partition, "folder": folder}


@pytest.fixture
def tiny(tmp_path) -> dict:
    info = write_tiny_celeba(tmp_path / "raw")
    info["root"] = tmp_path / "raw"
    return info


def split_rows(info: dict, split: str) -> list[int]:
    code = {"train": 0, "val": 1, "test": 2}[split]
    return [i for i, p in enumerate(info["partition"]) if p == code]


# ----------------------------------------------------------------------------- torchvision integration


def test_tiny_layout_is_read_by_torchvisions_own_parser(tiny):
    from torchvision.datasets import CelebA

    # The official MD5s cannot match tiny files: torchvision's own check rejects them ...
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        CelebA(str(tiny["root"]), split="train", target_type="attr")
    # ... and the documented bypass only replaces that check: parsing and splits are torchvision's.
    ds = celeba.dataset_class(check_md5=False)(str(tiny["root"]), split="valid", target_type="attr")
    rows = split_rows(tiny, "val")
    assert ds.filename == [tiny["names"][i] for i in rows]
    assert torch.equal(ds.attr, torch.as_tensor(tiny["attrs01"][rows]))
    assert [a for a in ds.attr_names if a] == list(celeba.ATTRIBUTES)
    assert celeba.dataset_class(check_md5=True) is CelebA


def test_unverified_class_is_picklable_for_dataloader_workers(tiny):
    import pickle

    ds = celeba.dataset_class(check_md5=False)(str(tiny["root"]), split="test", target_type="attr")
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.filename == ds.filename and type(clone).__name__ == "CelebAUnverified"


def test_fetch_checks_md5_by_default_and_names_the_files(tiny):
    with pytest.raises(DatasetMissingError) as exc:
        celeba.fetch_celeba(tiny["root"])
    msg = str(exc.value)
    assert "list_attr_celeba.txt fails its MD5 check" in msg and "75e246fa4810816ffd6ee81facbd244c" in msg
    manifest = celeba.fetch_celeba(tiny["root"], check_md5=False)
    assert manifest["n_images"] == 12 and manifest["verified"].startswith("existence only")
    assert manifest["root"] == str(tiny["folder"])


# ----------------------------------------------------------------------------- build


def test_build_through_the_registry(tiny):
    kind = DATASETS.get("celeba")
    data = kind.build(root=tiny["root"], image_size=16, check_md5=False)
    assert data["tasks"] == list(celeba.ATTRIBUTES)
    assert data["meta"]["sizes"] == {"train": 6, "val": 3, "test": 3}
    assert data["meta"]["split_sizes"] == {"train": 6, "val": 3, "test": 3}
    for split in ("train", "val", "test"):
        x, y = data[split]
        rows = split_rows(tiny, split)
        assert x.dtype == torch.uint8 and tuple(x.shape) == (len(rows), 3, 16, 16)
        assert y.dtype == torch.int64 and tuple(y.shape) == (len(rows), 40)
        # -1/1 in the file -> 0/1, one column per attribute in file order
        assert torch.equal(y, torch.as_tensor(tiny["attrs01"][rows]))
        assert data["meta"]["files"][split] == [tiny["names"][i] for i in rows]
        # each image is a solid colour: after JPEG + resize every pixel stays within a few levels
        for k, i in enumerate(rows):
            expected = torch.tensor(colour(i), dtype=torch.float32).view(3, 1, 1)
            assert (x[k].float() - expected).abs().max() <= 4, (split, i)
    # train-split statistics on the [0, 1] scale, per channel
    train_rows = split_rows(tiny, "train")
    mean = np.array([colour(i) for i in train_rows], dtype=float).mean(axis=0) / 255.0
    assert np.allclose(data["meta"]["mean"], mean, atol=0.01)
    assert len(data["meta"]["std"]) == 3


@pytest.mark.parametrize("variant", ["header_without_trailing_space", "crlf"])
def test_annotation_file_variants_parse_the_same(tiny, variant):
    # torchvision's own fake CelebA writes the header without the trailing space; files edited on
    # Windows have CRLF line ends. Both must give the same dataset.
    reference = DATASETS.get("celeba").build(root=tiny["root"], image_size=8, check_md5=False)
    attr = tiny["folder"] / "list_attr_celeba.txt"
    text = attr.read_text()
    if variant == "crlf":
        for path in tiny["folder"].glob("*.txt"):
            path.write_bytes(path.read_text().replace("\n", "\r\n").encode())
    else:
        attr.write_text(text.replace(celeba.ATTRIBUTES[-1] + " \n", celeba.ATTRIBUTES[-1] + "\n"))
    data = DATASETS.get("celeba").build(root=tiny["root"], image_size=8, check_md5=False)
    for split in ("train", "val", "test"):
        assert torch.equal(data[split][1], reference[split][1]) and torch.equal(data[split][0], reference[split][0])


def test_wrong_attribute_header_is_reported(tiny):
    attr = tiny["folder"] / "list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace("Smiling", "Smile"))
    with pytest.raises(DatasetMissingError, match="40 official attribute columns"):
        DATASETS.get("celeba").build(root=tiny["root"], image_size=8, check_md5=False)


def test_build_is_deterministic_and_subsamples_by_split(tiny):
    kind = DATASETS.get("celeba")
    options = dict(image_size=8, max_train=4, max_val=2, max_test=None, check_md5=False)
    a = kind.build(root=tiny["root"], **options)
    b = kind.build(root=tiny["root"], **options)
    for split in ("train", "val", "test"):
        assert torch.equal(a[split][0], b[split][0]) and torch.equal(a[split][1], b[split][1])
    assert a["meta"]["sizes"] == {"train": 4, "val": 2, "test": 3}
    train_files = a["meta"]["files"]["train"]
    assert train_files == sorted(train_files) and set(train_files) <= {tiny["names"][i] for i in split_rows(tiny, "train")}
    # max_val does not change which training images are drawn
    c = kind.build(root=tiny["root"], **{**options, "max_val": 1})
    assert c["meta"]["files"]["train"] == train_files
    # another seed draws another subset (6 choose 4 = 15 possibilities; seeds 0..4 cannot all agree)
    others = {tuple(kind.build(root=tiny["root"], **{**options, "seed": s})["meta"]["files"]["train"]) for s in range(1, 5)}
    assert len(others | {tuple(train_files)}) > 1


def test_decoding_workers_do_not_change_the_result(tiny):
    kind = DATASETS.get("celeba")
    serial = kind.build(root=tiny["root"], image_size=8, check_md5=False, workers=0)
    parallel = kind.build(root=tiny["root"], image_size=8, check_md5=False, workers=2)
    for split in ("train", "val", "test"):
        assert torch.equal(serial[split][0], parallel[split][0]) and torch.equal(serial[split][1], parallel[split][1])
    assert serial["meta"] == parallel["meta"]


def test_attribute_subset_keeps_file_order(tiny):
    spec = {"kind": "celeba", "attributes": ["Young", "Smiling", "5_o_Clock_Shadow"], "check_md5": False, "image_size": 8}
    assert task_names(spec) == ["5_o_Clock_Shadow", "Smiling", "Young"]
    assert all(t.n_classes == 2 and t.primary == "accuracy" and t.higher_is_better("accuracy") for t in dataset_tasks(spec))
    data = DATASETS.get("celeba").build(root=tiny["root"], **{k: v for k, v in spec.items() if k != "kind"})
    cols = [celeba.ATTRIBUTES.index(a) for a in ("5_o_Clock_Shadow", "Smiling", "Young")]
    assert torch.equal(data["train"][1], torch.as_tensor(tiny["attrs01"][split_rows(tiny, "train")][:, cols]))
    assert data["tasks"] == data["meta"]["attributes"] == ["5_o_Clock_Shadow", "Smiling", "Young"]


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"attributes": ["Smilling"]}, "unknown CelebA attribute"),
        ({"attributes": []}, "non-empty list"),
        ({"attributes": ["Male", "Male"]}, "duplicate"),
        ({"image_size": 4}, "image_size"),
        ({"max_train": -1}, "max_train"),
        ({"workers": 1.5}, "workers"),
    ],
)
def test_bad_options_fail_at_validation(spec, match):
    with pytest.raises(ConfigError, match=match):
        dataset_tasks({"kind": "celeba", **spec})


def test_default_is_forty_binary_tasks():
    specs = dataset_tasks({"kind": "celeba"})
    assert len(specs) == 40 and {t.n_classes for t in specs} == {2} and specs[20].name == "Male"


def test_placed_zip_is_extracted(tmp_path):
    info = write_tiny_celeba(tmp_path, images=True)
    folder = info["folder"]
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
        for name in info["names"]:
            zf.write(folder / "img_align_celeba" / name, f"img_align_celeba/{name}")
    for name in info["names"]:
        (folder / "img_align_celeba" / name).unlink()
    (folder / "img_align_celeba").rmdir()
    manifest = celeba.fetch_celeba(tmp_path, check_md5=False)
    assert manifest["n_images"] == 12 and (folder / "img_align_celeba" / info["names"][0]).is_file()


# ----------------------------------------------------------------------------- missing data


def test_missing_dataset_names_directory_and_files(tmp_path):
    with pytest.raises(DatasetMissingError) as exc:
        fetch_dataset({"kind": "celeba"}, tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "celeba") in msg and "download is off" in msg
    for name in ("img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt",
                 "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt"):
        assert name in msg
    with pytest.raises(DatasetMissingError, match="run `mtlpareto fetch` first"):
        DATASETS.get("celeba").build(root=tmp_path)


def test_download_failure_is_reported_clearly(tmp_path, monkeypatch):
    from torchvision.datasets import CelebA

    def offline(self):  # what gdown / Google Drive does here; never touch the network in tests
        raise RuntimeError("Google Drive unreachable")

    monkeypatch.setattr(CelebA, "download", offline)
    with pytest.raises(DatasetMissingError, match="torchvision's download failed: Google Drive unreachable"):
        fetch_dataset({"kind": "celeba", "download": True}, tmp_path)


def test_missing_image_is_named(tiny):
    (tiny["folder"] / "img_align_celeba" / tiny["names"][3]).unlink()  # a test-split image
    with pytest.raises(DatasetMissingError, match="test split"):
        DATASETS.get("celeba").build(root=tiny["root"], image_size=8, check_md5=False)


# ----------------------------------------------------------------------------- model


@pytest.mark.parametrize("stem, representation", [("imagenet", 512), ("cifar", 2048)])
def test_resnet18_forward_backward_with_forty_heads(stem, representation):
    torch.manual_seed(0)
    model = build_model("resnet18", [2] * 40, (3, 64, 64), stem=stem)
    assert model.n_tasks == 40
    assert all(h.in_features == representation and h.out_features == 2 for h in model.heads)
    x = torch.randn(3, 3, 64, 64)
    y = torch.randint(0, 2, (3, 40))
    z = model.encode(x)
    assert tuple(z.shape) == (3, representation)
    outs = model.decode(z)
    assert len(outs) == 40 and all(tuple(o.shape) == (3, 2) for o in outs)
    loss = sum(torch.nn.functional.cross_entropy(o, y[:, t]) for t, o in enumerate(outs))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # torchvision's ResNet-18 minus its fc: 11,176,512 encoder parameters for RGB
    if stem == "imagenet":
        assert sum(p.numel() for p in model.shared_parameters()) == 11_176_512


def test_resnet18_is_deterministic_for_a_seed():
    torch.manual_seed(1)
    a = build_model("resnet18", [2] * 3, (3, 32, 32))
    torch.manual_seed(1)
    b = build_model("resnet18", [2] * 3, (3, 32, 32))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_resnet18_pretrained_needs_local_weights(tmp_path, monkeypatch):
    from mtlpareto.models import resnet

    # torch.hub keeps a set_dir() for good; monkeypatch restores the "unset" state after the test,
    # so later tests still follow TORCH_HOME.
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match=r"resnet18-f37072fd\.pth.*not downloaded"):
        build_model("resnet18", [2], (3, 64, 64), pretrained=True)
    # a file under the official name whose bytes do not match the hash in the name
    path, _ = resnet.pretrained_weights_path()
    path.parent.mkdir(parents=True)
    torch.save({}, path)
    with pytest.raises(ConfigError, match="corrupt"):
        build_model("resnet18", [2], (3, 64, 64), pretrained=True)
    # a local file without a hash in its name is loaded as is
    from torchvision.models import resnet18 as tv_resnet18

    reference = tv_resnet18(weights=None)
    local = tmp_path / "resnet18-local.pth"
    torch.save(reference.state_dict(), local)
    monkeypatch.setattr(resnet, "pretrained_weights_path", lambda: (local, "file://local"))
    model = build_model("resnet18", [2], (3, 64, 64), pretrained=True)
    assert torch.equal(model.encoder[0].weight, reference.conv1.weight)
    with pytest.raises(ConfigError, match="stem: imagenet"):
        build_model("resnet18", [2], (3, 64, 64), pretrained=True, stem="cifar")
    with pytest.raises(ConfigError, match="stem must be one of"):
        build_model("resnet18", [2], (3, 64, 64), stem="vgg")


# ----------------------------------------------------------------------------- tables


def metrics_frame() -> pd.DataFrame:
    """Hand-written long metrics frame: 3 tasks, 2 seeds; uniform, MGDA-UB and single-task runs."""
    acc = {
        # (method, variant, seed): test accuracies of tasks a, b, c
        ("uniform", "default", 0): [90.0, 80.0, 70.0],
        ("uniform", "default", 1): [92.0, 78.0, 74.0],
        ("mgda_ub", "default", 0): [91.0, 85.0, 75.0],
        ("mgda_ub", "default", 1): [93.0, 83.0, 73.0],
    }
    rows = []
    for (method, variant, seed), values in acc.items():
        for split, shift in (("test", 0.0), ("val", 1.0)):
            for t, v in zip("abc", values):
                rows.append(["celeba", method, variant, seed, None, None, split, t, "accuracy", v + shift])
                rows.append(["celeba", method, variant, seed, None, None, split, t, "loss", 0.5])
    # single task: run task-t trains task t only; the other tasks' scores of that run are ignored
    single = {0: {"a": 95.0, "b": 88.0, "c": 60.0}, 1: {"a": 97.0, "b": 86.0, "c": 64.0}}
    for seed, own in single.items():
        for k, t in enumerate("abc"):
            for split in ("test", "val"):
                for u in "abc":
                    value = own[u] if u == t else 10.0  # junk where the model was not trained
                    rows.append(["celeba", "single_task", f"task-{t}", seed, None, k, split, u, "accuracy", value])
    return long_frame(rows)


def test_per_task_error_matches_hand_computation():
    table = TABLES.get("per_task_error")(metrics_frame())
    got = {(r.method, r.task): (r.mean, r.std, r.n_seeds) for r in table.itertuples()}
    # uniform task c: errors 30, 26 -> mean 28, sample std 2 * sqrt(2)
    assert got[("uniform", "c")] == (28.0, 2.8284, 2)
    assert got[("uniform", "a")] == (9.0, 1.4142, 2)
    assert got[("mgda_ub", "b")] == (16.0, 1.4142, 2)
    # single task: task b from the task-b models only: errors 12, 14
    assert got[("single_task", "b")] == (13.0, 1.4142, 2)
    assert got[("single_task", "c")] == (38.0, 2.8284, 2)
    assert set(table.metric) == {"error"} and set(table.split) == {"test"}
    assert len(table) == 9


def test_average_error_matches_hand_computation():
    table = TABLES.get("average_error")(metrics_frame()).set_index("method")
    # uniform: seed 0 errors (10, 20, 30) -> 20; seed 1 (8, 22, 26) -> 18.6667; mean 19.3333, std 0.6667
    assert table.loc["uniform", "mean"] == round((20.0 + 56.0 / 3) / 2, 4)
    assert table.loc["uniform", "std"] == round(abs(20.0 - 56.0 / 3) / 2 ** 0.5, 4)
    # mgda_ub: seed 0 (9, 15, 25) -> 16.3333; seed 1 (7, 17, 27) -> 17
    assert table.loc["mgda_ub", "mean"] == round((49.0 / 3 + 17.0) / 2, 4)
    assert table.loc["mgda_ub", "std"] == round(abs(49.0 / 3 - 17.0) / 2 ** 0.5, 4)
    # single task: seed 0 (5, 12, 40) -> 19; seed 1 (3, 14, 36) -> 17.6667
    assert table.loc["single_task", "mean"] == round((19.0 + 53.0 / 3) / 2, 4)
    assert table.loc["single_task", "label"] == "Single task" and table.loc["single_task", "variant"] == "per-task"
    assert set(table.n_tasks) == {3} and set(table.n_seeds) == {2} and set(table.task) == {"mean"}


def test_error_tables_write_csv_and_markdown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no results/published.yaml here: our numbers only
    summary = write_table("average_error", metrics_frame(), "celeba", "celeba: average_error", tmp_path / "t.csv", tmp_path / "t.md")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "method,label,variant,task,metric,split,mean,std,n_seeds,n_tasks"
    md = (tmp_path / "t.md").read_text()
    assert "| Uniform scaling | 19.33 ± 0.94 | 2 |" in md and "mean error" in md
    assert len(summary) == 3
    # with the paper's Table 1 on file, its number stands beside ours (task "mean", metric "error")
    published = tmp_path / "results" / "published.yaml"
    published.parent.mkdir()
    published.write_text(yaml.safe_dump({
        "sources": {"s": "Sener & Koltun 2018"},
        "entries": [{"source": "s", "table": "Table 1", "experiment": "celeba", "method": "uniform", "task": "mean",
                     "metric": "error", "value": 9.62, "direction": "lower"}],
    }))
    write_table("average_error", metrics_frame(), "celeba", "celeba: average_error", tmp_path / "t.csv", tmp_path / "t.md")
    assert "| Uniform scaling | 19.33 ± 0.94 | 9.62 | 2 |" in (tmp_path / "t.md").read_text()


# ----------------------------------------------------------------------------- figure


def test_radar_figure_renders_png(tmp_path):
    from mtlpareto.figures import FIGURES, save_figure
    from mtlpareto.figures.radar import radar_groups

    rng = np.random.default_rng(0)
    tasks = [f"attr{i}" for i in range(10)]
    rows = []
    for method in ("uniform", "mgda_ub"):
        for seed in (0, 1):
            for t in tasks:
                rows.append(["celeba", method, "default", seed, None, None, "test", t, "accuracy", float(rng.uniform(60, 99))])
    df = long_frame(rows)
    fig = FIGURES.get("radar")(df, "celeba (test)")
    assert len(fig.axes) == 2  # easy and hard halves
    paths = [tmp_path / "radar.png", tmp_path / "radar.pdf"]
    save_figure(fig, paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].stat().st_size > 0
    errors = pd.DataFrame({"m": [5.0, 1.0, 3.0, 2.0, 4.0, 9.0, 7.0, 8.0]}, index=list("abcdefgh"))
    assert radar_groups(errors) == [("easy (lower error)", ["b", "d", "c", "e"]), ("hard (higher error)", ["a", "g", "h", "f"])]
    with pytest.raises(ValueError, match="at least 3 tasks"):
        FIGURES.get("radar")(df[df.task.isin(["attr0", "attr1"])], "two tasks")


# ----------------------------------------------------------------------------- end to end


def e2e_params() -> dict:
    profile = {
        "device": "cpu",
        "torch_threads": 1,
        "seeds": [0],
        "datasets": {"celeba": {"kind": "celeba", "image_size": 16, "download": False, "check_md5": False}},
        "experiments": {
            "celeba": {
                "dataset": "celeba",
                "model": {"name": "resnet18"},
                "train": {"epochs": 1, "batch_size": 4, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "lr_halve_every": 30},
                # Exact MGDA is left out on purpose: 40 per-task gradients w.r.t. ResNet-18's 11M
                # shared parameters take ~35 s and >12 GB per step on a CPU.
                "methods": {"uniform": {}, "mgda_ub": {"normalization": "loss+"}},
                "tables": ["average_error", "per_task_error"],
                "figures": ["radar"],
            }
        },
    }
    return {"profile": "tiny", "profiles": {"tiny": profile}}


@pytest.mark.slow
def test_celeba_config_runs_end_to_end_through_the_cli(tmp_path, cli_env):
    from mtlpareto import pipeline
    from mtlpareto.config import load_profile

    write_tiny_celeba(tmp_path / "data" / "raw")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(e2e_params()))
    prof = load_profile(tmp_path / "params.yaml")
    commands = [stage.cmd for stage in pipeline.stages(prof)]  # the same commands Snakemake and DVC run
    assert len(commands) == 2 + 2 * 2 + 1 + 2 + 1  # fetch, build; train + evaluate per method; curves; 2 tables; radar
    for cmd in commands:
        res = subprocess.run(cmd.split(), cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{cmd}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    data = torch.load(tmp_path / pipeline.processed_path(prof, "celeba"), weights_only=False)
    assert tuple(data["train"][0].shape) == (6, 3, 16, 16)
    for run in prof.runs():
        record = json.loads((tmp_path / pipeline.metrics_path(prof, run)).read_text())
        assert len(record["splits"]["test"]) == 40
    for target in pipeline.report_targets(prof):
        assert (tmp_path / target).stat().st_size > 0, target
    avg = pd.read_csv(tmp_path / pipeline.table_paths(prof, "celeba", "average_error")[0])
    assert sorted(avg.method) == ["mgda_ub", "uniform"] and set(avg.n_tasks) == {40}
    assert ((avg["mean"] >= 0) & (avg["mean"] <= 100)).all()
    per_task = pd.read_csv(tmp_path / pipeline.table_paths(prof, "celeba", "per_task_error")[0])
    assert len(per_task) == 2 * 40
    assert (tmp_path / pipeline.figure_paths(prof, "celeba", "radar")[0]).read_bytes()[:4] == b"\x89PNG"
