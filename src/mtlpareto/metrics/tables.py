"""Tables of an experiment: machine-readable CSV first, Markdown rendered from it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from typing import TYPE_CHECKING

from mtlpareto.registry import Registry
from mtlpareto.io import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

# A table builder turns the experiment's long metrics frame into a summary frame with
# columns label, task, mean, std (plus any others kept in the CSV).
TABLES: Registry[Callable[["pd.DataFrame"], "pd.DataFrame"]] = Registry("table")


@TABLES.register("accuracy")
def accuracy_table(df: "pd.DataFrame") -> "pd.DataFrame":
    """Seed 001 Table 3: test accuracy [%] per task, mean and sample std (ddof=1) over seeds."""
    from mtlpareto.metrics.aggregate import method_summary

    return method_summary(df, "accuracy", higher_is_better=True)


# Per metric: unit, whether higher is better, decimals shown in Markdown.
METRICS_SHOWN: dict[str, tuple[str, bool, int]] = {
    "accuracy": ("%", True, 2),
    "error": ("%", False, 2),
    "hypervolume": ("", True, 3),
    "miou": ("", True, 3),  # dense tables: the first column's metric sets the decimals
}

# Table-specific sentences under the Markdown table ({reference} is filled in).
CAPTIONS: dict[str, str] = {
    "hypervolume": (
        "Hypervolume of the test-loss vectors (one loss per task) against the reference point {reference}: "
        "the area of loss space they dominate, higher is better. A controllable model counts its whole "
        "trade-off curve (one network); a method of the compared experiment counts the set of its models' "
        "loss vectors per seed (how many models is in its label). The closed-form row is exact, not a run."
    ),
}


def _column_name(task: str, metric: str) -> str:
    unit, higher, _ = METRICS_SHOWN.get(metric, ("", True, 2))
    arrow = "\u2191" if higher else "\u2193"
    name = metric if task == "all" else f"{task} {metric}"  # "all": one number over every task
    return name + (f" [{unit}]" if unit else "") + f" {arrow}"


def format_cell(mean: float, std: float, n_seeds: int, decimals: int = 2) -> str:
    """'mean ± std', or the mean alone where there is no spread to show: one seed, or a
    closed-form value (n_seeds 0)."""
    if n_seeds <= 1 or std != std:  # std != std: NaN
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def _seeds_cell(counts: list[int]) -> str:
    if all(c == 0 for c in counts):
        return "closed form"
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def unpublished_note(experiment: str | None, metric: str, published_keys: set[tuple], path: Path | None = None) -> str | None:
    """Why a table has no paper column: the paper's numbers are on another scale (their
    entry says why), or no seed paper publishes this metric for this experiment."""
    import yaml

    from mtlpareto.metrics.reported import PUBLISHED

    path = Path(path or PUBLISHED)
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    sources = doc.get("sources", {})
    incomparable = [e for e in doc.get("entries", []) if e.get("experiment") == experiment and e.get("metric") == metric and e.get("comparable", True) is False]
    if incomparable:
        where = "; ".join(dict.fromkeys(f"{sources.get(e['source'], e['source'])}, {e['table']}" for e in incomparable))
        why = " ".join(dict.fromkeys(e.get("why_not_comparable", "") for e in incomparable)).strip() or "the values are on another scale."
        return f"No paper column: {where} reports this {metric}, but not comparably: {why}"
    if not any(k[0] == experiment and k[3] == metric for k in published_keys):
        return f"No paper column: the seed papers publish no {metric} for this experiment (results/published.yaml)."
    return None


def to_markdown(summary: "pd.DataFrame", title: str, experiment: str | None = None) -> str:
    """Wide Markdown: one row per method entry, one column per task, 'mean ± std' (sample std,
    ddof = 1, over the seeds of the last column), units and the better direction in the
    header, the reference point of a hypervolume, and a note on any paper column or its absence.

    Where results/published.yaml has the paper's number for the same experiment, method,
    task and metric, it stands beside ours in a '(paper)' column.
    """
    from mtlpareto.metrics.reported import published_lookup

    # A table of several metrics (dense) names each column ("semantic miou") and carries each
    # column's direction; other tables have one column per task, of one metric.
    key = "column" if "column" in summary else "task"
    tasks = list(dict.fromkeys(summary[key]))
    metric = summary.metric.iloc[0] if len(summary) else ""
    decimals = METRICS_SHOWN.get(metric, ("", True, 2))[2]
    directions = dict(zip(summary[key], summary.higher_is_better)) if "higher_is_better" in summary else {}
    published = published_lookup()
    rows = list(summary.itertuples())

    def paper_key(r) -> tuple:
        # A method shown once per compared experiment (its `experiment` set) looks up that experiment's number.
        own = getattr(r, "entry_experiment", None)
        return (own if isinstance(own, str) else experiment, r.method, str(r.task), r.metric)

    has_paper = {getattr(r, key) for r in rows if paper_key(r) in published}
    coverage = "front_coverage" in summary and summary.front_coverage.notna().any()
    columns = []
    for t in tasks:
        columns.append(f"{t} {'↑' if directions[t] else '↓'}" if t in directions else _column_name(str(t), metric))
        if t in has_paper:
            columns.append(f"{t} (paper)")
    if coverage:
        columns.append("front covered [%] \u2191")
    lines = [f"### {title}", "", "| Method | " + " | ".join(columns) + " | seeds |", "|" + "---|" * (len(columns) + 2)]
    cited = {}
    for label, group in summary.groupby("label", sort=False):
        cells = []
        by_task = {getattr(r, key): r for r in group.itertuples()}
        for t in tasks:
            r = by_task.get(t)
            cells.append(format_cell(r.mean, r.std, int(r.n_seeds), decimals) if r is not None else "–")
            if t in has_paper:
                pub = published.get(paper_key(r)) if r is not None else None
                if pub:
                    cited[pub["citation"]] = None
                cells.append(f"{pub['value']:.2f}" if pub else "–")
        if coverage:
            value = group.front_coverage.iloc[0]
            cells.append(f"{100 * value:.0f}" if value == value and value is not None else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_seeds_cell([int(n) for n in group.n_seeds])} |")
    notes = ["Mean ± sample standard deviation (ddof = 1) over the seeds counted in the last column; "
             "a single seed or a closed-form value is shown without ±."]
    if metric in CAPTIONS:
        references = list(dict.fromkeys(summary.reference)) if "reference" in summary else ["(not recorded)"]
        notes.append(CAPTIONS[metric].format(reference=", ".join(map(str, references))))
    if coverage:
        notes.append("Front covered: of 20 equal pieces of the true front, the share holding a learned point within 0.02 of it (mean over seeds).")
    if cited:
        notes.append("Paper columns (the papers' settings, as in the `paper` profile; – where the paper has no number): " + "; ".join(cited) + ".")
    else:
        missing = unpublished_note(experiment, metric, set(published))
        if missing:
            notes.append(missing)
    lines += [""] + [f"{n}\n" for n in notes]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_table(name: str, df: "pd.DataFrame", experiment: str, title: str, csv_path: Path, md_path: Path, html_path: Path | None = None) -> "pd.DataFrame":
    """The table as CSV, Markdown and (for Snakemake's report) the Markdown rendered as HTML."""
    from mtlpareto.metrics.table_html import markdown_table_html

    summary = TABLES.get(name)(df)
    markdown = to_markdown(summary, title, experiment)
    atomic_write_text(summary.to_csv(index=False), csv_path)
    atomic_write_text(markdown, md_path)
    if html_path is not None:
        atomic_write_text(markdown_table_html(markdown), html_path)
    return summary


from mtlpareto.metrics import error_tables  # noqa: E402,F401  (registers per_task_error, average_error)
from mtlpareto.metrics import hypervolume as _hypervolume  # noqa: E402,F401  (registers hypervolume)
from mtlpareto.metrics import dense_tables  # noqa: E402,F401  (registers dense)
from mtlpareto.metrics import dymu_tables  # noqa: E402,F401  (registers dymu)
