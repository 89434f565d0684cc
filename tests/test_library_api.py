"""The README's library example runs as written, and MTLStep applies methods like the trainer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, MTLStep, StepContext, build_method
from mtlpareto.models import HardSharing

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- library-example -->\s*```python\n(.*?)```\s*<!-- /library-example -->", text, re.S)
    assert match, "README.md lost its library example block"
    return match.group(1)


def test_the_readme_example_runs_and_trains():
    namespace: dict = {}
    exec(compile(readme_example(), "README.md example", "exec"), namespace)
    weights, losses = namespace["weights"], namespace["losses"]
    assert weights.shape == (2,) and torch.isclose(weights.sum(), torch.tensor(1.0))
    # Trained: below the loss of the initial network on the same data.
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
    heads = nn.ModuleList([nn.Linear(16, 1) for _ in range(2)])
    x, y = namespace["x"], namespace["y"]
    initial = torch.stack([((h(encoder(x)).squeeze(-1) - y[:, t]) ** 2).mean() for t, h in enumerate(heads)])
    assert bool((losses < initial).all())


@pytest.mark.parametrize("name", [n for n in METHODS.names() if METHODS.get(n).learns == "network" and METHODS.get(n).sweep == "none" and not METHODS.get(n).needs_validation_batches])
def test_mtlstep_sets_the_same_gradients_as_the_trainers_context(name):
    grads = []
    for use_api in (False, True):
        torch.manual_seed(0)
        model = HardSharing(nn.Sequential(nn.Linear(5, 6), nn.Tanh()), [nn.Linear(6, 1) for _ in range(3)])
        x, y = torch.randn(16, 5, generator=torch.Generator().manual_seed(1)), torch.randn(16, 3, generator=torch.Generator().manual_seed(2))
        z = model.encode(x)
        losses = torch.stack([((o.squeeze(-1) - y[:, t]) ** 2).mean() for t, o in enumerate(model.decode(z))])
        if use_api:
            MTLStep(name, 3, model.encoder.parameters(), model.heads.parameters()).backward(losses, representation=z)
        else:
            build_method({"name": name}, 3).backward(StepContext(model, losses, z, jacobian="loop"))
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_mtlstep_errors_name_the_problem():
    encoder = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="representation=z"):
        MTLStep("mgda_ub", 2, encoder.parameters()).backward(torch.ones(2, requires_grad=True))
    with pytest.raises(ConfigError, match="hypernetwork"):
        MTLStep("ctrl_pareto", 2, encoder.parameters())
    with pytest.raises(ConfigError, match=r"\[T\] tensor with T = 2"):
        MTLStep("uniform", 2, encoder.parameters()).backward(torch.ones(3))
    with pytest.raises(ConfigError, match="normalization"):
        MTLStep("mgda", 2, encoder.parameters(), normalization="l3")
