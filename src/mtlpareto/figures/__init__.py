"""Figures behind one registry; each writes PNG and PDF with fixed metadata (reproducible bytes).

Plotting libraries are imported inside the functions: validating params.yaml must stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mtlpareto.registry import Registry

# A figure function takes the experiment's long metrics frame and a title, returns a Figure.
FIGURES: Registry[Callable[..., Any]] = Registry("figure")


def save_figure(fig: Any, paths: list[Path]) -> None:
    import matplotlib.pyplot as plt

    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
        # No dates or versions in the files, so reruns are byte-identical (DVC hashes them).
        metadata = {"Software": None} if path.suffix == ".png" else {"CreationDate": None, "Producer": None, "Creator": None}
        fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata=metadata)
        tmp.replace(path)
    plt.close(fig)


def setup_matplotlib() -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: the pipeline runs on servers


# Registry lines: one per figure module.
from mtlpareto.figures import tradeoff  # noqa: E402,F401
from mtlpareto.figures import radar  # noqa: E402,F401
from mtlpareto.figures import pareto_front  # noqa: E402,F401
from mtlpareto.figures import dense_predictions  # noqa: E402,F401
from mtlpareto.figures import ec_curves  # noqa: E402,F401
from mtlpareto.figures import dymu  # noqa: E402,F401
