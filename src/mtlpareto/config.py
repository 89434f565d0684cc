"""Load and validate params.yaml; expand it into the run matrix both Snakemake and DVC use.

Structure is checked against the JSON schema (workflow/schemas/params.schema.yaml); each
registered component (dataset kind, model, method) then checks its own options, so a wrong
key or value fails with a message that names its full path in params.yaml.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml

from mtlpareto.errors import ConfigError

SCHEMA_RESOURCE = "schemas/params.schema.yaml"


def load_schema() -> dict:
    text = resources.files("mtlpareto").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def _path_str(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def _fill_defaults(instance: Any, schema: dict, root: dict) -> None:
    """Fill `default` values of the schema in place (jsonschema validates but does not fill)."""
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        _fill_defaults(instance, root["$defs"][ref], root)
        return
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra, root)


def validate_structure(params: dict, source: str = "params.yaml") -> dict:
    """Schema-check `params` (read from `source`) and return a copy with defaults filled. Raises ConfigError."""
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_path_str(e.absolute_path)}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines))
    params = copy.deepcopy(params)
    _fill_defaults(params, schema, schema)
    return params


def train_settings(train: dict) -> dict:
    """A `train` block with the schema's defaults filled in (for specs built outside params.yaml)."""
    schema = load_schema()
    train = copy.deepcopy(train)
    _fill_defaults(train, schema["$defs"]["train"], schema)
    return train


def method_options(options: dict | None) -> dict:
    """A method's constructor options: its params.yaml block without `seeds` (which runs to train)."""
    return {k: v for k, v in (options or {}).items() if k != "seeds"}


