"""`scenes`: rendered 3-D scenes with exact dense labels, the offline stand-in for NYUv2 / Cityscapes.

Every image is a procedurally generated scene ray-cast in numpy (data/scene_renderer.py):

* ``variant: indoor`` - a room with furniture in NYUv2's 13 classes; tasks semantic, depth
  (camera-frame z in metres), normal (camera-frame unit normals, facing the camera); NYUv2's
  intrinsics scaled to ``image_size`` (default 96x128, NYUv2's 3:4).  Windows return no depth
  or normal (0), as glass does for NYUv2's Kinect.
* ``variant: street`` - a street in Cityscapes' 7 categories; tasks semantic, depth (stereo
  disparity in pixels of this resolution, fx * 0.209313 m / z, Cityscapes' baseline; 0 for the
  sky) and, unless ``instance: false``, instance (offsets to the centroid of each car's or
  person's visible pixels, Sener & Koltun's third task); Cityscapes' intrinsics scaled to
  ``image_size`` (default 64x128, Cityscapes' 1:2).

Splits mirror the community layout: ``n_train`` images play its ``train/`` folder and
``n_test`` its ``val/`` folder (this project's test split); ``val_size`` of the train images
are held out as the validation split by the same code the real loaders use.  Image i of a
split depends only on (seed, split, i): a larger ``n_train`` keeps the first images.
``export_layout`` (or ``python -m mtlpareto.data.export_scenes``) writes the same images in the
community ``.npy`` layout, and the `nyuv2` / `cityscapes` kinds read it back into exactly the
tensors `build` returns (tested), so generated and real data go through one loader.

Processed: images uint8 [N, 3, H, W]; semantic int8 [N, H, W]; depth float16 [N, 1, H, W];
normal float16 [N, 3, H, W]; instance float16 [N, 2, H, W] (250 off instances).  1,000
indoor images at 96x128 take 147 MB: images 37, labels 12, depth 25, normals 74 (street at
64x128: 82 MB).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from mtlpareto.data import DATASETS
from mtlpareto.data.cityscapes import cityscapes_tasks
from mtlpareto.data.nyuv2 import nyuv2_tasks
from mtlpareto.data.dense_layout import DenseProblem, check_augment, hold_out, write_split
from mtlpareto.data.scene_renderer import CITYSCAPES7_CLASSES, NYU13_CLASSES, disparity_from_depth, indoor_scene, instance_offsets, render, street_scene, value_noise_textures
from mtlpareto.errors import ConfigError
from mtlpareto.tasks import Task
from mtlpareto.tasks.instance import IGNORE_VALUE as OFFSET_IGNORE

VARIANTS = ("indoor", "street")
DEFAULT_SIZE = {"indoor": (96, 128), "street": (64, 128)}
_SPLIT_STREAM = {"train": 0, "test": 1}
_TEXTURE_STREAM = 2


def _check(variant: object, image_size: object, n_train: object = 1, n_test: object = 1, noise: object = 0.0, workers: object = 0) -> tuple[str, tuple[int, int]]:
    if variant not in VARIANTS:
        raise ConfigError(f"scenes: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    size = DEFAULT_SIZE[variant] if image_size is None else image_size
    if not isinstance(size, (list, tuple)) or len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in size):
        raise ConfigError(f"scenes: image_size must be [height, width] with integers >= 8, got {image_size!r}")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"scenes: {key} must be a positive integer, got {value!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 0.5:
        raise ConfigError(f"scenes: noise must be a number in [0, 0.5) (std of the pixel noise on the [0, 1] scale), got {noise!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"scenes: workers must be a non-negative integer (0 = in this process), got {workers!r}")
    return str(variant), (int(size[0]), int(size[1]))


def target_folders(variant: str, instance: bool = True) -> dict[str, str]:
    """Layout folder -> target kind of a variant (what the nyuv2 / cityscapes loaders read)."""
    if variant == "indoor":
        return {"label": "label", "depth": "depth", "normal": "normal"}
    folders = {"label_7": "label", "depth": "disparity"}
    if instance:
        folders["instance"] = "offset"
    return folders


def render_sample(variant: str, height: int, width: int, seed: int, split: str, index: int, noise: float, textures: np.ndarray) -> dict[str, np.ndarray]:
    """One image and its maps, channel-last as in the layout: image uint8 [H, W, 3], label int8 [H, W],
    depth float32 [H, W, 1], normal float32 [H, W, 3] (indoor), instance float32 [H, W, 2] (street)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_STREAM[split], int(index)]))
    scene = (indoor_scene if variant == "indoor" else street_scene)(rng, height, width)
    view = render(scene, textures, rng, noise)
    out = {"image": view.image, "label": view.label.astype(np.int8)}
    if variant == "indoor":
        out["depth"] = view.depth.astype(np.float32)[..., None]
        out["normal"] = view.normal.astype(np.float32)
    else:
        out["depth"] = disparity_from_depth(view.depth, scene.camera).astype(np.float32)[..., None]
        out["instance"] = np.moveaxis(instance_offsets(view.instance, OFFSET_IGNORE), 0, -1).astype(np.float32)
    return out


def _render_range(args: tuple) -> list[dict[str, np.ndarray]]:
    variant, height, width, seed, split, start, stop, noise = args
    textures = value_noise_textures(np.random.default_rng(np.random.SeedSequence([int(seed), _TEXTURE_STREAM])))
    return [render_sample(variant, height, width, seed, split, i, noise, textures) for i in range(start, stop)]


