"""MTL networks: a backbone (what computes) and an architecture (what is shared), two registries.

* A backbone (`MODELS`: lenet, resnet18, convnet, decision_vector, segnet, resnet50_aspp,
  resnet34_aspp, mobilenetv2) builds
  the layers of one network for a task list: an encoder and one head per task (`Backbone`).
  A backbone made of resolution stages (segnet) also lists them (`Backbone.stages`), so an
  architecture can act between stages (MTAN's task attention).
* An architecture (`ARCHITECTURES`: hard_sharing, mtan, mtan_shared_attention, mpps; DYMU trees next) wires
  them into an `MTLModel`, which declares its shared and task-specific parameters and the
  representation that MGDA-UB-style methods differentiate.

Weighting methods only see the `MTLModel` interface, so they run on every architecture.
Adding either is one module plus one import line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from mtlpareto.registry import Registry


STAGE_DIRECTIONS = ("down", "up")


@dataclass(frozen=True)
class StageSpec:
    """One stage (a block at one resolution) of a staged encoder, as attention architectures see it.

    * `tap_channels`: channels of the stage's *tap*, the feature a task's attention reads
      (MTAN: the first convolution's output in an encoder stage, the upsampled input in a
      decoder stage);
    * `out_channels`: channels of the stage's output, which a task's attention mask multiplies;
    * `direction`: "down" if the next stage runs on this output pooled 2x2 (an encoder stage),
      "up" if this stage runs on the previous output upsampled 2x (a decoder stage).
    Tap and output of one stage have the same height and width.
    """

    tap_channels: int
    out_channels: int
    direction: str

    def __post_init__(self) -> None:
        if self.direction not in STAGE_DIRECTIONS:
            raise ValueError(f"StageSpec.direction must be one of {STAGE_DIRECTIONS}, got {self.direction!r}")


@dataclass
class Backbone:
    """The layers of a network: `encoder(x)` is shared input processing, `heads[t]` task t's output layers.

    `stages` (optional; None for unstaged backbones) lists the encoder's stages in the order
    they run.  A backbone that sets it promises `encoder.forward_stages(x)`, returning one
    `(tap, output)` pair per stage from the same computation as `encoder(x)`, whose result is
    the last stage's output; the heads read tensors with that stage's `out_channels`.
    """

    encoder: nn.Module
    heads: list[nn.Module]
    stages: list[StageSpec] | None = None


class MTLModel(nn.Module):
    """What every architecture exposes to training and to the weighting methods."""

    @property
    def n_tasks(self) -> int:
        raise NotImplementedError

    def forward_with_representation(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Task outputs and the shared representation z they depend on.

        Every output must depend on the shared parameters only through z (then gradients
        w.r.t. z bound those w.r.t. the shared parameters: MGDA-UB, GradDrop).  An architecture
        without such a z (task-specific modules inside the shared trunk, as MTAN's attention)
        returns None, and representation-based methods fail with a clear error.
        """
        raise NotImplementedError

    def forward_with_task_representations(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None, list[torch.Tensor] | None]:
        """Outputs, z, and the leaf copies z_t of z that head t reads (None: not supported).

        With the copies, one backward through the heads gives every dL_t/dz_t (MGDA-UB's
        whole Jacobian) and the encoder is backpropagated once, from z.  The default offers
        no copies: methods then take the vmapped Jacobian through all heads (same values).
        """
        outputs, z = self.forward_with_representation(x)
        return outputs, z, None

    def forward_for_step(self, x: torch.Tensor, head_copies: bool) -> tuple[list[torch.Tensor], torch.Tensor | None, list[torch.Tensor] | None]:
        """The training step's forward: outputs, z and, when `head_copies` (a method that only
        needs representation gradients, `Method.uses_representation`), each head's copy of z."""
        if head_copies:
            return self.forward_with_task_representations(x)
        outputs, z = self.forward_with_representation(x)
        return outputs, z, None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_representation(x)[0]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        raise NotImplementedError

    def task_parameters(self) -> Iterator[nn.Parameter]:
        """Every task-specific parameter (heads, task attention, ...)."""
        raise NotImplementedError

    def task_parameter_groups(self) -> list[list[nn.Parameter]] | None:
        """Per task the parameters only its loss depends on, or None when tasks share some
        task-specific parameters.  With the head copies of z, one backward of sum_t L_t then
        gives every head's own gradient, which the weights only rescale."""
        return None

    # Generic training hooks (no-ops here): an architecture with parameters of its own that the
    # weighting method must not touch (MPPS's mask distributions) or a per-epoch curriculum.
    def private_gradients(self, losses: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Gradients of parameters outside shared_parameters/task_parameters, from this step's
        task losses [T]; computed before the method's backward (keep the graph), set after it."""
        return []

    def parameter_groups(self) -> list[dict]:
        """The optimiser's parameter groups (one group: every parameter)."""
        return [{"params": list(self.parameters())}]

    def end_epoch(self, epoch: int, epochs: int) -> dict:
        """Called after each training epoch (0-based); what it returns goes into the epoch log."""
        return {}


MODELS: Registry[Callable[..., Backbone]] = Registry("model")
ARCHITECTURES: Registry[Callable[[Backbone], MTLModel]] = Registry("architecture")

DEFAULT_ARCHITECTURE = "hard_sharing"


def build_model(name: str, task_outputs: list[int], input_shape: tuple[int, ...], architecture: str = DEFAULT_ARCHITECTURE, architecture_options: dict | None = None, **options) -> MTLModel:
    """The `architecture` (with its `architecture_options`) over backbone `name` (with `options`)
    for tasks with `task_outputs` outputs each."""
    wire = ARCHITECTURES.get(architecture)
    backbone = MODELS.get(name)(task_outputs=task_outputs, in_channels=input_shape[0], input_size=input_shape[-1], **options)
    return wire(backbone, **(architecture_options or {}))


# Registry lines: one per backbone or architecture file.
from mtlpareto.models import hard_sharing  # noqa: E402,F401
from mtlpareto.models import lenet, resnet, convnet, decision_vector  # noqa: E402,F401
from mtlpareto.models import segnet  # noqa: E402,F401
from mtlpareto.models import mtan  # noqa: E402,F401
from mtlpareto.models import resnet_aspp  # noqa: E402,F401
from mtlpareto.models import mobilenetv2  # noqa: E402,F401
from mtlpareto.models import mpps  # noqa: E402,F401
from mtlpareto.models.hard_sharing import HardSharing  # noqa: E402

__all__ = ["ARCHITECTURES", "Backbone", "HardSharing", "MODELS", "MTLModel", "StageSpec", "build_model"]
