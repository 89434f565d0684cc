"""Reported numbers: what this project claims per profile, each with a tolerance band, and
the published numbers of the seed papers for side-by-side tables.

`mtlpareto check-reported` compares freshly built tables with results/reported/<profile>.yaml
and fails naming every number that left its band; `mtlpareto update-reported` rewrites the
file from the current tables (after a deliberate change, reviewed in the diff).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from mtlpareto.errors import ConfigError

PUBLISHED = Path("results/published.yaml")
REPORTED_DIR = Path("results/reported")
KEY_FIELDS = ("experiment", "table", "method", "task", "metric")


def reported_path(profile: str) -> Path:
    return REPORTED_DIR / f"{profile}.yaml"


def _key(entry: dict) -> tuple:
    return tuple(str(entry.get(k, "")) for k in KEY_FIELDS)


def current_numbers(table_csvs: dict[tuple[str, str], Path]) -> dict[tuple, float]:
    """Mean values of every table row, keyed by (experiment, table, method, task, metric).

    Tables are CSVs with at least the columns method, task, metric, mean.
    """
    numbers: dict[tuple, float] = {}
    for (experiment, table), path in table_csvs.items():
        try:
            with open(path, newline="") as fh:
                for row in csv.DictReader(fh):
                    if not {"method", "task", "metric", "mean"} <= row.keys():
                        break
                    entry = {**row, "experiment": experiment, "table": table}
                    if row.get("entry_experiment"):  # a method shown once per compared experiment
                        entry["method"] = f"{row['method']}@{row['entry_experiment']}"
                    numbers[_key(entry)] = float(row["mean"])
        except (OSError, UnicodeDecodeError, csv.Error, TypeError, ValueError) as err:
            raise ConfigError(f"table {path} is unreadable ({type(err).__name__}: {err}); rebuild it: delete it and rerun `snakemake --cores all paper_figures`") from None
    return numbers


@dataclass
class Band:
    abs: float = 0.0
    rel: float = 0.0

    def width(self, reference: float) -> float:
        return max(self.abs, self.rel * abs(reference))


def load_reported(path: Path) -> tuple[list[dict], Band]:
    if not path.exists():
        raise ConfigError(f"{path} not found: create it with `mtlpareto update-reported`")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        default = Band(**doc.get("tolerance", {}))
        numbers = doc.get("numbers", [])
        for entry in numbers:
            float(entry["value"])
            _key(entry)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError, KeyError, ValueError, AttributeError) as err:
        raise ConfigError(f"reported numbers {path} are unreadable ({type(err).__name__}: {err}); restore it with `git checkout {path}` or rewrite it with `mtlpareto update-reported`") from None
    return numbers, default


def check(numbers: dict[tuple, float], reported: list[dict], default: Band) -> list[str]:
    """Problems: reported numbers missing from the tables or outside their band."""
    problems = []
    for entry in reported:
        key = _key(entry)
        name = "/".join(key)
        if key not in numbers:
            problems.append(f"{name}: reported {entry['value']} but no such number in the current tables")
            continue
        band = Band(**entry["tolerance"]) if "tolerance" in entry else default
        got, want = numbers[key], float(entry["value"])
        if not math.isfinite(got) or abs(got - want) > band.width(want):
            problems.append(f"{name}: got {got:g}, reported {want:g} ± {band.width(want):g}")
    return problems


def write_reported(path: Path, profile: str, numbers: dict[tuple, float], default: Band) -> None:
    from mtlpareto.io import atomic_write_text

    doc = {
        "profile": profile,
        "tolerance": {"abs": default.abs, "rel": default.rel},
        "numbers": [dict(zip(KEY_FIELDS, key), value=value) for key, value in sorted(numbers.items())],
    }
    header = (
        f"# Numbers this project reports for the `{profile}` profile; CI checks fresh runs against them.\n"
        "# Regenerate with `mtlpareto update-reported` after a deliberate change and review the diff.\n"
    )
    atomic_write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200), path)


def published_lookup(path: Path = PUBLISHED) -> dict[tuple, dict]:
    """Published entries keyed by (experiment, method, task, metric); empty if the file is absent."""
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    sources = doc.get("sources", {})
    out = {}
    for entry in doc.get("entries", []):
        if entry.get("comparable", True) is False:  # recorded, but not on the scale of ours
            continue
        key = (entry["experiment"], entry["method"], str(entry["task"]), entry["metric"])
        out[key] = {**entry, "citation": f"{sources.get(entry['source'], entry['source'])}, {entry['table']}"}
    return out