def accepted_options(func: Callable) -> set[str]:
    """Keyword options `func` accepts; a class whose __init__ passes **options on also accepts its bases'."""
    accepted: set[str] = set()
    for target in func.__mro__ if isinstance(func, type) else (func,):
        params = inspect.signature(target.__init__ if isinstance(func, type) else target).parameters
        accepted |= {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return accepted


def check_options(func: Callable, options: dict, where: str, skip: tuple[str, ...] = ()) -> None:
    """Fail with a message naming `where.key` when `options` has a key `func` does not accept."""
    accepted = accepted_options(func) - set(skip)
    for key in options:
        if key not in accepted:
            raise ConfigError(f"{where}.{key}: unknown option; accepted: {', '.join(sorted(accepted)) or 'none'}")


@dataclass(frozen=True)
class Run:
    """One training job: experiment x method x variant (preference / task) x seed."""

    experiment: str
    method: str
    variant: str
    seed: int
    preference: tuple[float, ...] | None = None
    task: int | None = None

    @property
    def id(self) -> str:
        return f"{self.experiment}/{self.method}/{self.variant}/seed{self.seed}"

    @staticmethod
    def parse_id(run_id: str) -> tuple[str, str, str, int]:
        parts = run_id.strip("/").split("/")
        if len(parts) != 4 or not parts[3].startswith("seed") or not parts[3][4:].isdigit():
            raise ConfigError(f"run id {run_id!r} is not of the form EXPERIMENT/METHOD/VARIANT/seedN")
        return parts[0], parts[1], parts[2], int(parts[3][4:])


def preference_grid(n_tasks: int, divisions: int, interior: bool) -> list[tuple[Fraction, ...]]:
    """Simplex lattice {c : c_t = k_t / divisions, sum c = 1}, the grid search of Sener & Koltun."""
    points = []
    for ks in itertools.product(range(divisions + 1), repeat=n_tasks):
        if sum(ks) != divisions or (interior and n_tasks > 1 and min(ks) == 0):
            continue
        points.append(tuple(Fraction(k, divisions) for k in ks))
    if not points:
        raise ConfigError(
            f"preference_grid with divisions={divisions} has no interior point for {n_tasks} tasks; "
            f"use divisions >= {n_tasks} or interior: false"
        )
    return sorted(points, reverse=True)


def preference_variant(pref: tuple[Fraction, ...]) -> str:
    return "pref_" + "-".join(f"{float(p):.3f}" for p in pref)


@dataclass
class Profile:
    """The active profile of params.yaml, validated, with helpers to enumerate jobs."""

    name: str
    raw: dict
    params_path: Path = field(default=Path("params.yaml"))

    @property
    def device(self) -> str:
        return self.raw["device"]

    @property
    def jobs(self) -> str:
        """How runs become jobs: "per_run" or "per_method" (see the schema's `jobs`)."""
        return self.raw.get("jobs", "per_run")

    @property
    def seeds(self) -> list[int]:
        return list(self.raw["seeds"])

    @property
    def datasets(self) -> dict[str, dict]:
        return self.raw["datasets"]

    @property
    def experiments(self) -> dict[str, dict]:
        return self.raw["experiments"]

    def dataset_spec(self, dataset_id: str) -> dict:
        if dataset_id not in self.datasets:
            raise ConfigError(f"unknown dataset {dataset_id!r} in profile {self.name!r}; defined: {', '.join(self.datasets)}")
        return self.datasets[dataset_id]

    def experiment(self, name: str) -> dict:
        if name not in self.experiments:
            raise ConfigError(f"unknown experiment {name!r} in profile {self.name!r}; defined: {', '.join(self.experiments)}")
        return self.experiments[name]

    def n_tasks(self, experiment: str) -> int:
        from mtlpareto.data import task_names

        return len(task_names(self.dataset_spec(self.experiment(experiment)["dataset"])))

    def runs(self, experiment: str | None = None) -> list[Run]:
        from mtlpareto.data import task_names
        from mtlpareto.methods import METHODS

        runs: list[Run] = []
        names = [experiment] if experiment else list(self.experiments)
        for exp_name in names:
            exp = self.experiment(exp_name)
            tasks = task_names(self.dataset_spec(exp["dataset"]))
            grid = exp["preference_grid"]
            for method in exp["methods"]:
                sweep = METHODS.get(method).sweep
                if sweep == "preferences":
                    variants = [
                        (preference_variant(p), tuple(float(x) for x in p), None)
                        for p in preference_grid(len(tasks), grid["divisions"], grid["interior"])
                    ]
                elif sweep == "tasks":
                    variants = [(f"task-{name}", None, t) for t, name in enumerate(tasks)]
                else:
                    variants = [("default", None, None)]
                # A method, or an experiment, may use fewer seeds than its profile.
                seeds = (exp["methods"][method] or {}).get("seeds") or exp.get("seeds") or self.seeds
                for (variant, pref, task), seed in itertools.product(variants, seeds):
                    runs.append(Run(exp_name, method, variant, seed, pref, task))
        return runs

    def run(self, run_id: str) -> Run:
        experiment, method, variant, seed = Run.parse_id(run_id)
        for run in self.runs(experiment):
            if (run.method, run.variant, run.seed) == (method, variant, seed):
                return run
        raise ConfigError(f"run {run_id!r} is not in the matrix of profile {self.name!r} (check methods, seeds, preference_grid)")

    def preference_set(self, experiment: str) -> list[tuple[float, ...]]:
        """The experiment's preference grid as floats (what preference sweeps run over)."""
        grid = self.experiment(experiment)["preference_grid"]
        return [tuple(float(x) for x in p) for p in preference_grid(self.n_tasks(experiment), grid["divisions"], grid["interior"])]

    def run_spec(self, run: Run) -> dict:
        """Everything that determines a run's result: Snakemake re-runs the job when it changes."""
        exp = self.experiment(run.experiment)
        return {
            "run": run.id,
            "dataset": self.dataset_spec(exp["dataset"]),
            "model": exp["model"],
            "train": exp["train"],
            "method": {"name": run.method, **method_options(exp["methods"][run.method])},
            "preference": run.preference,
            "preference_set": self.preference_set(run.experiment) if run.preference is not None else None,
            "task": run.task,
            "seed": run.seed,
            "device": self.device,
            # A method built on other runs' checkpoints (DYMU's anchor net) names those runs
            # (pipeline.anchor_checkpoints has their files); only then, so no other run's spec,
            # and so no other job, changes.
            **({"anchor": [r.id for r in anchors]} if (anchors := self.anchor_runs(run)) else {}),
        }

    def anchor_runs(self, run: Run) -> list[Run]:
        """The single_task runs (one per task, in task order, the same seed) that a method's
        `anchor` option names as its anchor net; [] for a method without one."""
        anchor = (self.experiment(run.experiment)["methods"][run.method] or {}).get("anchor")
        if anchor is None:
            return []
        where = f"profiles.{self.name}.experiments.{run.experiment}.methods.{run.method}.anchor"
        if anchor not in self.experiments or anchor == run.experiment:
            raise ConfigError(f"{where}: {anchor!r} is not another experiment of the profile (defined: {', '.join(self.experiments)})")
        own, other = self.experiment(run.experiment), self.experiment(anchor)
        if other["dataset"] != own["dataset"] or other["model"] != own["model"]:
            raise ConfigError(f"{where}: experiment {anchor!r} trains another dataset or model; the anchor must be the same backbone on the same data")
        runs = [r for r in self.runs(anchor) if r.method == "single_task" and r.seed == run.seed]
        if len(runs) != self.n_tasks(run.experiment):
            raise ConfigError(f"{where}: experiment {anchor!r} has no single_task runs of seed {run.seed} (add single_task and the seed there)")
        return sorted(runs, key=lambda r: r.task)


def _check_components(profile: Profile) -> None:
    from mtlpareto.data import DATASETS
    from mtlpareto.methods import METHODS
    from mtlpareto.models import ARCHITECTURES, DEFAULT_ARCHITECTURE, MODELS

    base = f"profiles.{profile.name}"
    for ds_id, spec in profile.datasets.items():
        where = f"{base}.datasets.{ds_id}"
        builder = DATASETS.get(spec["kind"]) if spec["kind"] in DATASETS else None
        if builder is None:
            raise ConfigError(f"{where}.kind: unknown dataset kind {spec['kind']!r}; known: {', '.join(DATASETS.names())}")
        check_options(builder.build, {k: v for k, v in spec.items() if k != "kind"}, where, skip=("root",))
    for exp_name, exp in profile.experiments.items():
        where = f"{base}.experiments.{exp_name}"
        if exp["dataset"] not in profile.datasets:
            raise ConfigError(f"{where}.dataset: {exp['dataset']!r} is not defined under {base}.datasets")
        model_name = exp["model"]["name"]
        if model_name not in MODELS:
            raise ConfigError(f"{where}.model.name: unknown model {model_name!r}; known: {', '.join(MODELS.names())}")
        architecture = exp["model"].get("architecture", DEFAULT_ARCHITECTURE)
        if architecture not in ARCHITECTURES:
            raise ConfigError(f"{where}.model.architecture: unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES.names())}")
        backbone_options = {k: v for k, v in exp["model"].items() if k not in ("name", "architecture", "architecture_options")}
        check_options(MODELS.get(model_name), backbone_options, f"{where}.model", skip=("task_outputs", "in_channels", "input_size"))
        architecture_options = exp["model"].get("architecture_options") or {}
        if not isinstance(architecture_options, dict):
            raise ConfigError(f"{where}.model.architecture_options: a mapping of the architecture's options, got {architecture_options!r}")
        check_options(ARCHITECTURES.get(architecture), architecture_options, f"{where}.model.architecture_options", skip=("backbone",))
        for method, options in exp["methods"].items():
            if method not in METHODS:
                raise ConfigError(f"{where}.methods.{method}: unknown method; known: {', '.join(METHODS.names())}")
            seeds = (options or {}).get("seeds")
            if seeds is not None and not (
                isinstance(seeds, list) and seeds and len(set(seeds)) == len(seeds) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)
            ):
                raise ConfigError(f"{where}.methods.{method}.seeds: a non-empty list of distinct non-negative integers, got {seeds!r}")
            check_options(METHODS.get(method), method_options(options), f"{where}.methods.{method}", skip=("n_tasks", "preference", "task", "preference_set"))
        from mtlpareto.figures import FIGURES
        from mtlpareto.metrics.tables import TABLES

        for fig in exp.get("figures", []):
            if fig not in FIGURES:
                raise ConfigError(f"{where}.figures: unknown figure {fig!r}; known: {', '.join(FIGURES.names())}")
        for tab in exp.get("tables", []):
            if tab not in TABLES:
                raise ConfigError(f"{where}.tables: unknown table {tab!r}; known: {', '.join(TABLES.names())}")
        profile.runs(exp_name)  # raises on an empty preference grid


