"""DYMU (Raychaudhuri et al., CVPR 2022): tree-structured multi-task networks cut from an anchor net.

The pieces, each usable alone:

* `AnchorNet`: N frozen single-task networks of one backbone, each split into L blocks
  (`TREE_BLOCKS` adapts a backbone: SegNet's resolution stages, a dilated ResNet-34/50's stem
  and 4 layers, MobileNetV2's stem and 7 bottleneck sequences; grouped by `block_stages`) plus
  its task head.
  Node (l, j) is stream j's block l.  In a tree every node at layer l >= 1 reads one parent
  node of layer l - 1 and every task head reads one node of the last layer; layer 0 reads the
  input.  With each node on its own stream the tree is the anchor net (N single-task networks);
  with every node on stream 0 it is a hard-sharing network over stream 0's trunk.
* `Tree`: one architecture (a parent per node per decision layer), its active nodes and a
  printable form; `AnchorNet.cost` counts its parameters and FLOPs (multiply-accumulates of
  convolutions and linear layers, measured once per node at the dataset's input size).
* `gumbel_softmax`: the sampler of the edges during training (straight-through: one parent in
  the forward pass, the relaxed probabilities' gradient in the backward pass).
* `EdgeHyperNet`: (r, c) -> per decision layer the [N, N] parent logits, from the embedding
  p = sum_i r_i e_i + c e_c (32-d) and an MLP (2 hidden layers of 100).
* `WeightHyperNet`: (r, c) -> offsets of every BatchNorm scale and shift of every node (its own
  embedding p, an MLP with 3 hidden layers of 100), the cross-task adaptation of the paper's
  second stage.  Its last layer starts at zero (our choice), so an untrained weight hypernet
  leaves the anchor weights unchanged.
* `task_affinity` (representation similarity analysis over K images, per layer, supplement D),
  `choosing_node_usage` (P_use, supplement E) and `branching_regulariser` (the paper's
  Omega = c lambda_A L_active + lambda_I L_inactive, with the patent's formulas).

BatchNorm runs on the anchors' running statistics (the anchor net is frozen), so a tree's
outputs are deterministic and a disjoint tree reproduces the anchors exactly.  (The paper's
Sec. 3.3.2 writes the modulated BatchNorm with "the batch statistics of the node input"; we keep
the anchors' running statistics, which a cross-task edge then feeds features of another stream.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from mtlpareto.errors import ConfigError
from mtlpareto.registry import Registry

State = tuple[torch.Tensor, tuple]  # a block's input/output: the feature map and what the path carries (pooling indices)


# --------------------------------------------------------------------------- sampling


def gumbel_softmax(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None, hard: bool = True) -> torch.Tensor:
    """One Gumbel-softmax sample per row of `logits` [..., K] (Jang et al. 2017; Maddison et al. 2017).

    y = softmax((logits + g) / temperature) with g = -log(-log U), U ~ U(0, 1) drawn from
    `generator`.  `hard`: the one-hot argmax of y in the forward pass with y's gradient
    (straight-through).  The argmax of logits + g is distributed as softmax(logits).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device="cpu").to(logits.device)
    tiny = torch.finfo(logits.dtype).tiny
    gumbel = -torch.log((-torch.log(u.clamp_min(tiny))).clamp_min(tiny))
    soft = torch.softmax((logits + gumbel) / temperature, dim=-1)
    return straight_through(soft) if hard else soft


def straight_through(soft: torch.Tensor) -> torch.Tensor:
    """The one-hot argmax of `soft` in the forward pass, `soft`'s gradient in the backward pass."""
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return one_hot - soft.detach() + soft


