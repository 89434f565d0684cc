"""MPPS: progressive parameter sharing (Shi, Zhang, Ren & Pan, ICCV 2023) as a sharing strategy.

Any backbone's encoder is shared; the output channels ("neurons") of its last `layers` conv
layers carry a learned vector phi in [eps, 1 - eps]^T each (Phi, per layer [C, T]).  The task
with the largest phi owns the neuron and always uses it; every other task (a guest) uses it
through a sampled mask, and each task's loss comes from its own masked forward pass:

* bernoulli: m ~ B(phi_t); Phi's gradient by REINFORCE, L_t * grad log q(m), plus the
  analytic gradient of KL(B(phi) || B(pi));
* gaussian:  m = 1 + sqrt((1 - phi_t) / phi_t) * xi, xi ~ N(0, 1) (mean 1, variance
  (1 - phi) / phi), reparameterised, plus the closed-form KL(N(1, r(phi)^2) || N(1, r(pi)^2)).

The target Pi (the prior p of the paper's Eq. 3) carries the scheduled exclusive capacity

    EC(phi) = 1 - (sum_t phi_t - max_t phi_t) / (T - 1)      (model EC: mean over neurons),

and is updated after every epoch (Alg. 1): Pi <- 1 - k (1 - Phi), k = C_next / EC(Phi), which
makes EC(Pi) = k EC(Phi) = C_next before Pi is clamped to [eps, 1 - eps].  Without target
updates (`target_update: false`, Table 6) the initial exclusive Phi_0 is rescaled instead.
The initial Phi is exclusive: each layer's channels split into T contiguous blocks, the owner
at 1 - eps, the guests at eps (EC = 1 - eps, the most the clamp allows; full sharing: eps).

Schedules of the target EC C(e) for epoch e of E (F = `frozen_epochs`; the first and the last F
epochs lengthen the first and the last course, Sec. 3.5), p = clip((e - F) / (E - 1 - 2F), 0, 1):
linear (one course per epoch), step (`steps` courses of equal length), quad (the high value
times (1 - p)^2), separ (always the highest EC), fullshare (always the lowest).  The figure of
the paper's schedules was lost from our copy; the quadratic's shape is our reading.

Masks multiply a conv's output channels; when the conv is followed by a BatchNorm of its width
(registered next in the same block: conv-BN-ReLU, ResNet's conv1/bn1), the mask multiplies the
BatchNorm's output instead: a per-channel factor before a
training-mode BatchNorm would be normalised away.  Mask hooks exist only during a masked forward
pass (a context manager registers and removes them), so nothing stays attached after training,
and evaluation (eval mode) uses the full network without masks, as the paper does.

Phi is neither a shared nor a task parameter for the weighting method: `private_gradients`
gives it its own gradient (the reparameterised or REINFORCE task losses, unweighted, plus the
KL), so any parameter-gradient weighting method composes with MPPS.  There is no single shared
representation (each task has its own masked trunk), so MGDA-UB and GradDrop fail with a clear
error, as on MTAN.  Cost: T forward and backward passes of the encoder per step.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import ARCHITECTURES, Backbone, MTLModel

MASK_KINDS = ("bernoulli", "gaussian")
SCHEDULES = ("linear", "step", "quad", "separ", "fullshare")


# --------------------------------------------------------------------------- distributions


def exclusive_capacity(phi: torch.Tensor) -> torch.Tensor:
    """Per-neuron EC of phi [..., T]: 1 - (sum_t phi_t - max_t phi_t) / (T - 1)."""
    n_tasks = phi.shape[-1]
    return 1.0 - (phi.sum(-1) - phi.amax(-1)) / (n_tasks - 1)


def model_exclusive_capacity(phis: list[torch.Tensor]) -> torch.Tensor:
    """The model's EC: the mean over every neuron of every masked layer."""
    return torch.cat([exclusive_capacity(p) for p in phis]).mean()


def rescale_to_capacity(phis: list[torch.Tensor], capacity: float | torch.Tensor, epsilon: float) -> list[torch.Tensor]:
    """Alg. 1's target: 1 - k (1 - phi), k = capacity / EC(Phi), clamped to [eps, 1 - eps]."""
    k = capacity / model_exclusive_capacity(phis)
    return [(1.0 - k * (1.0 - p)).clamp(epsilon, 1.0 - epsilon) for p in phis]


def exclusive_init(channels: int, n_tasks: int, epsilon: float) -> torch.Tensor:
    """[C, T]: contiguous blocks of channels, one per task; the owner 1 - eps, guests eps."""
    owner = torch.arange(channels) * n_tasks // channels
    phi = torch.full((channels, n_tasks), epsilon)
    phi[torch.arange(channels), owner] = 1.0 - epsilon
    return phi