def _at(where: str, build: Callable[[], Any]) -> Any:
    """Run `build`; an error it raises for a bad value is re-raised as a ConfigError with its
    params.yaml path in front (torch's own checks raise ValueError or TypeError)."""
    try:
        return build()
    except (ConfigError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_components(profile: Profile) -> int:
    """Build every dataset's tasks, every model (on the meta device: no memory, no data) and
    every method of every run variant once, so a bad option *value* fails here with its
    params.yaml path instead of in a training job.  Returns the number of objects built."""
    import torch

    from mtlpareto.data import dataset_input_shape, dataset_tasks
    from mtlpareto.models import build_model

    base = f"profiles.{profile.name}"
    built = 0
    for ds_id, spec in profile.datasets.items():
        _at(f"{base}.datasets.{ds_id}", lambda: dataset_tasks(spec))
        built += 1
    for exp_name, exp in profile.experiments.items():
        where = f"{base}.experiments.{exp_name}"
        ds_spec = profile.dataset_spec(exp["dataset"])
        tasks = dataset_tasks(ds_spec)
        shape = dataset_input_shape(ds_spec)
        options = {k: v for k, v in exp["model"].items() if k != "name"}
        # Pretrained weight files are checked when a run starts, not here: validation may run
        # on another machine than training (a laptop, a cluster's login node).
        if options.get("pretrained") is True:
            options["pretrained"] = False
        with torch.device("meta"):
            _at(f"{where}.model", lambda: build_model(exp["model"]["name"], [t.out_channels for t in tasks], shape, **options))
        built += 1
        seen: set[tuple[str, str]] = set()
        for run in profile.runs(exp_name):
            if (run.method, run.variant) in seen:
                continue
            seen.add((run.method, run.variant))
            build_run_method(profile, run)
            built += 1
    return built


def build_run_method(profile: Profile, run: Run) -> Any:
    """The method of one run, built as its training job builds it; a bad option value raises a
    ConfigError naming its params.yaml path."""
    from mtlpareto.methods import build_method

    spec = profile.run_spec(run)
    prefs = spec["preference_set"] and [tuple(p) for p in spec["preference_set"]]
    return _at(
        f"profiles.{profile.name}.experiments.{run.experiment}.methods.{run.method}",
        lambda: build_method(spec["method"], profile.n_tasks(run.experiment), preference=run.preference, task=run.task, preference_set=prefs),
    )


def load_profile(params: dict | str | Path = "params.yaml", profile: str | None = None) -> Profile:
    """Validate params (a dict or a YAML path) and return the active (or named) profile."""
    params_path = Path("params.yaml")
    if not isinstance(params, dict):
        params_path = Path(params)
        if not params_path.exists():
            raise ConfigError(f"params file {params_path} not found")
        try:
            params = yaml.safe_load(params_path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{params_path} is not valid YAML: {exc}") from None
        if not isinstance(params, dict):
            raise ConfigError(f"{params_path} must hold a mapping at top level")
    params = validate_structure(params, str(params_path))
    name = profile or params["profile"]
    if name not in params["profiles"]:
        raise ConfigError(f"profile: {name!r} is not defined under profiles (defined: {', '.join(params['profiles'])})")
    prof = Profile(name=name, raw=params["profiles"][name], params_path=params_path)
    _check_components(prof)
    from mtlpareto.data import complete_spec

    # Complete dataset specs: manifests and run specs record every option, defaults included.
    prof.raw["datasets"] = {ds: complete_spec(spec) for ds, spec in prof.datasets.items()}
    return prof


def spec_json(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True)