def temperature_at(step: int, start: float, decay: float, every: int) -> float:
    """The annealed Gumbel temperature: start * decay ** (step // every) (paper: 5, 0.97, 300)."""
    return float(start) * float(decay) ** (int(step) // int(every))


# --------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class Tree:
    """One architecture: `parents[l - 1][j]` is the parent (a node of layer l - 1) of node j of
    layer l (l = 1..L-1); `heads[i]` the node of layer L - 1 that task i's head reads."""

    parents: tuple[tuple[int, ...], ...]
    heads: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.parents) + 1

    @staticmethod
    def disjoint(n_tasks: int, n_layers: int) -> "Tree":
        """Every task on its own stream: the anchor net."""
        own = tuple(range(n_tasks))
        return Tree(tuple(own for _ in range(n_layers - 1)), own)

    @staticmethod
    def shared(n_tasks: int, n_layers: int, stream: int = 0) -> "Tree":
        """Every node on one stream: hard sharing over that stream's trunk."""
        same = tuple(stream for _ in range(n_tasks))
        return Tree(tuple(same for _ in range(n_layers - 1)), same)

    @staticmethod
    def from_choices(choices: Sequence[torch.Tensor]) -> "Tree":
        """From one [N, N] one-hot or probability matrix per decision layer (the heads' last)."""
        rows = [tuple(int(v) for v in c.argmax(-1)) for c in choices]
        return Tree(tuple(rows[:-1]), rows[-1])

    def active_nodes(self) -> list[list[int]]:
        """Per layer the sorted nodes some task's path passes through."""
        layers = [sorted(set(self.heads))]
        for parents in reversed(self.parents):
            layers.append(sorted({parents[j] for j in layers[-1]}))
        return layers[::-1]

    def path(self, task: int) -> list[int]:
        """The node of each layer on task `task`'s path, input side first."""
        node = self.heads[task]
        nodes = [node]
        for parents in reversed(self.parents):
            node = parents[node]
            nodes.append(node)
        return nodes[::-1]

    def groups(self, task_names: Sequence[str]) -> list[list[list[str]]]:
        """Per layer the tasks that share a node (one list per active node)."""
        paths = [self.path(t) for t in range(len(self.heads))]
        out = []
        for layer in range(self.n_layers):
            nodes: dict[int, list[str]] = {}
            for t, p in enumerate(paths):
                nodes.setdefault(p[layer], []).append(task_names[t])
            out.append([nodes[n] for n in sorted(nodes)])
        return out

    def describe(self, task_names: Sequence[str]) -> str:
        """One line per layer: which tasks share which node, e.g. `layer 0: [semantic depth] [normal]`."""
        lines = []
        for layer, groups in enumerate(self.groups(task_names)):
            lines.append(f"layer {layer}: " + " ".join("[" + " ".join(g) + "]" for g in groups))
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"parents": [list(p) for p in self.parents], "heads": list(self.heads)}

    @staticmethod
    def from_json(d: dict) -> "Tree":
        return Tree(tuple(tuple(p) for p in d["parents"]), tuple(d["heads"]))


# --------------------------------------------------------------------------- backbone adapters

# name of a backbone -> function(encoder module, block_stages) -> list of L block modules, each
# mapping a State to a State; the encoder's output is the last block's feature map.
TREE_BLOCKS: Registry[Callable[[nn.Module, Sequence[int] | None], list[nn.Module]]] = Registry("DYMU backbone (tree blocks)")


class BlockGroup(nn.Module):
    """Consecutive stages run as one tree layer."""

    def __init__(self, stages: list[nn.Module]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward(self, h: torch.Tensor, carried: tuple) -> State:
        for stage in self.stages:
            h, carried = stage(h, carried)
        return h, carried


class SegNetDownStage(nn.Module):
    """A SegNet encoder stage: its convolutions, then 2x2 max-pooling whose indices the path carries."""

    def __init__(self, first: nn.Module, rest: nn.Module, pool: nn.Module) -> None:
        super().__init__()
        self.first, self.rest, self.pool = first, rest, pool

    def forward(self, h: torch.Tensor, carried: tuple) -> State:
        pooled, indices = self.pool(self.rest(self.first(h)))
        return pooled, carried + (indices,)


class SegNetUpStage(nn.Module):
    """A SegNet decoder stage: max-unpooling with the path's latest indices, then its convolutions."""

    def __init__(self, first: nn.Module, rest: nn.Module, unpool: nn.Module) -> None:
        super().__init__()
        self.first, self.rest, self.unpool = first, rest, unpool

    def forward(self, h: torch.Tensor, carried: tuple) -> State:
        return self.rest(self.first(self.unpool(h, carried[-1]))), carried[:-1]


def group_stages(stages: list[nn.Module], block_stages: Sequence[int] | None, backbone: str) -> list[nn.Module]:
    """Stages grouped into tree layers: `block_stages` lists how many stages each layer holds."""
    sizes = [1] * len(stages) if block_stages is None else list(block_stages)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes) or sum(sizes) != len(stages):
        raise ConfigError(f"dymu: block_stages {block_stages!r} must be positive integers summing to {backbone}'s {len(stages)} stages")
    blocks, start = [], 0
    for size in sizes:
        blocks.append(BlockGroup(stages[start : start + size]))
        start += size
    return blocks