def gaussian_scale(phi: torch.Tensor) -> torch.Tensor:
    """r_G(phi) = sqrt((1 - phi) / phi): the Gaussian mask's standard deviation."""
    return ((1.0 - phi) / phi).sqrt()


def bernoulli_kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(B(q) || B(p))."""
    return q * (q / p).log() + (1.0 - q) * ((1.0 - q) / (1.0 - p)).log()


def gaussian_kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(1, r(q)^2) || N(1, r(p)^2)) (equal means)."""
    var_q, var_p = (1.0 - q) / q, (1.0 - p) / p
    return 0.5 * ((var_p / var_q).log() + var_q / var_p - 1.0)


def owner_mask(phi: torch.Tensor) -> torch.Tensor:
    """[C, T] booleans: True where task t owns the neuron (argmax phi, first on ties)."""
    return nn.functional.one_hot(phi.argmax(-1), phi.shape[-1]).bool()


def masks_from_noise(phi: torch.Tensor, noise: torch.Tensor, kind: str) -> torch.Tensor:
    """[C, T] masks from [C, T] noise: uniform u (bernoulli: u < phi) or xi ~ N(0, 1)
    (gaussian: 1 + r(phi) xi, differentiable in phi); the owner's entry is 1."""
    if kind == "bernoulli":
        sampled = (noise < phi.detach()).to(phi.dtype)
    else:
        sampled = 1.0 + gaussian_scale(phi) * noise
    return torch.where(owner_mask(phi.detach()), torch.ones_like(sampled), sampled)


