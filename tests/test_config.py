"""params.yaml validation: wrong keys or values fail with a message naming them."""

from __future__ import annotations

import copy
from fractions import Fraction
from math import comb

import pytest

from mtlpareto.config import load_profile, preference_grid
from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS


def test_repository_params_are_valid(repo_params):
    for name in repo_params["profiles"]:
        prof = load_profile(repo_params, name)
        assert prof.runs(), name


def test_quick_profile_matrix(repo_params):
    prof = load_profile(repo_params, "quick")
    runs = prof.runs("multimnist")
    methods = prof.experiment("multimnist")["methods"]
    grid = prof.experiment("multimnist")["preference_grid"]
    n_grid = comb(grid["divisions"] - 1, 1)  # interior lattice points for T=2
    per_seed = {m: {"tasks": 2, "preferences": n_grid, "none": 1}[METHODS.get(m).sweep] for m in methods}
    assert per_seed["single_task"] == 2 and per_seed["linear"] == n_grid
    seeds = {m: (options or {}).get("seeds") or prof.seeds for m, options in methods.items()}
    assert len(runs) == sum(per_seed[m] * len(seeds[m]) for m in methods)
    assert {r.seed for r in runs if r.method == "mgda_ub"} == set(prof.seeds)
    assert len({r.id for r in runs}) == len(runs)
    for run in runs:
        assert prof.run(run.id) == run


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda p: p.update(unknown_top=1), "unknown_top"),
        (lambda p: p["profiles"]["quick"].update(device="tpu"), "device"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["train"].update(optimizer="lbfgs"), "optimizer"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["train"].update(epochs=0), "epochs"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["train"].update(lr_typo=0.1), "lr_typo"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["methods"].update(magic={}), "magic"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["methods"].update(mgda={"normalisation": "l2"}), "methods.mgda.normalisation"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"].update(dataset="nope"), "nope"),
        (lambda p: p["profiles"]["quick"]["datasets"]["multimnist_5k"].update(kind="imagenet"), "imagenet"),
        (lambda p: p["profiles"]["quick"]["datasets"]["multimnist_5k"].update(train_sise=10), "train_sise"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["model"].update(name="vgg"), "vgg"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"].update(figures=["pie"]), "pie"),
        (lambda p: p.update(profile="nightly"), "nightly"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["methods"].update(rlw={"seeds": [0, 0]}), "methods.rlw.seeds"),
        (lambda p: p["profiles"]["quick"]["experiments"]["multimnist"]["methods"].update(rlw={"seeds": []}), "methods.rlw.seeds"),
    ],
)
def test_invalid_params_name_the_problem(repo_params, mutate, fragment):
    params = copy.deepcopy(repo_params)
    mutate(params)
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_profile(params)


def test_schema_defaults_are_filled(repo_params):
    params = copy.deepcopy(repo_params)
    params["profiles"]["quick"]["experiments"]["multimnist"]["train"].pop("momentum")
    prof = load_profile(params)
    assert prof.experiment("multimnist")["train"]["momentum"] == 0.0


@pytest.mark.parametrize("n_tasks, divisions", [(2, 6), (3, 4), (4, 5), (1, 3)])
def test_preference_grid_is_the_simplex_lattice(n_tasks, divisions):
    full = preference_grid(n_tasks, divisions, interior=False)
    interior = preference_grid(n_tasks, divisions, interior=True)
    assert len(full) == comb(divisions + n_tasks - 1, n_tasks - 1)
    if n_tasks > 1:
        assert len(interior) == comb(divisions - 1, n_tasks - 1)
    for point in full:
        assert sum(point) == 1 and all(p >= 0 and (p * divisions).denominator == 1 for p in point)
    assert all(min(p) > 0 for p in interior) or n_tasks == 1
    assert n_tasks == 1 or Fraction(1, divisions) in {p[0] for p in full}


def test_empty_interior_grid_is_an_error():
    with pytest.raises(ConfigError, match="divisions"):
        preference_grid(3, 2, interior=True)


def test_controllable_methods_accept_their_base_options_and_nothing_else(repo_params):
    """phn_epo passes **options on to its bases: their options are accepted, typos are not."""
    params = copy.deepcopy(repo_params)
    methods = params["profiles"]["quick"]["experiments"]["multimnist_ctrl"]["methods"]
    methods["phn_epo"] = {"epo_eps": 1e-3, "hidden_dim": 20, "n_preferences": 2, "eval_points": 5}
    prof = load_profile(params)
    assert prof.experiment("multimnist_ctrl")["methods"]["phn_epo"]["hidden_dim"] == 20
    methods["phn_epo"] = {"hiden_dim": 20}
    with pytest.raises(ConfigError, match=r"methods\.phn_epo\.hiden_dim: unknown option; accepted: .*embedding_dim.*epo_eps.*hidden_dim"):
        load_profile(params)


def test_each_hypernetwork_family_keeps_its_papers_defaults():
    from mtlpareto.methods import build_method

    # Lin et al.: preferences uniform on the simplex, a chunked hypernetwork; PHN: Dirichlet(0.2), no chunking.
    lin = [build_method({"name": name}, 2) for name in ("ctrl_linear", "ctrl_pareto")]
    phn = [build_method({"name": name}, 2) for name in ("phn_ls", "phn_epo")]
    assert all(m.dirichlet_alpha == 1.0 and m.hypernet["chunk_size"] == "auto" and m.hypernet["hidden_dim"] == 64 for m in lin)
    assert all(m.dirichlet_alpha == 0.2 and m.hypernet["chunk_size"] is None and m.hypernet["hidden_dim"] == 100 for m in phn)
    assert build_method({"name": "phn_epo", "epo_eps": 0.01, "hidden_dim": 7}, 2).hypernet["hidden_dim"] == 7


def test_a_method_may_run_on_fewer_seeds_and_its_spec_does_not_carry_them(repo_params):
    params = copy.deepcopy(repo_params)
    params["profiles"]["quick"]["experiments"]["multimnist"]["methods"]["mgda"] = {"normalization": "l2", "seeds": [1]}
    prof = load_profile(params)
    mgda = [r for r in prof.runs("multimnist") if r.method == "mgda"]
    assert [r.seed for r in mgda] == [1]
    assert prof.run_spec(mgda[0])["method"] == {"name": "mgda", "normalization": "l2"}
    with pytest.raises(ConfigError, match="not in the matrix"):
        prof.run("multimnist/mgda/default/seed0")