@TREE_BLOCKS.register("segnet")
def segnet_blocks(trunk: nn.Module, block_stages: Sequence[int] | None = None) -> list[nn.Module]:
    """SegNet's 10 resolution stages (5 down, 5 up; models/segnet.py) as tree layers."""
    stages: list[nn.Module] = [SegNetDownStage(first, rest, trunk.pool) for first, rest in trunk.encoder_stages]
    stages += [SegNetUpStage(first, rest, trunk.unpool) for first, rest in trunk.decoder_stages]
    return group_stages(stages, block_stages, "segnet")


class PlainStage(nn.Module):
    """A stage that maps a feature map to a feature map; the path carries nothing for it."""

    def __init__(self, layers: nn.Module) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, h: torch.Tensor, carried: tuple) -> State:
        return self.layers(h), carried


@TREE_BLOCKS.register("resnet50_aspp")
@TREE_BLOCKS.register("resnet34_aspp")
def resnet_blocks(encoder: nn.Module, block_stages: Sequence[int] | None = None) -> list[nn.Module]:
    """A dilated ResNet's 5 stages (stem, layer1-4; models/resnet_aspp.py) as tree layers."""
    stages = [PlainStage(m) for m in (encoder.stem, encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4)]
    return group_stages(stages, block_stages, encoder.model)


@TREE_BLOCKS.register("mobilenetv2")
def mobilenetv2_blocks(encoder: nn.Module, block_stages: Sequence[int] | None = None) -> list[nn.Module]:
    """MobileNetV2's 8 stages (the stem, 7 bottleneck sequences; models/mobilenetv2.py) as tree layers."""
    return group_stages([PlainStage(stage) for stage in encoder.stages], block_stages, "mobilenetv2")


# --------------------------------------------------------------------------- anchor net


def count_macs(module: nn.Module, run: Callable[[], object]) -> int:
    """Multiply-accumulates of the convolutions and linear layers inside `module` during `run()`."""
    total = [0]

    def conv_hook(m: nn.Conv2d, inputs, output) -> None:
        kh, kw = m.kernel_size
        total[0] += output.numel() // output.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs, output) -> None:
        total[0] += output.numel() // output.shape[0] * m.in_features

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return total[0]


