"""A toy task type, dataset kind, backbone, architecture and weighting method, each one class
plus one registry line (here: the decorators in this file), trained and evaluated by the
unchanged training loop and evaluator."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch
from torch import nn

from mtlpareto.config import load_profile
from mtlpareto.data import DATASETS
from mtlpareto.data.store import save_processed
from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, Method, StepContext
from mtlpareto.models import ARCHITECTURES, MODELS, Backbone, MTLModel
from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.training import evaluate_run, train_run


class _SquaredErrorMeter(MetricMeter):
    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self.total += float(((output.squeeze(-1) - target) ** 2).sum())
        self.count += target.numel()

    def compute(self) -> dict:
        return {"mse": self.total / self.count}


class ScalarRegressionTask(Task):
    type_name = "toy_scalar_regression"
    metrics = {"mse": False}
    primary = "mse"

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((output.squeeze(-1) - target) ** 2).mean()

    def meter(self) -> MetricMeter:
        return _SquaredErrorMeter()


class ToyRegressionKind:
    """Two linear regression targets of a 4-d input, stored as a dict of per-task targets."""

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        return [ScalarRegressionTask("a"), ScalarRegressionTask("b")]

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (4,)

    @staticmethod
    def fetch(spec: dict, root) -> dict:
        return {}

    @staticmethod
    def build(root, n: int = 256) -> dict:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 4, generator=g)
        y = {"a": x @ torch.tensor([1.0, -1.0, 0.5, 0.0]), "b": x @ torch.tensor([0.0, 1.0, 1.0, -0.5])}
        split = lambda lo, hi: (x[lo:hi], {k: v[lo:hi] for k, v in y.items()})  # noqa: E731
        return {"train": split(0, 192), "val": split(192, 224), "test": split(224, n), "meta": {}}


def toy_mlp(task_outputs: list[int], in_channels: int = 4, input_size: int = 4, hidden: int = 8) -> Backbone:
    return Backbone(nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU()), [nn.Linear(hidden, n) for n in task_outputs])


class TaskAdapters(MTLModel):
    """Shared encoder, then a task-specific adapter and head: no single shared representation."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        width = backbone.heads[0].in_features
        self.adapters = nn.ModuleList(nn.Linear(width, width) for _ in backbone.heads)
        self.heads = nn.ModuleList(backbone.heads)

    @property
    def n_tasks(self) -> int:
        return len(self.heads)

    def forward_with_representation(self, x):
        z = self.encoder(x)
        return [head(adapter(z)) for adapter, head in zip(self.adapters, self.heads)], None

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.adapters.parameters()
        yield from self.heads.parameters()


class MaxLoss(Method):
    """Descend on the currently worst task only."""

    def backward(self, ctx: StepContext) -> torch.Tensor:
        weights = torch.zeros(self.n_tasks)
        weights[int(ctx.losses.detach().argmax())] = 1.0
        ctx.backward_weighted(weights)
        return weights


@pytest.fixture
def toy_components():
    TASK_TYPES.register("toy_scalar_regression")(ScalarRegressionTask)
    DATASETS.register("toy_regression")(ToyRegressionKind)
    MODELS.register("toy_mlp")(toy_mlp)
    ARCHITECTURES.register("toy_task_adapters")(TaskAdapters)
    METHODS.register("toy_max_loss")(MaxLoss)
    yield
    for registry, name in ((TASK_TYPES, "toy_scalar_regression"), (DATASETS, "toy_regression"), (MODELS, "toy_mlp"), (ARCHITECTURES, "toy_task_adapters"), (METHODS, "toy_max_loss")):
        registry.unregister(name)


def _profile(methods: dict, architecture: str = "toy_task_adapters"):
    return load_profile({
        "profile": "toy",
        "profiles": {"toy": {
            "device": "cpu", "seeds": [0],
            "datasets": {"toy": {"kind": "toy_regression", "n": 256}},
            "experiments": {"toy": {
                "dataset": "toy", "model": {"name": "toy_mlp", "architecture": architecture},
                "train": {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.01},
                "methods": methods,
            }},
        }},
    })


@pytest.mark.parametrize("method", ["toy_max_loss", "mgda", "uniform"])
def test_toy_components_train_and_evaluate_through_the_one_loop(toy_components, tmp_path, method):
    prof = _profile({method: {}})
    run = prof.runs()[0]
    spec = prof.run_spec(run)
    save_processed(ToyRegressionKind.build(None), tmp_path / "toy.pt")
    train_run(spec, tmp_path / "toy.pt", tmp_path / "model.pt", tmp_path / "log.jsonl", progress=False)
    data = torch.load(tmp_path / "toy.pt", weights_only=True)
    record = evaluate_run(spec, data, tmp_path / "model.pt")
    assert set(record["splits"]) == {"val", "test"}
    assert set(record["splits"]["test"]) == {"a", "b"} and set(record["splits"]["test"]["a"]) == {"mse"}
    assert record["tasks"]["a"] == {"type": "toy_scalar_regression", "order": 0, "primary": "mse", "higher_is_better": {"mse": False}}
    # Trained: better than predicting 0 (the targets' variance is about 1.25 and 2.25).
    untrained_mse = {k: float((v ** 2).mean()) for k, v in data["test"][1].items()}
    assert all(record["splits"]["test"][k]["mse"] < untrained_mse[k] for k in ("a", "b"))


def test_a_representation_method_on_an_architecture_without_one_fails_clearly(toy_components, tmp_path):
    prof = _profile({"mgda_ub": {}})
    spec = prof.run_spec(prof.runs()[0])
    save_processed(ToyRegressionKind.build(None), tmp_path / "toy.pt")
    with pytest.raises(ConfigError, match="exposes no shared representation"):
        train_run(spec, tmp_path / "toy.pt", tmp_path / "model.pt", tmp_path / "log.jsonl", progress=False)


def test_unknown_architecture_is_named_with_its_path(toy_components):
    with pytest.raises(ConfigError, match=r"experiments\.toy\.model\.architecture: unknown architecture 'no_such_architecture'"):
        _profile({"uniform": {}}, architecture="no_such_architecture")
