"""The `scenes` stand-in: renderer geometry against analytic answers, exact labels, determinism,
the community layout round trip, and a dense problem trained through the one training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtlpareto.config import load_profile
from mtlpareto.data import DATASETS
from mtlpareto.data.cityscapes import CityscapesKind
from mtlpareto.data.nyuv2 import NYUv2Kind
from mtlpareto.data.scene_renderer import (
    CITYSCAPES7_CLASSES, NO_INSTANCE, NYU13_CLASSES, NYU_INTRINSICS, Box, Camera, Material, Plane, Scene,
    disparity_from_depth, indoor_scene, render, rotation, street_scene,
)
from mtlpareto.data.scenes import ScenesKind, export_layout
from mtlpareto.data.store import save_processed
from mtlpareto.errors import ConfigError
from mtlpareto.models import MODELS, Backbone
from mtlpareto.training import evaluate_run, train_run

GREY = Material((0.5, 0.5, 0.5), texture_strength=0.0)


def test_a_floor_plane_gives_the_analytic_depth_and_normal():
    # Level camera 1.5 m above the floor (world y down): below the horizon row cy, a pixel on
    # row v sees the floor at depth z = h * fy / (v - cy), by similar triangles.
    cam = Camera.scaled(NYU_INTRINSICS, 48, 64)
    h = 1.5
    view = render(Scene([Plane(4, GREY, n=(0, 1, 0), offset=h)], cam, sky_label=-1))
    rows = np.arange(48)
    below = rows > cam.cy
    expected = h * cam.fy / (rows[below] - cam.cy)
    assert np.allclose(view.depth[below], expected[:, None], rtol=1e-12)
    assert (view.depth[~below] == 0).all() and (view.label[~below] == -1).all() and (view.label[below] == 4).all()
    assert np.allclose(view.normal[below], [0.0, -1.0, 0.0])  # up, towards the camera
    assert (view.normal[~below] == 0).all()


def test_a_wall_at_a_known_distance_seen_by_a_tilted_camera():
    # Camera pitched 20 degrees down, turned 10 degrees: the wall z = 4 (world) is not at constant
    # camera depth; back-projected hits must lie on it and its normal is -z rotated into the camera frame.
    R = rotation(pitch_deg=20, yaw_deg=10)
    cam = Camera.scaled(NYU_INTRINSICS, 30, 40, R)
    view = render(Scene([Plane(11, GREY, n=(0, 0, 1), offset=4.0)], cam))
    v, u = np.mgrid[0:30, 0:40]
    ray_cam = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u, dtype=float)], -1)
    points_world = (view.depth[..., None] * ray_cam) @ R.T
    assert np.allclose(points_world[..., 2], 4.0, atol=1e-9)
    assert np.allclose(view.normal, R.T @ np.array([0.0, 0.0, -1.0]), atol=1e-12)
    assert view.depth.std() > 0.1  # the tilt matters: not a trivially constant map


def test_normals_are_unit_length_and_objects_are_nearer_than_the_room_behind_them():
    for seed in range(4):
        scene = indoor_scene(np.random.default_rng(seed), 48, 64)
        view = render(scene)
        valid = view.depth > 0
        assert valid.mean() > 0.7
        assert np.allclose(np.linalg.norm(view.normal[valid], axis=-1), 1.0, atol=1e-9)
        assert (view.normal[~valid] == 0).all()
        # Camera-facing: the normal points against the viewing ray.
        v, u = np.mgrid[0:48, 0:64]
        ray = np.stack([(u - scene.camera.cx) / scene.camera.fx, (v - scene.camera.cy) / scene.camera.fy, np.ones(u.shape)], -1)
        assert ((view.normal * ray).sum(-1)[valid] < 0).all()
        # The same camera in the empty room (its planes only): every furniture pixel is nearer than the room there.
        room = render(Scene([p for p in scene.primitives if isinstance(p, Plane)], scene.camera))
        furniture = np.isin(view.label, [NYU13_CLASSES.index(c) for c in ("bed", "books", "chair", "furniture", "objects", "sofa", "table", "tv")])
        assert furniture.any()
        assert (view.depth[furniture] < room.depth[furniture]).all()
        room_classes = np.isin(view.label, [NYU13_CLASSES.index(c) for c in ("floor", "ceiling", "wall")])
        assert np.array_equal(view.depth[room_classes], room.depth[room_classes])


def test_a_box_in_front_of_a_wall_is_labelled_where_it_projects():
    cam = Camera.scaled(NYU_INTRINSICS, 48, 64)
    box = Box(0, GREY, lo=(-0.5, -0.5, 2.0), hi=(0.5, 0.5, 3.0))
    view = render(Scene([Plane(11, GREY, n=(0, 0, 1), offset=5.0), box], cam))
    v, u = np.mgrid[0:48, 0:64]
    x, y = (u - cam.cx) / cam.fx * 2.0, (v - cam.cy) / cam.fy * 2.0  # the front face z = 2, |x|, |y| <= 0.5
    inside = (np.abs(x) < 0.5 - 1e-6) & (np.abs(y) < 0.5 - 1e-6)
    assert (view.label[inside] == 0).all() and np.allclose(view.depth[inside], 2.0)
    assert np.allclose(view.normal[inside], [0, 0, -1])
    assert (view.depth[view.label == 11] == 5.0).all()


def test_street_instances_offsets_point_to_their_centroid_and_disparity_is_inverse_depth():
    scene = street_scene(np.random.default_rng(3), 64, 128)
    view = render(scene)
    sky = view.label == CITYSCAPES7_CLASSES.index("sky")
    assert sky.any() and (view.depth[sky] == 0).all()
    disparity = disparity_from_depth(view.depth, scene.camera)
    assert np.allclose(disparity[~sky] * view.depth[~sky], scene.camera.fx * 0.209313)
    from mtlpareto.data.scene_renderer import instance_offsets

    offsets = instance_offsets(view.instance, 250.0)
    people_or_cars = np.isin(view.label, [CITYSCAPES7_CLASSES.index("human"), CITYSCAPES7_CLASSES.index("vehicle")])
    assert np.array_equal(view.instance != NO_INSTANCE, people_or_cars)
    rows, cols = np.mgrid[0:64, 0:128]
    for k in np.unique(view.instance[view.instance != NO_INSTANCE]):
        mine = view.instance == k
        centre = (rows + offsets[0])[mine], (cols + offsets[1])[mine]
        assert np.allclose(centre[0], rows[mine].mean()) and np.allclose(centre[1], cols[mine].mean())
    assert (offsets[:, ~people_or_cars] == 250.0).all()


def _tiny(**options) -> dict:
    return {"n_train": 6, "n_test": 3, "val_size": 2, "image_size": [24, 32], "seed": 5, **options}


def test_build_is_deterministic_and_image_i_depends_only_on_seed_split_and_i():
    a = ScenesKind.build(None, **_tiny())
    b = ScenesKind.build(None, **_tiny())
    for split in ("train", "val", "test"):
        assert torch.equal(a[split][0], b[split][0])
        assert all(torch.equal(a[split][1][k], b[split][1][k]) for k in a[split][1])
    other = ScenesKind.build(None, **_tiny(seed=6))
    assert not torch.equal(a["test"][0], other["test"][0])
    small = ScenesKind.build(None, **_tiny(n_train=3, n_test=2, val_size=0))
    large = ScenesKind.build(None, **_tiny(n_train=5, n_test=3, val_size=0))
    assert torch.equal(small["train"][0], large["train"][0][:3]) and torch.equal(small["test"][1]["depth"], large["test"][1]["depth"][:2])
    parallel = ScenesKind.build(None, **_tiny(workers=2))
    assert torch.equal(parallel["train"][1]["normal"], a["train"][1]["normal"])


def test_processed_targets_are_the_tasks_dict_with_compact_dtypes():
    data = ScenesKind.build(None, **_tiny())
    x, y = data["train"]
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 24, 32)
    assert set(y) == {t.name for t in ScenesKind.tasks({"variant": "indoor"})} == {"semantic", "depth", "normal"}
    assert y["semantic"].dtype == torch.int8 and y["semantic"].shape == (4, 24, 32)
    assert y["depth"].dtype == torch.float16 and y["depth"].shape == (4, 1, 24, 32)
    assert y["normal"].dtype == torch.float16 and y["normal"].shape == (4, 3, 24, 32)
    assert int(y["semantic"].min()) >= 0 and int(y["semantic"].max()) <= 12
    street = ScenesKind.build(None, **_tiny(variant="street"))
    assert set(street["train"][1]) == {"semantic", "depth", "instance"} and street["train"][1]["instance"].shape == (4, 2, 24, 32)
    assert [t.out_channels for t in ScenesKind.tasks({"variant": "street"})] == [7, 1, 2]
    assert ScenesKind.input_shape({"variant": "street"}) == (3, 64, 128)


def test_bad_options_fail_naming_them():
    with pytest.raises(ConfigError, match="variant must be one of indoor, street"):
        ScenesKind.tasks({"variant": "kitchen"})
    with pytest.raises(ConfigError, match="image_size"):
        ScenesKind.input_shape({"image_size": [4, 4]})
    with pytest.raises(ConfigError, match="val_size must be an integer in"):
        ScenesKind.build(None, **_tiny(val_size=6))
    with pytest.raises(ConfigError, match="augment"):
        ScenesKind.tasks({"augment": "yes"})


@pytest.mark.parametrize("variant", ["indoor", "street"])
def test_exported_layout_reads_back_through_the_real_loaders_exactly(tmp_path, variant):
    export_layout(tmp_path, variant=variant, n_train=6, n_test=3, image_size=[24, 32], seed=5)
    if variant == "indoor":
        assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["depth", "image", "label", "normal"]
        loaded = NYUv2Kind.build(tmp_path, path=str(tmp_path), image_size=[24, 32], val_size=2, seed=5, check_counts=False)
    else:
        assert sorted(p.name for p in (tmp_path / "val").iterdir()) == ["depth", "image", "instance", "label_7"]
        loaded = CityscapesKind.build(tmp_path, path=str(tmp_path), image_size=[24, 32], instance=True, val_size=2, seed=5, check_counts=False)
    generated = ScenesKind.build(None, **_tiny(variant=variant))
    for split in ("train", "val", "test"):
        assert torch.equal(loaded[split][0], generated[split][0])
        assert set(loaded[split][1]) == set(generated[split][1])
        for name, target in generated[split][1].items():
            assert loaded[split][1][name].dtype == target.dtype and torch.equal(loaded[split][1][name], target), (split, name)


def tiny_dense_convnet(task_outputs: list[int], in_channels: int = 3, input_size: int = 32, width: int = 8) -> Backbone:
    """Two shared 3x3 convs, a 1x1 conv head per task: [N, C, H, W] outputs at the input resolution."""
    encoder = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
    return Backbone(encoder, [nn.Conv2d(width, n, 1) for n in task_outputs])


@pytest.fixture
def tiny_dense_model():
    MODELS.register("test_tiny_dense_convnet")(tiny_dense_convnet)
    yield
    MODELS.unregister("test_tiny_dense_convnet")


@pytest.mark.parametrize("method,augment", [("uniform", False), ("mgda_ub", True)])
def test_a_dense_problem_trains_and_evaluates_through_the_one_loop(tiny_dense_model, tmp_path, method, augment):
    dataset = {"kind": "scenes", "variant": "indoor", "n_train": 40, "n_test": 16, "val_size": 8, "image_size": [24, 32], "augment": augment}
    prof = load_profile({
        "profile": "t",
        "profiles": {"t": {
            "device": "cpu", "seeds": [0],
            "datasets": {"rooms": dataset},
            "experiments": {"rooms": {
                "dataset": "rooms", "model": {"name": "test_tiny_dense_convnet"},
                "train": {"epochs": 6, "batch_size": 8, "optimizer": "adam", "lr": 0.03},
                "methods": {method: {}},
            }},
        }},
    })
    spec = prof.run_spec(prof.runs()[0])
    data = DATASETS.get("scenes").build(None, **{k: v for k, v in dataset.items() if k != "kind"})
    save_processed(data, tmp_path / "rooms.pt")
    train_run(spec, tmp_path / "rooms.pt", tmp_path / "model.pt", tmp_path / "log.jsonl", progress=False)
    record = evaluate_run(spec, torch.load(tmp_path / "rooms.pt", weights_only=True), tmp_path / "model.pt")
    test = record["splits"]["test"]
    assert set(test) == {"semantic", "depth", "normal"}
    assert record["tasks"]["normal"]["primary"] == "mean_angle" and record["tasks"]["semantic"]["higher_is_better"]["miou"] is True
    # Learned something in 6 epochs: about the majority class's pixel accuracy, depth better than
    # predicting 0 everywhere, normals better than a random direction (90 degrees on average).
    y_test = data["test"][1]
    labels = y_test["semantic"].long()
    majority = torch.bincount(labels[labels >= 0].flatten()).argmax()
    assert test["semantic"]["pixel_acc"] > float((labels[labels >= 0] == majority).float().mean()) - 0.02
    depth = y_test["depth"].float()
    assert test["depth"]["abs_err"] < 0.5 * float(depth[depth > 0].mean())
    assert test["normal"]["mean_angle"] < 60.0
    assert all(v is not None for v in test["normal"].values())


def test_the_export_command_writes_the_layout(tmp_path, capsys):
    from mtlpareto.data.export_scenes import main

    main([str(tmp_path), "--n-train", "2", "--n-test", "1", "--size", "16", "24", "--workers", "0"])
    assert "wrote {'train': 2, 'val': 1}" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "val" / "normal").iterdir()) == ["0.npy"]
    assert np.load(tmp_path / "train" / "image" / "1.npy").shape == (16, 24, 3)