def bernoulli_log_prob(phi: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per task [T]: log q(m) of the guests' sampled masks (the owner's mask is not sampled)."""
    guest = ~owner_mask(phi.detach())
    log_q = masks * phi.log() + (1.0 - masks) * (1.0 - phi).log()
    return (log_q * guest).sum(0)


# --------------------------------------------------------------------------- schedules


def scheduled_capacity(schedule: str, epoch: int, epochs: int, frozen_epochs: int, epsilon: float, steps: int | None = None) -> float:
    """Target EC for epoch `epoch` (0-based) of `epochs`; from 1 - eps down to eps (see the module docstring)."""
    high, low = 1.0 - epsilon, epsilon
    if schedule == "separ":
        return high
    if schedule == "fullshare":
        return low
    span = epochs - 1 - 2 * frozen_epochs
    progress = min(max((epoch - frozen_epochs) / span, 0.0), 1.0) if span > 0 else float(epoch >= frozen_epochs)
    if schedule == "linear":
        return high - (high - low) * progress
    if schedule == "step":
        course = min(math.floor(progress * steps), steps - 1)
        return high - (high - low) * course / (steps - 1)
    if schedule == "quad":
        return low + (high - low) * (1.0 - progress) ** 2
    raise ConfigError(f"architecture mpps: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


# --------------------------------------------------------------------------- the architecture


def _mask_sites(encoder: nn.Module, layers: int | str) -> list[nn.Module]:
    """The modules whose outputs the masks multiply: the last `layers` convs of the encoder, or
    the BatchNorm directly after one (see the module docstring)."""
    # The module registered right after a conv in the same parent (nn.Sequential blocks, and
    # torchvision-style blocks that register conv1, bn1, conv2, bn2, ...).
    following: dict[int, nn.Module] = {}
    for module in encoder.modules():
        children = list(module.children())
        for a, b in zip(children, children[1:]):
            following[id(a)] = b
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    if layers == "all":
        chosen = convs
    elif len(convs) < layers:
        raise ConfigError(f"architecture mpps: layers {layers} but the encoder ({type(encoder).__name__}) has only {len(convs)} conv layers")
    else:
        chosen = convs[-layers:]
    sites = []
    for conv in chosen:
        nxt = following.get(id(conv))
        sites.append(nxt if isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == conv.out_channels else conv)
    return sites


def _site_channels(site: nn.Module) -> int:
    return site.num_features if isinstance(site, nn.BatchNorm2d) else site.out_channels


class MPPS(MTLModel):
    """Shared encoder with per-task neuron masks on its last layers, one head per task."""

    def __init__(
        self,
        encoder: nn.Module,
        heads: list[nn.Module],
        mask: str = "bernoulli",
        layers: int | str = 6,
        schedule: str = "linear",
        frozen_epochs: int = 25,
        steps: int | None = None,
        epsilon: float = 0.01,
        target_update: bool = True,
        kl_weight: float = 1.0,
        mask_lr: float | None = None,
    ) -> None:
        super().__init__()
        check_mpps_options(len(heads), mask, layers, schedule, frozen_epochs, steps, epsilon, target_update, kl_weight, mask_lr)
        self.encoder = encoder
        self.heads = nn.ModuleList(heads)
        self.mask_kind = mask
        self.schedule = schedule
        self.frozen_epochs = frozen_epochs
        self.steps = steps
        self.epsilon = float(epsilon)
        self.target_update = target_update
        self.kl_weight = float(kl_weight)
        self.mask_lr = mask_lr
        self.sites = _mask_sites(encoder, layers)
        n_tasks = len(heads)
        for site in self.sites:
            if _site_channels(site) < n_tasks:
                raise ConfigError(f"architecture mpps: a masked layer has {_site_channels(site)} channels, fewer than the {n_tasks} tasks that must each own a block")
        initial = [exclusive_init(_site_channels(s), n_tasks, self.epsilon) for s in self.sites]
        self.phi = nn.ParameterList([nn.Parameter(p.clone()) for p in initial])
        # Pi: the target distribution for the current epoch (a buffer: saved and resumed).
        # Every schedule starts at its highest value (fullshare: its only one), whatever the epochs.
        start = self.epsilon if schedule == "fullshare" else 1.0 - self.epsilon
        for i, target in enumerate(rescale_to_capacity(initial, start, self.epsilon)):
            self.register_buffer(f"target_{i}", target)
        self._noise: list[torch.Tensor] | None = None  # the last step's mask noise, [T, C, T'] per layer

    @property
    def n_tasks(self) -> int:
        return len(self.heads)

    def targets(self) -> list[torch.Tensor]:
        return [getattr(self, f"target_{i}") for i in range(len(self.sites))]

    def initial_phi(self) -> list[torch.Tensor]:
        return [exclusive_init(p.shape[0], self.n_tasks, self.epsilon).to(p) for p in self.phi]

    # ---- forward passes

    @contextlib.contextmanager
    def masks_applied(self, masks: list[torch.Tensor]) -> Iterator[None]:
        """Multiply each site's output channels by masks[l] ([C]) while inside; hooks removed after."""
        handles = [site.register_forward_hook(_multiply_channels(m)) for site, m in zip(self.sites, masks)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def task_masks(self) -> list[list[torch.Tensor]]:
        """Per task the per-layer masks [C] of the last sampled noise, from the current Phi."""
        assert self._noise is not None
        per_layer = [masks_from_noise(phi, noise, self.mask_kind) for phi, noise in zip(self.phi, self._noise)]
        return [[m[:, t] for m in per_layer] for t in range(self.n_tasks)]

    def _masked_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for t, (head, masks) in enumerate(zip(self.heads, self.task_masks())):
            with self.masks_applied(masks):
                z = self.encoder(x)
            outputs.append(head(z))
        return outputs

    def project(self) -> None:
        """Keep Phi in [eps, 1 - eps] (projected gradient steps)."""
        with torch.no_grad():
            for p in self.phi:
                p.clamp_(self.epsilon, 1.0 - self.epsilon)

    def sample_noise(self) -> None:
        """Draw this step's mask noise from the global RNG (checkpointed with the run)."""
        draw = torch.rand if self.mask_kind == "bernoulli" else torch.randn
        self._noise = [draw(p.shape, dtype=p.dtype).to(p.device) for p in self.phi]

    def forward_for_step(self, x: torch.Tensor, head_copies: bool) -> tuple[list[torch.Tensor], None, None]:
        self.project()
        self.sample_noise()
        return self._masked_outputs(x), None, None

    def forward_with_representation(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        if self.training and self._noise is not None:
            # Recomputing a training batch's losses (FAMO, Auto-Lambda): the step's masks again.
            return self._masked_outputs(x), None
        z = self.encoder(x)
        return [head(z) for head in self.heads], z

    # ---- the mask parameters' own gradient

    def kl_divergence(self) -> torch.Tensor:
        kl = bernoulli_kl if self.mask_kind == "bernoulli" else gaussian_kl
        return sum(kl(phi, target).sum() for phi, target in zip(self.phi, self.targets()))

    def private_gradients(self, losses: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Phi's gradient from this step's task losses [T] (graph kept for the method's backward)."""
        if self.mask_kind == "bernoulli":
            masks = [masks_from_noise(phi, noise, "bernoulli") for phi, noise in zip(self.phi, self._noise)]
            log_q = sum(bernoulli_log_prob(phi, m) for phi, m in zip(self.phi, masks))
            task_term = (losses.detach().to(log_q) * log_q).sum()
        else:
            task_term = losses.sum()
        surrogate = task_term + self.kl_weight * self.kl_divergence()
        grads = torch.autograd.grad(surrogate, list(self.phi), retain_graph=True, allow_unused=True)
        return [(p, torch.zeros_like(p) if g is None else g) for p, g in zip(self.phi, grads)]

    def parameter_groups(self) -> list[dict]:
        network = [p for name, p in self.named_parameters() if not name.startswith("phi.")]
        masks = {"params": list(self.phi)}
        if self.mask_lr is not None:
            masks["lr"] = self.mask_lr
        return [{"params": network}, masks]

    # ---- the curriculum

    @torch.no_grad()
    def end_epoch(self, epoch: int, epochs: int) -> dict:
        """Log this epoch's EC (model, per layer, target) and set the next epoch's target Pi."""
        phis = [p.clamp(self.epsilon, 1.0 - self.epsilon) for p in self.phi]
        record = {
            "exclusive_capacity": round(float(model_exclusive_capacity(phis)), 6),
            "layer_exclusive_capacity": [round(float(exclusive_capacity(p).mean()), 6) for p in phis],
            "target_exclusive_capacity": round(float(model_exclusive_capacity(self.targets())), 6),
            "scheduled_capacity": round(scheduled_capacity(self.schedule, epoch, epochs, self.frozen_epochs, self.epsilon, self.steps), 6),
            "schedule": self.schedule,
            "mask": self.mask_kind,
            "target_update": self.target_update,
        }
        if epoch + 1 < epochs:
            capacity = scheduled_capacity(self.schedule, epoch + 1, epochs, self.frozen_epochs, self.epsilon, self.steps)
            base = phis if self.target_update else self.initial_phi()
            for target, new in zip(self.targets(), rescale_to_capacity(base, capacity, self.epsilon)):
                target.copy_(new)
        return record

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        return self.heads.parameters()

    def task_parameter_groups(self) -> list[list[nn.Parameter]]:
        return [list(head.parameters()) for head in self.heads]


def _multiply_channels(mask: torch.Tensor):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output * mask.view(1, -1, *([1] * (output.dim() - 2))).to(output.dtype)

    return hook


def check_mpps_options(n_tasks: int, mask: str, layers: int | str, schedule: str, frozen_epochs: int, steps: int | None, epsilon: float, target_update: bool, kl_weight: float, mask_lr: float | None) -> None:
    where = "architecture mpps"
    if n_tasks < 2:
        raise ConfigError(f"{where}: needs at least 2 tasks, got {n_tasks}")
    if mask not in MASK_KINDS:
        raise ConfigError(f"{where}: mask must be one of {', '.join(MASK_KINDS)}, got {mask!r}")
    if layers != "all" and (isinstance(layers, bool) or not isinstance(layers, int) or layers < 1):
        raise ConfigError(f"{where}: layers must be a positive integer (the last k conv layers) or 'all', got {layers!r}")
    if schedule not in SCHEDULES:
        raise ConfigError(f"{where}: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if isinstance(frozen_epochs, bool) or not isinstance(frozen_epochs, int) or frozen_epochs < 0:
        raise ConfigError(f"{where}: frozen_epochs must be a non-negative integer, got {frozen_epochs!r}")
    if schedule == "step":
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ConfigError(f"{where}: schedule step needs steps, an integer >= 2 (the number of courses), got {steps!r}")
    elif steps is not None:
        raise ConfigError(f"{where}: steps is an option of schedule step only (schedule is {schedule!r})")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 < epsilon < 0.5:
        raise ConfigError(f"{where}: epsilon must be a number in (0, 0.5), got {epsilon!r}")
    if not isinstance(target_update, bool):
        raise ConfigError(f"{where}: target_update must be true or false, got {target_update!r}")
    if isinstance(kl_weight, bool) or not isinstance(kl_weight, (int, float)) or not math.isfinite(kl_weight) or kl_weight < 0:
        raise ConfigError(f"{where}: kl_weight must be a finite number >= 0, got {kl_weight!r}")
    if mask_lr is not None and (isinstance(mask_lr, bool) or not isinstance(mask_lr, (int, float)) or not math.isfinite(mask_lr) or mask_lr <= 0):
        raise ConfigError(f"{where}: mask_lr must be a positive number or null (the training lr), got {mask_lr!r}")


@ARCHITECTURES.register("mpps")
def mpps(
    backbone: Backbone,
    mask: str = "bernoulli",
    layers: int | str = 6,
    schedule: str = "linear",
    frozen_epochs: int = 25,
    steps: int | None = None,
    epsilon: float = 0.01,
    target_update: bool = True,
    kl_weight: float = 1.0,
    mask_lr: float | None = None,
) -> MPPS:
    """`model: {architecture: mpps, architecture_options: {mask: ..., layers: ..., ...}}`."""
    return MPPS(backbone.encoder, backbone.heads, mask, layers, schedule, frozen_epochs, steps, epsilon, target_update, kl_weight, mask_lr)