def render_split(variant: str, height: int, width: int, seed: int, split: str, n: int, noise: float = 0.02, workers: int = 0) -> dict[str, np.ndarray]:
    """`n` samples of a split, stacked: {"image": [n, H, W, 3], "label": [n, H, W], ...}; the same for any `workers`."""
    if workers <= 1:
        samples = _render_range((variant, height, width, seed, split, 0, n, noise))
    else:
        bounds = np.linspace(0, n, min(workers, n) * 4 + 1).astype(int)
        chunks = [(variant, height, width, seed, split, int(a), int(b), noise) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        # Processes, not threads: the renderer is numpy-bound Python.  Order is kept by map.
        with ProcessPoolExecutor(max_workers=workers) as pool:
            samples = [s for part in pool.map(_render_range, chunks) for s in part]
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def _to_tensors(arrays: dict[str, np.ndarray]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    images = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arrays["image"], -1, 1)))
    targets = {"semantic": torch.from_numpy(arrays["label"].copy()), "depth": torch.from_numpy(np.ascontiguousarray(np.moveaxis(arrays["depth"], -1, 1))).half()}
    for key in ("normal", "instance"):
        if key in arrays:
            targets[key] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arrays[key], -1, 1))).half()
    return images, targets


def scenes_tasks(variant: str, instance: bool = True) -> list[Task]:
    """The real datasets' task objects: a model trained on scenes is scored like one on NYUv2 / Cityscapes."""
    return nyuv2_tasks() if variant == "indoor" else cityscapes_tasks(7, instance)


def export_layout(directory: Path, variant: str = "indoor", n_train: int = 800, n_test: int = 200, image_size: list[int] | None = None, seed: int = 0, noise: float = 0.02, instance: bool = True, workers: int = 0) -> dict[str, int]:
    """Write the scenes of `build` in the community layout: train images to train/, test images to val/."""
    variant, (height, width) = _check(variant, image_size, n_train, n_test, noise, workers)
    folders = target_folders(variant, instance)
    layout_key = {"label": "label", "label_7": "label", "depth": "depth", "normal": "normal", "instance": "instance"}
    for split, folder, n in (("train", "train", n_train), ("test", "val", n_test)):
        arrays = render_split(variant, height, width, seed, split, n, noise, workers)
        write_split(Path(directory), folder, arrays["image"], {f: arrays[layout_key[f]] for f in folders}, folders)
    return {"train": n_train, "val": n_test}


@DATASETS.register("scenes")
class ScenesKind:
    """Rendered indoor (NYUv2-like) or street (Cityscapes-like) scenes; see the module docstring."""

    problem = DenseProblem

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        variant, _ = _check(spec.get("variant", "indoor"), spec.get("image_size"), spec.get("n_train", 1), spec.get("n_test", 1), spec.get("noise", 0.0), spec.get("workers", 0))
        check_augment(spec.get("augment"), "scenes")
        return scenes_tasks(variant, bool(spec.get("instance", True)))

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        _, size = _check(spec.get("variant", "indoor"), spec.get("image_size"))
        return (3, *size)

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        variant, size = _check(spec.get("variant", "indoor"), spec.get("image_size"))
        return {"scenes": {"variant": variant, "image_size": list(size), "files": "none (rendered at build)"}}

    @staticmethod
    def build(
        root: Path,
        variant: str = "indoor",
        n_train: int = 800,
        n_test: int = 200,
        val_size: int = 100,
        image_size: list[int] | None = None,
        seed: int = 0,
        noise: float = 0.02,
        instance: bool = True,
        augment: bool | dict | None = None,
        workers: int = 0,
    ) -> dict:
        variant, (height, width) = _check(variant, image_size, n_train, n_test, noise, workers)
        augment = check_augment(augment, "scenes")
        folders = target_folders(variant, instance)
        x_train, y_train = _to_tensors(_select(render_split(variant, height, width, seed, "train", n_train, noise, workers), instance))
        x_test, y_test = _to_tensors(_select(render_split(variant, height, width, seed, "test", n_test, noise, workers), instance))
        train, val = hold_out(x_train, y_train, val_size, seed, "scenes")
        kinds = {"semantic": "label", "depth": "depth" if variant == "indoor" else "disparity"}
        if variant == "indoor":
            kinds["normal"] = "normal"
        elif instance:
            kinds["instance"] = "offset"
        return {
            "train": train,
            "val": val,
            "test": (x_test, y_test),
            "tasks": list(kinds),
            "meta": {
                "kind": "scenes",
                "variant": variant,
                "image_shape": [3, height, width],
                "classes": list(NYU13_CLASSES if variant == "indoor" else CITYSCAPES7_CLASSES),
                "sizes": {"train": len(train[0]), "val": len(val[0]), "test": len(x_test)},
                "seed": seed,
                "noise": noise,
                "augment": augment,
                "target_kinds": kinds,
                "layout_folders": folders,
                "reference": "procedural stand-in for NYUv2 (indoor) / Cityscapes (street), data/scene_renderer.py",
            },
        }


def _select(arrays: dict[str, np.ndarray], instance: bool) -> dict[str, np.ndarray]:
    return arrays if instance else {k: v for k, v in arrays.items() if k != "instance"}
