"""DYMU's table: per budget term c, the chosen trees' mean parameters and FLOPs, the hypervolume
of the test losses and the uniformity over the evaluated preferences (the paper's Tables 1-4:
HV and uniformity over 20 preferences drawn uniformly from the simplex, cost over 1000), and the
controller's size (the paper's "Control Params.": the two hypernets)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.errors import ConfigError
from mtlpareto.metrics.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd

# column, key of the evaluation summary, scale, higher is better
COLUMNS = (
    ("parameters [M]", "parameters", 1e-6, False),
    ("FLOPs [MMAC/image]", "flops", 1e-6, False),
    ("hypervolume (test losses)", "hypervolume", 1.0, True),
    ("uniformity", "uniformity", 1.0, True),
)


@TABLES.register("dymu")
def dymu_table(df: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    # here, not at the top: metrics.hypervolume imports the table registry that imports this module
    from mtlpareto.metrics.hypervolume import run_records, sample_std

    records = [r for r in run_records(df) if "dymu" in r]
    if not records:
        raise ConfigError("the dymu table needs runs of method dymu")
    reference = "(" + ", ".join(f"{v:g}" for v in records[0]["dymu"]["hv_reference"]) + ")"
    rows = []
    for budget in records[0]["dymu"]["summary"]:
        for column, key, scale, higher in COLUMNS:
            values = [r["dymu"]["summary"][budget][key] for r in records]
            if any(v is None for v in values):
                continue  # hypervolume of more than 3 tasks: not computed (the note is in metrics.json)
            arr = np.asarray(values, dtype=np.float64) * scale
            rows.append({
                "method": "dymu", "label": f"DYMU, c = {float(budget):g}", "column": column, "task": "all", "metric": key,
                "split": "test", "mean": round(float(arr.mean()), 4), "std": round(sample_std(arr), 4),
                "n_seeds": len({r["seed"] for r in records}), "higher_is_better": higher, "reference": reference,
            })
    for name, cost in (("anchor net (N streams)", "anchor_cost"), ("one shared trunk", "shared_cost")):
        for column, key, scale, higher in COLUMNS[:2]:
            rows.append({"method": "dymu", "label": name, "column": column, "task": "all", "metric": key, "split": "test",
                         "mean": round(records[0]["dymu"][cost][key] * scale, 4), "std": 0.0, "n_seeds": 0, "higher_is_better": higher, "reference": reference})
    control = records[0]["dymu"].get("control_parameters")
    if control is not None:
        rows.append({"method": "dymu", "label": "controller (edge + weight hypernets)", "column": COLUMNS[0][0], "task": "all", "metric": "control_parameters",
                     "split": "test", "mean": round(control * 1e-6, 4), "std": 0.0, "n_seeds": 0, "higher_is_better": False, "reference": reference})
    return pd.DataFrame(rows)
