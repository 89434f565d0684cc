"""The synthetic two-objective problem of Lin et al. 2020, Sec. 6 / Fig. 7, in closed form.

The paper's appendix definition did not survive text extraction; what the paper states is
kept: two objectives, a concave Pareto front and a sine-curve-like Pareto set, solved by a
2-layer MLP (50 hidden units) from the preference.  We take the Fonseca-Fleming problem (used
by Pareto MTL, Lin et al. 2019) and bend its straight Pareto set into a sine curve with a
shear of the decision space.

Problem ``sine_fonseca`` with decision x in R^n (n >= 2), a = 1/sqrt(n):

    s_k(t) = (a / 2) * sin(pi * t / a + phi_k),   phi_k = pi * (k - 1) / (n - 1),   k = 1..n-1
    z_0 = x_0,   z_k = x_k - s_k(x_0)                          (a shear: a bijection of R^n)
    f_1(x) = 1 - exp(-sum_i (z_i - a)^2)
    f_2(x) = 1 - exp(-sum_i (z_i + a)^2)

f = F o z with F the Fonseca-Fleming objectives, whose Pareto set is {z : z_0 = ... = z_{n-1}
= t, t in [-a, a]}; a bijection of the decision space maps Pareto sets onto Pareto sets and
keeps the front, so in closed form, with u = t / a in [-1, 1]:

    Pareto set:    x_0 = t,  x_k = t + s_k(t)                  (a sine curve around the diagonal)
    Pareto front:  f_1 = 1 - exp(-(u - 1)^2),  f_2 = 1 - exp(-(u + 1)^2)

The front runs from (1 - e^-4, 0) to (0, 1 - e^-4) through (1 - e^-1, 1 - e^-1) ~ (0.632,
0.632), above the chord between its ends (0.491, 0.491): it is concave, so minimising
p_1 f_1 + p_2 f_2 only ever reaches its two end points.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtlpareto.errors import ConfigError


class SineFonseca:
    """Fonseca-Fleming with a sine-sheared Pareto set; see the module docstring."""

    name = "sine_fonseca"
    n_objectives = 2

    def __init__(self, dim: int = 10) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise ConfigError(f"synthetic problem sine_fonseca: dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        self.a = 1.0 / math.sqrt(dim)
        self.phases = np.pi * np.arange(dim - 1) / (dim - 1)

    # ------------------------------------------------------------------ objectives

    def shift(self, x0: torch.Tensor) -> torch.Tensor:
        """s_k(x0) for k = 1..n-1, shape [..., n-1]."""
        phases = torch.as_tensor(self.phases, dtype=x0.dtype, device=x0.device)
        return 0.5 * self.a * torch.sin(math.pi * x0[..., None] / self.a + phases)

    def objectives(self, x: torch.Tensor) -> torch.Tensor:
        """[f_1, f_2] of x [..., n] (differentiable)."""
        if x.shape[-1] != self.dim:
            raise ConfigError(f"sine_fonseca expects x of dimension {self.dim}, got {tuple(x.shape)}")
        z = torch.cat([x[..., :1], x[..., 1:] - self.shift(x[..., 0])], dim=-1)
        f1 = 1.0 - torch.exp(-((z - self.a) ** 2).sum(-1))
        f2 = 1.0 - torch.exp(-((z + self.a) ** 2).sum(-1))
        return torch.stack([f1, f2], dim=-1)

    # ------------------------------------------------------------------ closed forms

    def pareto_set(self, u: np.ndarray) -> np.ndarray:
        """Pareto-optimal x for parameters u in [-1, 1], shape [m, n]."""
        t = np.asarray(u, dtype=np.float64)[:, None] * self.a
        shift = 0.5 * self.a * np.sin(np.pi * t / self.a + self.phases[None, :])
        return np.concatenate([t, t + shift], axis=1)

    @staticmethod
    def pareto_front(u: np.ndarray) -> np.ndarray:
        """Pareto front points for u in [-1, 1], shape [m, 2]."""
        u = np.asarray(u, dtype=np.float64)
        return np.stack([1.0 - np.exp(-((u - 1.0) ** 2)), 1.0 - np.exp(-((u + 1.0) ** 2))], axis=1)

    def front_hypervolume(self, reference: tuple[float, float] = (1.0, 1.0)) -> float:
        """Hypervolume of the whole (continuous) front, by quadrature of its closed form.

        As u goes from 1 to -1, f_1 rises from 0 to f_1(-1) while f_2 falls; the dominated
        area within the box is int (r_2 - f_2) df_1 plus the strip f_1 in [f_1(-1), r_1].
        Requires r >= the front's maximum (1 - e^-4) in both objectives.
        """
        r1, r2 = float(reference[0]), float(reference[1])
        top = 1.0 - math.exp(-4.0)
        if r1 < top or r2 < top:
            raise ConfigError(f"reference point {reference} must be >= {top:.4f} in both objectives for the closed-form hypervolume")

        def integrand(u: float) -> float:
            f2 = 1.0 - math.exp(-((u + 1.0) ** 2))
            df1 = 2.0 * (1.0 - u) * math.exp(-((u - 1.0) ** 2))  # -d f_1 / du > 0 on [-1, 1)
            return (r2 - f2) * df1

        from scipy import integrate  # lazy: scipy's import costs ~1 s in every job that never needs it

        area, _ = integrate.quad(integrand, -1.0, 1.0, epsabs=1e-13, epsrel=1e-12)
        return float(area + (r1 - top) * r2)

    def distance_to_pareto_set(self, x: np.ndarray, samples: int = 20001) -> np.ndarray:
        """Euclidean distance of each row of x [m, n] to the Pareto set (dense sample)."""
        ps = self.pareto_set(np.linspace(-1.0, 1.0, samples))
        x = np.asarray(x, dtype=np.float64)
        return np.sqrt(((x[:, None, :] - ps[None, :, :]) ** 2).sum(-1).min(1))

    def distance_to_front(self, f: np.ndarray, samples: int = 20001) -> np.ndarray:
        front = self.pareto_front(np.linspace(-1.0, 1.0, samples))
        f = np.asarray(f, dtype=np.float64)
        return np.sqrt(((f[:, None, :] - front[None, :, :]) ** 2).sum(-1).min(1))

    def front_coverage(self, f: np.ndarray, bins: int = 20, tol: float = 0.02, samples: int = 20001) -> float:
        """Share of the front covered: of `bins` equal pieces of u in [-1, 1], those holding the
        nearest front point of some f within `tol` of the front (1: the whole front; a method
        that only finds the two ends covers 2 / bins)."""
        u = np.linspace(-1.0, 1.0, samples)
        front = self.pareto_front(u)
        f = np.asarray(f, dtype=np.float64)
        dist = np.sqrt(((f[:, None, :] - front[None, :, :]) ** 2).sum(-1))
        near = dist.min(1) <= tol
        nearest_u = u[dist.argmin(1)][near]
        hit = np.unique(np.minimum(((nearest_u + 1.0) / 2.0 * bins).astype(int), bins - 1))
        return float(len(hit) / bins)


PROBLEMS = {"sine_fonseca": SineFonseca}


def make_problem(problem: str = "sine_fonseca", dim: int = 10) -> SineFonseca:
    if problem not in PROBLEMS:
        raise ConfigError(f"unknown synthetic problem {problem!r}; known: {', '.join(sorted(PROBLEMS))}")
    return PROBLEMS[problem](dim)