def batchnorm_layout(module: nn.Module) -> list[tuple[str, int]]:
    """(name, channels) of every BatchNorm inside `module`, in module order."""
    return [(name, m.num_features) for name, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class AnchorNet(nn.Module):
    """N frozen streams of L blocks and one head per task; computes any tree over them.

    `streams[j][l]` is node (l, j); `heads[i]` is task i's head (from stream i's network).
    Parameters never train (requires_grad False) and BatchNorm always uses running statistics.
    """

    def __init__(self, streams: list[list[nn.Module]], heads: list[nn.Module], sample_input: torch.Tensor) -> None:
        super().__init__()
        n = len(heads)
        if len(streams) != n or n < 2 or len({len(s) for s in streams}) != 1 or len(streams[0]) < 1:
            raise ConfigError(f"dymu: the anchor net needs one stream per task (>= 2), all of the same depth; got {len(streams)} streams for {n} tasks")
        self.streams = nn.ModuleList(nn.ModuleList(s) for s in streams)
        self.heads = nn.ModuleList(heads)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()
        self.bn_layout = [[batchnorm_layout(block) for block in stream] for stream in self.streams]
        self.head_bn_layout = [batchnorm_layout(h) for h in self.heads]
        self._measure(sample_input[:1])

    @property
    def n_tasks(self) -> int:
        return len(self.heads)

    @property
    def n_layers(self) -> int:
        return len(self.streams[0])

    def train(self, mode: bool = True) -> "AnchorNet":
        return super().train(False)  # frozen: running statistics, always

    @torch.no_grad()
    def _measure(self, x: torch.Tensor) -> None:
        """Parameters and MACs of every node and head, on one sample of the dataset's size."""
        self.node_parameters = [[sum(p.numel() for p in block.parameters()) for block in stream] for stream in self.streams]
        self.head_parameters = [sum(p.numel() for p in h.parameters()) for h in self.heads]
        self.node_flops = [[0] * self.n_layers for _ in range(self.n_tasks)]
        self.head_flops = [0] * self.n_tasks
        for j, stream in enumerate(self.streams):
            state: State = (x, ())
            for l, block in enumerate(stream):
                out: list = []
                self.node_flops[j][l] = count_macs(block, lambda b=block, s=state: out.append(b(*s)))
                state = out[0]
            self.head_flops[j] = count_macs(self.heads[j], lambda: self.heads[j](state[0]))

    # ------------------------------------------------------------------ costs

    def cost(self, tree: Tree) -> dict[str, int]:
        """Parameters and FLOPs (MACs) of the active nodes and the heads of `tree`."""
        params = sum(self.head_parameters)
        flops = sum(self.head_flops)
        for l, nodes in enumerate(tree.active_nodes()):
            params += sum(self.node_parameters[j][l] for j in nodes)
            flops += sum(self.node_flops[j][l] for j in nodes)
        return {"parameters": int(params), "flops": int(flops)}

    # ------------------------------------------------------------------ forward

    def _node(self, l: int, j: int, state: State, offsets: dict | None) -> State:
        block = self.streams[j][l]
        if not offsets or (l, j) not in offsets:
            return block(*state)
        return functional_call(block, offsets[(l, j)], state)

    def _head(self, i: int, h: torch.Tensor, offsets: dict | None) -> torch.Tensor:
        if not offsets or ("head", i) not in offsets:
            return self.heads[i](h)
        return functional_call(self.heads[i], offsets[("head", i)], (h,))

    def forward_tree(self, x: torch.Tensor, tree: Tree, offsets: dict | None = None) -> list[torch.Tensor]:
        """Task outputs of `tree`; only its active nodes run (a shared node runs once)."""
        if len(tree.heads) != self.n_tasks or tree.n_layers != self.n_layers:
            raise ConfigError(f"tree has {len(tree.heads)} heads and {tree.n_layers} layers; the anchor net has {self.n_tasks} tasks and {self.n_layers} layers")
        active = tree.active_nodes()
        states = {j: self._node(0, j, (x, ()), offsets) for j in active[0]}
        for l in range(1, self.n_layers):
            states = {j: self._node(l, j, states[tree.parents[l - 1][j]], offsets) for j in active[l]}
        return [self._head(i, states[tree.heads[i]][0], offsets) for i in range(self.n_tasks)]

    def forward_relaxed(self, x: torch.Tensor, choices: Sequence[torch.Tensor], offsets: dict | None = None) -> list[torch.Tensor]:
        """Outputs with every node computed on a weighted sum of its candidate parents.

        `choices[l - 1]` [N, N] weighs node j's parents at layer l, `choices[-1]` the heads'.
        With straight-through one-hot weights the values are those of `Tree.from_choices`,
        and the weights receive gradients; what a path carries (pooling indices) follows the
        largest weight.
        """
        if len(choices) != self.n_layers:
            raise ConfigError(f"{len(choices)} choice matrices for {self.n_layers} decision layers")
        states = [self._node(0, j, (x, ()), offsets) for j in range(self.n_tasks)]
        stacked = torch.stack([s[0] for s in states])
        for l in range(1, self.n_layers):
            w = choices[l - 1]
            mixed = torch.einsum("jk,k...->j...", w.to(stacked.dtype), stacked)
            best = w.argmax(-1).tolist()
            states = [self._node(l, j, (mixed[j], states[best[j]][1]), offsets) for j in range(self.n_tasks)]
            stacked = torch.stack([s[0] for s in states])
        w = choices[-1]
        mixed = torch.einsum("ik,k...->i...", w.to(stacked.dtype), stacked)
        return [self._head(i, mixed[i], offsets) for i in range(self.n_tasks)]

    @torch.no_grad()
    def layer_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """[L][N] each stream's own block outputs, flattened per image ([K, D])."""
        out: list[list[torch.Tensor]] = [[] for _ in range(self.n_layers)]
        for j, stream in enumerate(self.streams):
            state: State = (x, ())
            for l, block in enumerate(stream):
                state = block(*state)
                out[l].append(state[0].reshape(x.shape[0], -1).double())
        return out


# --------------------------------------------------------------------------- task affinity


def similarity_matrix(features: torch.Tensor) -> torch.Tensor:
    """[K, K] Pearson correlation between the K images' feature vectors (RSA's similarity of instances)."""
    f = features - features.mean(dim=1, keepdim=True)
    f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return f @ f.T


def task_affinity(features: list[list[torch.Tensor]]) -> torch.Tensor:
    """[L, N, N] the paper's per-layer task affinity A_l (supplement D, representation similarity analysis).

    Per layer l and task i the similarity S_l(i) [K, K] of its stream's features over the K
    images; D_l(i, j) = ||S_l(i) - S_l(j)||_F; each row of D_l divided by its largest entry (its
    smallest is the diagonal's 0, so this is the paper's row-wise scaling to [0, 1]); A_l = 1 -
    that.  Rows are scaled separately, so A_l need not be symmetric.  The regulariser uses the
    mean over layers (`mean_affinity`).
    """
    layers = []
    for per_task in features:
        k = per_task[0].shape[0]
        if k < 3:
            raise ConfigError(f"dymu: task affinity needs at least 3 images, got {k}")
        s = torch.stack([similarity_matrix(f) for f in per_task])  # [N, K, K]
        dist = torch.cdist(s.flatten(1), s.flatten(1))
        top = dist.max(dim=1, keepdim=True).values
        layers.append(1.0 - torch.where(top > 0, dist / top.clamp_min(1e-300), torch.zeros_like(dist)))
    return torch.stack(layers)


def mean_affinity(affinity: torch.Tensor) -> torch.Tensor:
    """A(i, j) = 1/L sum_l A_l(i, j): the one affinity matrix L_active weighs pairs with."""
    return affinity.mean(0) if affinity.dim() == 3 else affinity


# --------------------------------------------------------------------------- regulariser


def node_occupancy(probabilities: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """[L] of [N tasks, N nodes]: probability that task i's path passes node k of layer l.

    `probabilities[l - 1]` [N, N] are node j's parent probabilities at layer l, the last the
    heads'.  Paths are followed from the heads down, each choice independent.
    """
    occupancy = [probabilities[-1]]
    for p in reversed(probabilities[:-1]):
        occupancy.append(occupancy[-1] @ p)
    return occupancy[::-1]


def choosing_node_usage(probabilities: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """[L] of [N]: P_use of the nodes that make decision l (the nodes of layer l + 1; the heads last).

    The paper's dynamic programme (supplement E), from the heads down: every head is used, and a
    node is used when some used node of the layer above picks it as parent,
    P_use(l, i) = 1 - prod_k (1 - P_use(l + 1, k) nu_k(i)), with nu_k(i) the probability that node
    k picks i (`probabilities`, as in `node_occupancy`).  Exact for the last layer's nodes (the
    heads are always there); below, it treats the nodes above as used independently.
    """
    usage = [torch.ones(probabilities[-1].shape[0], dtype=probabilities[-1].dtype, device=probabilities[-1].device)]
    for p in reversed(probabilities[1:]):
        usage.append(1.0 - torch.prod(1.0 - usage[-1].unsqueeze(1) * p, dim=0))
    return usage[::-1]


def active_tasks(preference: torch.Tensor, active_threshold: float) -> list[int]:
    """The paper's active set A = {i : r_i >= tau}, tau = active_threshold / N (paper: 0.6 / N)."""
    n = preference.shape[0]
    return [i for i in range(n) if float(preference[i]) >= active_threshold / n]


def branching_regulariser(
    samples: Sequence[torch.Tensor],
    probabilities: Sequence[torch.Tensor],
    preference: torch.Tensor,
    budget: float,
    affinity: torch.Tensor,
    lambda_active: float = 1.0,
    lambda_inactive: float = 0.1,
    active_threshold: float = 0.6,
) -> torch.Tensor:
    """Omega = c lambda_A L_active + lambda_I L_inactive (Sec. 3.3.1 and the patent's equations).

    `samples[l]` [N, N]: the relaxed Gumbel-softmax samples nu^l_i of every node's parent at
    decision l (l = 0..L-1; node j of layer l + 1 picks among layer l's nodes, the heads last);
    `probabilities[l]` their categorical parameters, for P_use (`choosing_node_usage`);
    `affinity` [N, N] the mean task affinity A (or [L, N, N], averaged here).

    * L_active = sum_l (L - l) / L sum_{i != j in A} A(i, j) P_use(l, i) P_use(l, j) ||nu^l_i - nu^l_j||^2:
      nodes of two affine active tasks that are likely used take the same parent, the more so
      the lower the layer (weight 1 for the first decision, 1/L for the heads');
    * L_inactive = sum_l sum_{j in I} min_{i in A} ||nu^l_i - nu^l_j||^2: an inactive task copies
      the branching of its closest active task.
    """
    n = preference.shape[0]
    a = mean_affinity(affinity).to(samples[0].dtype)
    active = active_tasks(preference, active_threshold)
    inactive = [i for i in range(n) if i not in active]
    usage = choosing_node_usage(probabilities)
    n_decisions = len(samples)
    l_active = samples[0].new_zeros(())
    l_inactive = samples[0].new_zeros(())
    for l, (nu, used) in enumerate(zip(samples, usage)):
        gap = ((nu.unsqueeze(1) - nu.unsqueeze(0)) ** 2).sum(-1)  # [N, N] ||nu_i - nu_j||^2
        if len(active) > 1:
            idx = torch.tensor(active, device=nu.device)
            pair = (a * used.unsqueeze(1) * used.unsqueeze(0) * gap)[idx][:, idx]
            l_active = l_active + (n_decisions - l) / n_decisions * (pair.sum() - torch.diagonal(pair).sum())
        if inactive and active:
            l_inactive = l_inactive + gap[inactive][:, active].min(dim=1).values.sum()
    return budget * lambda_active * l_active + lambda_inactive * l_inactive


# --------------------------------------------------------------------------- hypernetworks


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class PreferenceEmbedding(nn.Module):
    """p = sum_i r_i e_i + c e_c with learnable task embeddings e_i and budget embedding e_c
    (supplement G: the input of both hypernets, 32-dimensional)."""

    def __init__(self, n_tasks: int, embedding_dim: int) -> None:
        super().__init__()
        self.task_embeddings = nn.Parameter(torch.randn(n_tasks, embedding_dim) / embedding_dim**0.5)
        self.budget_embedding = nn.Parameter(torch.randn(embedding_dim) / embedding_dim**0.5)

    def forward(self, preference: torch.Tensor, budget: float | torch.Tensor) -> torch.Tensor:
        return preference.to(self.task_embeddings.dtype) @ self.task_embeddings + float(budget) * self.budget_embedding


class EdgeHyperNet(nn.Module):
    """(r, c) -> the parent logits [N, N] of every decision layer (L - 1 layers of nodes, then the heads).

    The embedding p (`PreferenceEmbedding`), an MLP (2 hidden layers of 100) and one linear head
    per decision layer (supplement G).
    """

    def __init__(self, n_tasks: int, n_layers: int, embedding_dim: int = 32, hidden_dim: int = 100, n_hidden: int = 2, own_stream_bias: float = 0.0) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.embedding = PreferenceEmbedding(n_tasks, embedding_dim)
        self.body = mlp([embedding_dim] + [hidden_dim] * n_hidden)
        self.layer_heads = nn.ModuleList(nn.Linear(hidden_dim, n_tasks * n_tasks) for _ in range(n_layers))
        # own_stream_bias: the search starts near the anchor net (every node on its own stream)
        # instead of near uniform edges; small output weights keep (r, c)'s first effect gentle.
        with torch.no_grad():
            for head in self.layer_heads:
                head.weight.mul_(0.1)
                head.bias.copy_(own_stream_bias * torch.eye(n_tasks).flatten())

    @property
    def device(self) -> torch.device:
        return self.embedding.budget_embedding.device

    def forward(self, preference: torch.Tensor, budget: float | torch.Tensor) -> list[torch.Tensor]:
        h = self.body(self.embedding(preference, budget))
        return [head(h).view(self.n_tasks, self.n_tasks) for head in self.layer_heads]


class WeightHyperNet(nn.Module):
    """(r, c) -> additive offsets of every node's (and head's) BatchNorm scales and shifts.

    Its own embedding p of (r, c) (supplement G: "in both cases"), an MLP with 3 hidden layers of
    100 and a linear output over all BatchNorm channels (the paper's linear heads, concatenated).
    """

    def __init__(self, anchor: AnchorNet, hidden_dim: int = 100, n_hidden: int = 3, embedding_dim: int = 32) -> None:
        super().__init__()
        self.slots: list[tuple[object, str, int]] = []  # (node key, BN name, channels)
        for j, stream in enumerate(anchor.bn_layout):
            for l, layout in enumerate(stream):
                self.slots += [((l, j), name, c) for name, c in layout]
        for i, layout in enumerate(anchor.head_bn_layout):
            self.slots += [(("head", i), name, c) for name, c in layout]
        self.size = 2 * sum(c for _, _, c in self.slots)
        self.embedding = PreferenceEmbedding(anchor.n_tasks, embedding_dim)
        self.body = mlp([embedding_dim] + [hidden_dim] * n_hidden)
        self.out = nn.Linear(hidden_dim, max(self.size, 1))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, preference: torch.Tensor, budget: float | torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.embedding(preference, budget)))

    def offsets(self, anchor: AnchorNet, preference: torch.Tensor, budget: float | torch.Tensor) -> dict:
        """{node key: {param name: modulated tensor}} for `functional_call` on the anchor's blocks."""
        flat = self(preference, budget)
        modules = {}
        out: dict = {}
        start = 0
        for key, name, c in self.slots:
            if key not in modules:
                modules[key] = anchor.heads[key[1]] if key[0] == "head" else anchor.streams[key[1]][key[0]]
            bn = modules[key].get_submodule(name)
            d_scale, d_shift = flat[start : start + c], flat[start + c : start + 2 * c]
            start += 2 * c
            entry = out.setdefault(key, {})
            entry[f"{name}.weight"] = bn.weight + d_scale
            entry[f"{name}.bias"] = bn.bias + d_shift
        return out


__all__ = [
    "AnchorNet",
    "DymuModel",
    "EdgeHyperNet",
    "TREE_BLOCKS",
    "Tree",
    "WeightHyperNet",
    "active_tasks",
    "branching_regulariser",
    "choosing_node_usage",
    "gumbel_softmax",
    "mean_affinity",
    "node_occupancy",
    "straight_through",
    "task_affinity",
    "temperature_at",
]


# --------------------------------------------------------------------------- the controllable model


class DymuModel(nn.Module):
    """Anchor net + edge hypernet + weight hypernet: one network per (preference, budget).

    `configure(r, c)` picks the most likely tree for (r, c) and its BatchNorm offsets; then
    `model(x)` gives the task outputs of that tree and `model.tree.describe(model.task_names)`
    prints it.  `cost()` gives its parameters and FLOPs.
    """

    def __init__(self, anchor: AnchorNet, edge: EdgeHyperNet, weight: WeightHyperNet, task_names: Sequence[str]) -> None:
        super().__init__()
        self.anchor, self.edge, self.weight = anchor, edge, weight
        self.task_names = list(task_names)
        self.tree: Tree | None = None
        self.offsets: dict | None = None
        self.setting: tuple[tuple[float, ...], float] | None = None

    @property
    def n_tasks(self) -> int:
        return self.anchor.n_tasks

    def check_setting(self, preference, budget) -> tuple[torch.Tensor, float]:
        r = torch.as_tensor(preference, dtype=torch.float32).flatten()
        if r.numel() != self.n_tasks or not bool(torch.isfinite(r).all()) or bool((r < 0).any()) or float(r.sum()) <= 0:
            raise ConfigError(f"preference {[float(v) for v in r]} must be {self.n_tasks} non-negative numbers, not all zero")
        c = float(budget)
        if not 0.0 <= c <= 1.0:
            raise ConfigError(f"budget {budget!r} must lie in [0, 1] (0: no pressure to share, 1: the strongest)")
        return r / r.sum(), c

    @torch.no_grad()
    def choose(self, preference, budget) -> Tree:
        """The most likely architecture for (r, c): every node's most probable parent."""
        r, c = self.check_setting(preference, budget)
        return Tree.from_choices(self.edge(r.to(self.edge.device), c))

    @torch.no_grad()
    def configure(self, preference, budget) -> Tree:
        r, c = self.check_setting(preference, budget)
        r = r.to(self.edge.device)
        self.tree = Tree.from_choices(self.edge(r, c))
        self.offsets = self.weight.offsets(self.anchor, r, c)
        self.setting = (tuple(round(float(v), 6) for v in r), c)
        return self.tree

    def cost(self, tree: Tree | None = None) -> dict[str, int]:
        return self.anchor.cost(tree or self._configured())

    def _configured(self) -> Tree:
        if self.tree is None:
            raise ConfigError("call model.configure(preference, budget) before running the model")
        return self.tree

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.anchor.forward_tree(x, self._configured(), self.offsets)
