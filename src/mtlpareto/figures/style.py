"""One visual identity per method, the same in every figure: colour, marker, line style.

The registered methods of `mtlpareto.methods.METHODS` get a curated style (families close:
MGDA / MGDA-UB warm, the controllable models as curves); a method registered later gets the
first colour and the first shape (marker, line style) that no other method uses, in the order
of its name, so it is distinct without editing this file.

Colour-blind safety: the colours are Okabe & Ito's eight plus Paul Tol's "muted" set, but no
palette keeps 17 colours apart for every colour-vision deficiency, so identity never rests on
colour alone: every method also has its own shape (marker and line style), which survives
greyscale printing as well.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

# Okabe & Ito (2008), then Paul Tol's "muted" scheme (2021) for the rest.
PALETTE: tuple[str, ...] = (
    "#000000",  # black
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#332288",  # indigo
    "#882255",  # wine
    "#44AA99",  # teal
    "#999933",  # olive
    "#DDCC77",  # sand
    "#CC6677",  # rose
    "#117733",  # green
    "#AA4499",  # purple
    "#88CCEE",  # cyan
    "#777777",  # grey
    # Paul Tol's "bright" and "light" schemes: methods beyond the first 18.
    "#4477AA",  # blue
    "#EE6677",  # red
    "#228833",  # green
    "#CCBB44",  # yellow
    "#AA3377",  # purple
    "#EE8866",  # orange
    "#BBBBBB",  # pale grey
)
# Filled markers only: hollow and line-only markers vanish behind the faint seed points.
MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "<", ">", "p", "h", "H", "8", "P", "X", "*", "d")
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class MethodStyle:
    color: str
    marker: str
    linestyle: str = "-"

    @property
    def shape(self) -> tuple[str, str]:
        """What identifies the method without colour."""
        return (self.marker, self.linestyle)

    def line_kwargs(self) -> dict:
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle}


# Curated: point methods (one model per run) differ by marker (letters once the filled shapes
# run out); the controllable curves by line style.  Colours are unique over all of them.
CURATED: dict[str, MethodStyle] = {
    "single_task": MethodStyle("#000000", "*"),
    "uniform": MethodStyle("#777777", "o"),
    "linear": MethodStyle("#0072B2", "s"),
    "mgda": MethodStyle("#D55E00", "D"),
    "mgda_ub": MethodStyle("#E69F00", "^"),
    "uncertainty": MethodStyle("#56B4E9", "v"),
    "gradnorm": MethodStyle("#009E73", "<"),
    "dwa": MethodStyle("#999933", ">"),
    "rlw": MethodStyle("#DDCC77", "h"),
    "pcgrad": MethodStyle("#CC79A7", "P"),
    "cagrad": MethodStyle("#882255", "X"),
    "graddrop": MethodStyle("#44AA99", "p"),
    "pareto_mtl": MethodStyle("#332288", "d"),
    "ctrl_pareto": MethodStyle("#CC6677", "8", "-"),
    "ctrl_linear": MethodStyle("#117733", "s", "--"),
    "phn_ls": MethodStyle("#88CCEE", "^", "-."),
    "phn_epo": MethodStyle("#AA4499", "v", ":"),
    "nash_mtl": MethodStyle("#4477AA", "H"),
    "aligned_mtl": MethodStyle("#EE6677", "$A$"),
    "imtl": MethodStyle("#228833", "$I$"),
    "famo": MethodStyle("#CCBB44", "$F$"),
}


def assign_styles(names: Iterable[str]) -> dict[str, MethodStyle]:
    """Styles of `names`: curated where known, else the first free colour and shape by name order."""
    names = list(dict.fromkeys(names))
    styles = {n: CURATED[n] for n in names if n in CURATED}
    used_colors = {s.color for s in CURATED.values()}
    used_shapes = {s.shape for s in CURATED.values()}
    for name in sorted(n for n in names if n not in CURATED):
        color = next((c for c in PALETTE if c not in used_colors), None)
        if color is None:  # more methods than colours: the shape alone still tells them apart
            color = PALETTE[len(styles) % len(PALETTE)]
        marker, linestyle = next(s for s in itertools.product(MARKERS, LINESTYLES) if s not in used_shapes)
        styles[name] = MethodStyle(color, marker, linestyle)
        used_colors.add(color)
        used_shapes.add((marker, linestyle))
    return {n: styles[n] for n in names}


@lru_cache(maxsize=None)
def _styles_of(names: tuple[str, ...]) -> dict[str, MethodStyle]:
    return assign_styles(names)


def method_style(name: str) -> MethodStyle:
    """The style of one method; a name outside the registry (old metrics) still gets its own."""
    from mtlpareto.methods import METHODS

    # Keyed on the registry's current names, so a method registered later is included.
    return _styles_of((*METHODS, *(() if name in METHODS else (name,))))[name]


def method_styles() -> dict[str, MethodStyle]:
    """Every registered method's style."""
    from mtlpareto.methods import METHODS

    return dict(_styles_of(tuple(METHODS)))
