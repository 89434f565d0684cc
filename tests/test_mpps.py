"""MPPS (models/mpps.py): exclusive capacity, target updates, mask distributions and their
gradients against enumeration / Monte Carlo / closed forms, schedules, hooks and evaluation."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from conftest import tiny_params
from mtlpareto.config import load_profile
from mtlpareto.data.store import save_processed
from mtlpareto.errors import ConfigError
from mtlpareto.methods import StepContext, build_method
from mtlpareto.models import Backbone, HardSharing, build_model
from mtlpareto.models.mpps import (
    MPPS,
    SCHEDULES,
    exclusive_capacity,
    exclusive_init,
    gaussian_kl,
    bernoulli_kl,
    masks_from_noise,
    model_exclusive_capacity,
    rescale_to_capacity,
    scheduled_capacity,
)
from mtlpareto.training import loop, run_state

EPS = 0.01


# --------------------------------------------------------------------------- EC and targets


def test_exclusive_capacity_of_hand_made_phi():
    phi = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.1], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.2, 0.7, 0.4]], dtype=torch.float64)
    # 1 - (sum - max) / (T - 1), worked by hand
    expected = torch.tensor([1.0, 0.9, 0.5, 0.0, 1 - 0.6 / 2], dtype=torch.float64)
    torch.testing.assert_close(exclusive_capacity(phi), expected)
    # The model's EC: the mean over all neurons of all layers (not the mean of layer means).
    layers = [phi[:2], phi[2:]]
    assert float(model_exclusive_capacity(layers)) == pytest.approx(float(expected.mean()))
    # Exclusive initialisation: EC 1 - eps, each task owning a contiguous block.
    init = exclusive_init(7, 3, EPS)
    assert torch.allclose(exclusive_capacity(init), torch.full((7,), 1 - EPS))
    assert init.argmax(1).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_target_update_scales_ec_by_k_exactly_and_clamps():
    g = torch.Generator().manual_seed(0)
    phis = [(torch.rand(12, 3, generator=g, dtype=torch.float64) * 0.5 + 0.45) for _ in range(2)]  # in [0.45, 0.95]
    ec = float(model_exclusive_capacity(phis))
    k = 0.6
    target = rescale_to_capacity(phis, k * ec, EPS)
    # 1 - k (1 - phi) stays inside [eps, 1 - eps] here: no clamping, so EC(Pi) = k EC(Phi) exactly.
    for t, p in zip(target, phis):
        torch.testing.assert_close(t, 1 - k * (1 - p))
    assert float(model_exclusive_capacity(target)) == pytest.approx(k * ec, abs=1e-12)
    # Per neuron too (the update is affine in phi): EC_n(Pi) = k EC_n(Phi).
    torch.testing.assert_close(exclusive_capacity(target[0]), k * exclusive_capacity(phis[0]))
    # k > 1 pushes guests below eps: clamped there, and nothing leaves [eps, 1 - eps].
    clamped = rescale_to_capacity(phis, 3.0 * ec, EPS)
    raw = [1 - 3.0 * (1 - p) for p in phis]
    assert any(bool((r < EPS).any()) for r in raw)
    for c, r in zip(clamped, raw):
        assert float(c.min()) >= EPS and float(c.max()) <= 1 - EPS
        assert torch.equal(c[r < EPS], torch.full_like(c[r < EPS], EPS))
        torch.testing.assert_close(c[(r >= EPS) & (r <= 1 - EPS)], r[(r >= EPS) & (r <= 1 - EPS)])


def test_rescaling_the_exclusive_init_gives_the_scheduled_ec():
    """Without target updates Pi is the initial Phi rescaled: its EC is the schedule's value
    exactly (the clamped owner entries are the max and cancel)."""
    phi0 = [exclusive_init(10, 3, EPS).double(), exclusive_init(6, 3, EPS).double()]
    for capacity in (1 - EPS, 0.7, 0.3, EPS):
        target = rescale_to_capacity(phi0, capacity, EPS)
        assert float(model_exclusive_capacity(target)) == pytest.approx(capacity, abs=1e-12)


# --------------------------------------------------------------------------- masks


def test_gaussian_masks_have_mean_one_and_variance_one_minus_phi_over_phi():
    phi = torch.tensor([[0.95, 0.2, 0.5], [0.3, 0.9, 0.7]], dtype=torch.float64)  # owners: task 0, task 1
    n = 200_000
    g = torch.Generator().manual_seed(0)
    masks = torch.stack([masks_from_noise(phi, torch.randn(phi.shape, generator=g, dtype=torch.float64), "gaussian") for _ in range(n)])
    guests = ~torch.nn.functional.one_hot(phi.argmax(1), 3).bool()
    mean, var = masks.mean(0), masks.var(0)
    expected_var = (1 - phi) / phi
    # Monte Carlo: standard errors var/sqrt(n) of the mean, var*sqrt(2/n) of the variance; 5 of them.
    assert torch.all((mean[guests] - 1).abs() < 5 * (expected_var[guests] / n).sqrt())
    assert torch.all((var[guests] - expected_var[guests]).abs() < 5 * expected_var[guests] * (2 / n) ** 0.5)
    assert torch.equal(masks[:, ~guests], torch.ones_like(masks[:, ~guests]))  # the owner is never noised


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_the_owner_always_keeps_its_neuron(kind):
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        phi = torch.rand(8, 3, generator=g) * (1 - 2 * EPS) + EPS
        noise = torch.rand(8, 3, generator=g) if kind == "bernoulli" else torch.randn(8, 3, generator=g) * 10
        masks = masks_from_noise(phi, noise, kind)
        assert torch.equal(masks[torch.arange(8), phi.argmax(1)], torch.ones(8))
    # An owner barely ahead of a guest with phi ~ 1 - eps: still always 1, the guest sometimes 0.
    phi = torch.tensor([[0.5, 0.49]])
    draws = torch.stack([masks_from_noise(phi, torch.rand(1, 2, generator=g), "bernoulli") for _ in range(200)])
    assert torch.equal(draws[:, 0, 0], torch.ones(200)) and 0 < float(draws[:, 0, 1].mean()) < 1


def _toy_mpps(mask: str, kl_weight: float = 0.0) -> MPPS:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Tanh(), nn.Conv2d(2, 3, 1))
    heads = [nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 1)) for _ in range(2)]
    model = MPPS(encoder, heads, mask=mask, layers=1, frozen_epochs=0, kl_weight=kl_weight).double()
    with torch.no_grad():
        model.phi[0].copy_(torch.tensor([[0.8, 0.3], [0.6, 0.45], [0.35, 0.7]], dtype=torch.float64))
    return model


def _toy_losses(model: MPPS, outputs: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([((o.squeeze(-1) - float(t)) ** 2).mean() for t, o in enumerate(outputs)])


def test_reinforce_estimator_is_unbiased_for_the_expected_loss_gradient():
    """Enumerate every guest mask: the probability-weighted mean of `private_gradients` (REINFORCE,
    KL off) equals the exact gradient of E_m[sum_t L_t(theta * m_t)]."""
    model = _toy_mpps("bernoulli")
    model.train()
    x = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    phi = model.phi[0]
    owners = phi.detach().argmax(1)  # [0, 0, 1]
    guests = [(c, t) for c in range(3) for t in range(2) if owners[c] != t]
    expected_estimator = torch.zeros_like(phi)
    exact_objective = torch.zeros((), dtype=torch.float64)
    for bits in itertools.product([0, 1], repeat=len(guests)):
        noise = torch.full((3, 2), 0.5, dtype=torch.float64)
        for (c, t), b in zip(guests, bits):
            noise[c, t] = 0.0 if b else 1.0  # u < phi  <=>  m = 1
        model._noise = [noise]
        losses = _toy_losses(model, model._masked_outputs(x))
        probability = torch.prod(torch.stack([phi[c, t] if b else 1 - phi[c, t] for (c, t), b in zip(guests, bits)]))
        (_, grad), = model.private_gradients(losses)
        expected_estimator += probability.detach() * grad
        exact_objective = exact_objective + probability * losses.detach().sum()
    (exact,) = torch.autograd.grad(exact_objective, phi)
    torch.testing.assert_close(expected_estimator, exact)
    assert float(exact.abs().sum()) > 0


def test_gaussian_mask_gradient_is_the_reparameterised_task_loss_plus_the_kl():
    model = _toy_mpps("gaussian", kl_weight=0.5)
    model.train()
    x = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model._noise = [torch.randn(3, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)]
    losses = _toy_losses(model, model._masked_outputs(x))
    (_, grad), = model.private_gradients(losses)
    # Reference: masks written out by hand, KL in closed form.
    phi = model.phi[0]
    owner = torch.nn.functional.one_hot(phi.detach().argmax(1), 2).bool()
    masks = torch.where(owner, torch.ones_like(phi), 1 + ((1 - phi) / phi).sqrt() * model._noise[0])
    total = torch.zeros((), dtype=torch.float64)
    for t, head in enumerate(model.heads):
        h = model.encoder[:2](x)
        z = model.encoder[2](h) * masks[:, t].view(1, -1, 1, 1)
        total = total + ((head(z).squeeze(-1) - float(t)) ** 2).mean()
    target = model.targets()[0]
    var_q, var_p = (1 - phi) / phi, (1 - target) / target
    total = total + 0.5 * (0.5 * (torch.log(var_p / var_q) + var_q / var_p - 1)).sum()
    (reference,) = torch.autograd.grad(total, phi)
    torch.testing.assert_close(grad, reference)


def test_kl_terms_match_their_closed_forms_by_monte_carlo():
    q, p = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)
    # Bernoulli: exact sum over {0, 1}.
    exact = q * torch.log(q / p) + (1 - q) * torch.log((1 - q) / (1 - p))
    assert float(bernoulli_kl(q, p)) == pytest.approx(float(exact))
    # Gaussian: E_q[log q(m) - log p(m)] by Monte Carlo.
    sq, sp = ((1 - q) / q).sqrt(), ((1 - p) / p).sqrt()
    m = 1 + sq * torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_ratio = torch.distributions.Normal(1.0, sq).log_prob(m) - torch.distributions.Normal(1.0, sp).log_prob(m)
    assert float(gaussian_kl(q, p)) == pytest.approx(float(log_ratio.mean()), abs=5 * float(log_ratio.std()) / 400_000**0.5)


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule,steps", [("linear", None), ("step", 5), ("quad", None), ("separ", None), ("fullshare", None)])
@pytest.mark.parametrize("epochs,frozen", [(20, 3), (200, 25), (7, 0), (3, 0)])
def test_every_schedule_reaches_its_end_value_on_time_and_stays(schedule, steps, epochs, frozen):
    values = [scheduled_capacity(schedule, e, epochs, frozen, EPS, steps) for e in range(epochs)]
    high, low = 1 - EPS, EPS
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))  # never increases
    if schedule == "separ":
        assert values == [high] * epochs
        return
    if schedule == "fullshare":
        assert values == [low] * epochs
        return
    end = epochs - 1 - frozen  # the first epoch of the last course
    assert values[: frozen + 1] == [high] * (frozen + 1)  # the first course, lengthened by the frozen epochs
    assert values[end:] == pytest.approx([low] * (epochs - end))
    assert values[end - 1] > low  # reached on time, not before
    if schedule == "step":
        levels = len(set(round(v, 12) for v in values))
        assert levels == steps if epochs - 1 - 2 * frozen >= steps else levels <= steps  # too few epochs skip courses
    if schedule == "linear":
        middle = values[frozen : end + 1]
        assert max(abs((a - b) - (middle[0] - middle[1])) for a, b in zip(middle, middle[1:])) < 1e-12  # equal decrements


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_target_follows_the_schedule_without_target_updates(schedule):
    model = build_model("segnet", [3, 1], (3, 32, 32), width=0.125, architecture="mpps",
                        architecture_options={"layers": 3, "schedule": schedule, "frozen_epochs": 1, "target_update": False, "steps": 3 if schedule == "step" else None})
    epochs = 8
    assert float(model_exclusive_capacity(model.targets())) == pytest.approx(scheduled_capacity(schedule, 0, epochs, 1, EPS, 3 if schedule == "step" else None), abs=1e-6)
    for epoch in range(epochs):
        record = model.end_epoch(epoch, epochs)
        assert record["target_exclusive_capacity"] == pytest.approx(record["scheduled_capacity"], abs=1e-5)
        assert len(record["layer_exclusive_capacity"]) == 3


# --------------------------------------------------------------------------- the architecture


def test_evaluation_uses_the_full_network_without_masks():
    mpps = build_model("segnet", [3, 1, 3], (3, 32, 32), width=0.125, architecture="mpps", architecture_options={"layers": 4})
    hps = HardSharing(mpps.encoder, list(mpps.heads))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mpps.train()
    masked, _, _ = mpps.forward_for_step(x, False)  # a training step leaves noise behind
    mpps.eval()
    plain = mpps(x)
    reference = hps(x)
    for a, b in zip(plain, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    mpps.train()
    assert not all(torch.allclose(a, b) for a, b in zip(mpps.forward_for_step(x, False)[0], HardSharing(mpps.encoder, list(mpps.heads)).train()(x)))


def test_mask_hooks_exist_only_during_a_masked_forward():
    model = build_model("segnet", [3, 1], (3, 32, 32), width=0.125, architecture="mpps", architecture_options={"layers": 2})
    x = torch.randn(2, 3, 32, 32)
    seen = []
    original = model.encoder.forward

    def spy(inp):
        seen.append([len(site._forward_hooks) for site in model.sites])
        return original(inp)

    model.encoder.forward = spy
    model.train()
    model.forward_for_step(x, False)
    assert seen == [[1, 1], [1, 1]]  # one hook per site while each task's forward runs
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    # An error inside the forward does not leave hooks behind either.
    model.encoder.forward = lambda inp: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        model.forward_for_step(x, False)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_masks_sit_after_the_batchnorm_of_a_conv_block():
    model = build_model("segnet", [3, 1], (3, 32, 32), width=0.125, architecture="mpps", architecture_options={"layers": 6})
    assert all(isinstance(s, nn.BatchNorm2d) for s in model.sites)
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    bare = MPPS(encoder, [nn.Identity(), nn.Identity()], layers=2)
    assert all(isinstance(s, nn.Conv2d) for s in bare.sites)


@pytest.mark.parametrize(
    "options,match",
    [
        ({"mask": "uniform"}, "mask must be one of bernoulli, gaussian"),
        ({"layers": 0}, "layers must be a positive integer"),
        ({"layers": 99}, "layers 99 but the encoder"),
        ({"schedule": "cosine"}, "schedule must be one of"),
        ({"schedule": "step"}, "schedule step needs steps"),
        ({"steps": 4}, "steps is an option of schedule step only"),
        ({"epsilon": 0.6}, "epsilon must be a number in"),
        ({"target_update": "yes"}, "target_update must be true or false"),
        ({"frozen_epochs": -1}, "frozen_epochs must be a non-negative integer"),
        ({"mask_lr": 0}, "mask_lr must be a positive number"),
    ],
)
def test_bad_options_raise_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        build_model("segnet", [3, 1], (3, 32, 32), width=0.125, architecture="mpps", architecture_options=options)


def test_params_yaml_checks_architecture_options():
    params = tiny_params(methods={"uniform": {}})
    params["profiles"]["tiny"]["experiments"]["multimnist"]["model"] = {"name": "lenet", "architecture": "mpps", "architecture_options": {"mask": "bernoulli", "layer": 2}}
    with pytest.raises(ConfigError, match=r"multimnist\.model\.architecture_options\.layer: unknown option"):
        load_profile(params)
    params["profiles"]["tiny"]["experiments"]["multimnist"]["model"]["architecture_options"] = {"mask": "beta", "layers": 2}
    from mtlpareto.config import build_components

    with pytest.raises(ConfigError, match=r"multimnist\.model: architecture mpps: mask must be one of"):
        build_components(load_profile(params))


def test_representation_methods_fail_clearly_and_gradient_methods_compose():
    model = build_model("segnet", [3, 1], (3, 32, 32), width=0.125, architecture="mpps", architecture_options={"layers": 3})
    model.train()
    x = torch.randn(2, 3, 32, 32)
    outputs, z, copies = model.forward_for_step(x, True)
    losses = torch.stack([o.pow(2).mean() for o in outputs])
    with pytest.raises(ConfigError, match="no shared representation"):
        build_method({"name": "mgda_ub"}, 2).backward(StepContext(model, losses, z, task_representations=copies))
    outputs, z, _ = model.forward_for_step(x, False)
    losses = torch.stack([o.pow(2).mean() for o in outputs])
    private = model.private_gradients(losses)
    build_method({"name": "pcgrad"}, 2).backward(StepContext(model, losses, z))
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(float(g.abs().sum()) > 0 for _, g in private)
    assert {id(p) for p, _ in private} == {id(p) for p in model.phi}
    shared = {id(p) for p in model.shared_parameters()} | {id(p) for p in model.task_parameters()}
    assert not shared & {id(p) for p in model.phi}  # the masks are the method's neither


# --------------------------------------------------------------------------- training


def _dataset(path, n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n, 2), generator=g)
    save_processed({"train": (x, y), "val": (x[:16], y[:16]), "test": (x[:16], y[:16]), "tasks": ["left", "right"], "meta": {}}, path)


def _mpps_spec(mask="bernoulli", method="uniform", epochs=3):
    prof = load_profile(tiny_params(methods={method: {}}, epochs=epochs))
    spec = prof.run_spec(prof.runs()[0])
    spec["model"] = {"name": "lenet", "architecture": "mpps", "architecture_options": {"mask": mask, "layers": 2, "frozen_epochs": 0, "mask_lr": 0.05}}
    spec["train"]["batch_size"] = 32
    return spec


def _train(spec, tmp_path, name):
    ckpt = tmp_path / name / "model.pt"
    loop.train_run(spec, tmp_path / "data.pt", ckpt, tmp_path / name / "log.jsonl", progress=False)
    return torch.load(ckpt, weights_only=False)


@pytest.mark.parametrize("mask", ["bernoulli", "gaussian"])
def test_mpps_training_logs_ec_resumes_exactly_and_evaluates_unmasked(tmp_path, monkeypatch, mask):
    from mtlpareto.training.evaluate import evaluate_run, load_trained_model

    _dataset(tmp_path / "data.pt")
    spec = _mpps_spec(mask)
    reference = _train(spec, tmp_path, "ref")
    log = [json.loads(line)["sharing"] for line in (tmp_path / "ref" / "log.jsonl").read_text().splitlines()]
    assert [e["scheduled_capacity"] for e in log] == pytest.approx([1 - EPS, 0.5, EPS])
    assert reference["sharing_log"] == log
    assert log[0]["exclusive_capacity"] != log[-1]["exclusive_capacity"]  # Phi moved

    real_save = run_state.atomic_torch_save
    calls = {"n": 0}

    def save_then_die(obj, path):
        real_save(obj, path)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_state, "atomic_torch_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(spec, tmp_path, "killed")
    monkeypatch.setattr(run_state, "atomic_torch_save", real_save)
    resumed = _train(spec, tmp_path, "killed")
    assert all(torch.equal(reference["model"][k], resumed["model"][k]) for k in reference["model"])
    assert resumed["sharing_log"] == log

    from mtlpareto.data.store import load_processed

    data = load_processed(tmp_path / "data.pt")
    model, _ = load_trained_model(tmp_path / "ref" / "model.pt", data)
    assert not model.training and all(len(m._forward_hooks) == 0 for m in model.modules())
    result = evaluate_run(spec, data, tmp_path / "ref" / "model.pt")
    assert result["sharing_log"] == log and set(result["splits"]) == {"val", "test"}


def test_ec_figure_draws_each_group_mean_over_seeds_and_skips_hard_sharing(tmp_path):
    import pandas as pd

    from mtlpareto.figures import FIGURES
    from mtlpareto.figures.ec_curves import ec_groups

    def record(experiment, seed, learned, schedule="linear"):
        log = [{"exclusive_capacity": v, "layer_exclusive_capacity": [v, v], "target_exclusive_capacity": t, "scheduled_capacity": t,
                "schedule": schedule, "mask": "bernoulli", "target_update": True} for v, t in zip(learned, (0.99, 0.5, 0.01))]
        return {"experiment": experiment, "method": "uniform", "variant": "default", "seed": seed, "sharing_log": log}

    records = [record("a", 0, [0.9, 0.6, 0.2]), record("a", 1, [0.8, 0.4, 0.0]), record("b", 0, [0.99, 0.99, 0.99], "separ"),
               {"experiment": "hps", "method": "uniform", "variant": "default", "seed": 0}]
    curves = ec_groups(records)
    assert len(curves) == 2
    a = next(v for k, v in curves.items() if k.startswith("a:"))
    assert a["learned"] == pytest.approx([0.85, 0.5, 0.1]) and a["layers"].shape == (2, 3)
    paths = []
    for i, r in enumerate(records):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(r))
    df = pd.DataFrame({"source": [str(p) for p in paths]})
    fig = FIGURES.get("ec_curves")(df, "t")
    left = fig.axes[0]
    assert len(left.lines) == 3 * 2  # learned, target, schedule per group
    assert list(left.lines[0].get_ydata()) == pytest.approx([0.85, 0.5, 0.1])
    with pytest.raises(ConfigError, match="no run of this experiment logged"):
        FIGURES.get("ec_curves")(pd.DataFrame({"source": [str(paths[-1])]}), "t")
