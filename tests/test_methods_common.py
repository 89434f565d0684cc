"""Every method: a real training step; every baseline: resumable state, option checking, registration."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, StepContext, build_method, standalone_options
from mtlpareto.models import build_model

from method_helpers import BASELINES, PREFS, _mtl, _forward, _data, _flat_grad, _kwargs, _options


@pytest.mark.parametrize("name", BASELINES)
def test_state_dict_round_trip_reproduces_the_next_step(name):
    # Three tasks, so that PCGrad's visiting order (generator state) matters.
    model = _mtl(n_tasks=3)
    spec = {"name": name, **_options(name)}
    torch.manual_seed(0)
    method = build_method(spec, n_tasks=3, **_kwargs(name, 3))
    optimizer = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.05)
    for step in range(3):
        optimizer.zero_grad()
        losses, z = _forward(model, *_data(step, n_tasks=3))
        method.backward(StepContext(model, losses, z, step=step, epoch=step))
        optimizer.step()
        method.end_epoch(step, losses.detach() * (1 + 0.1 * step))
    buffer = io.BytesIO()  # through a checkpoint file, as the trainer does
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)  # the restored run must not depend on the global stream
    restored = build_method(spec, n_tasks=3, **_kwargs(name, 3))
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    results = []
    for m in (method, restored):
        twin = copy.deepcopy(model)
        losses, z = _forward(twin, *_data(99, n_tasks=3))
        weights = m.backward(StepContext(twin, losses, z, step=3, epoch=3))
        results.append((weights, _flat_grad(twin.parameters())))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


@pytest.mark.parametrize(
    "name,option,value",
    [
        ("uncertainty", "form", "gaussian"),
        ("gradnorm", "alpha", -1.0),
        ("gradnorm", "lr", 0.0),
        ("gradnorm", "optimizer", "rmsprop"),
        ("dwa", "temperature", 0.0),
        ("rlw", "seed", -3),
        ("pcgrad", "reduction", "max"),
        ("cagrad", "c", -0.1),
        ("cagrad", "rescale", 3),
        ("graddrop", "leak", 1.5),
        ("graddrop", "sum_batch", "yes"),
        ("pareto_mtl", "init_steps", 2.5),
        ("pareto_mtl", "eps", -1.0),
        ("nash_mtl", "max_norm", -1.0),
        ("nash_mtl", "update_weights_every", 0),
        ("aligned_mtl", "scale", "max"),
        ("famo", "w_lr", 0.0),
        ("famo", "gamma", -0.5),
    ],
)
def test_invalid_options_raise_config_errors_naming_the_option(name, option, value):
    with pytest.raises(ConfigError, match=option):
        build_method({"name": name, option: value}, n_tasks=2, **_kwargs(name))


def test_pareto_mtl_rejects_a_preference_outside_its_grid():
    with pytest.raises(ConfigError, match="preference_set"):
        build_method({"name": "pareto_mtl"}, n_tasks=2, preference=(0.3, 0.7), preference_set=PREFS)


def test_every_baseline_is_registered_with_a_label():
    for name in BASELINES:
        assert name in METHODS and METHODS.get(name).label
    assert METHODS.get("pareto_mtl").sweep == "preferences"




@pytest.mark.parametrize("name", [n for n in METHODS.names() if not METHODS.get(n).needs_validation_batches])  # Auto-Lambda: its own file
def test_every_method_trains_two_steps_and_moves_the_shared_weights(name):
    torch.manual_seed(0)
    model = build_model("lenet", [10, 10], (1, 28, 28))
    method = build_method({"name": name}, n_tasks=2, **standalone_options(name, 2))
    optimizer = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.shared_parameters()]
    g = torch.Generator().manual_seed(1)
    for step in range(2):
        x, y = torch.randn(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32, 2), generator=g)
        optimizer.zero_grad()
        outputs, z, copies = model.forward_for_step(x, method.uses_representation)  # the training loop's forward
        losses = torch.stack([nn.functional.cross_entropy(o, y[:, t]) for t, o in enumerate(outputs)])
        weights = method.backward(StepContext(model, losses, z, step=step, task_representations=copies))
        assert weights.shape == (2,) and torch.isfinite(weights).all()
        optimizer.step()
        method.end_epoch(step, losses.detach())
    moved = sum(float((a.detach() - b).abs().sum()) for a, b in zip(model.shared_parameters(), before))
    assert moved > 0
