"""MultiMNIST-style two-digit images (Sener & Koltun 2018, Sec. 4.1; Lin et al. 2019, Pareto MTL).

Each example: a left digit and a *different* right digit drawn uniformly from one split's
source digits.  On a 36x36 canvas the left digit goes top-left, shifted by (dy, dx) in [0, 4]^2,
the right digit bottom-right at (8 - dy', 8 - dx') with (dy', dx') in [0, 4]^2 (36 - 28 = 8);
overlapping pixels take the max.  The canvas is resized to 28x28 (bilinear, antialias) and
rounded back to uint8.  Labels: [left_label, right_label].

MultiMNIST = (mnist, mnist), MultiFashion = (fashion_mnist, fashion_mnist),
MultiFashion+MNIST = (mnist left, fashion_mnist right); (mnist5k, mnist5k) works offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mtlpareto.data.sources import SOURCES, load_source
from mtlpareto.errors import ConfigError

DIGIT = 28
CANVAS = 36
MAX_SHIFT = 4
BASE = CANVAS - DIGIT  # 8: the right digit's unshifted top-left corner
OUT = 28
TASKS = ["left", "right"]
_RESIZE_CHUNK = 8192  # bounds the float copy of the canvases (~42 MB per chunk)

# Independent RNG streams derived from the one dataset seed (SeedSequence mixes [seed, stream]),
# so e.g. changing val_size does not change which test examples are drawn.
_STREAM_SPLIT_LEFT, _STREAM_TRAIN, _STREAM_VAL, _STREAM_TEST, _STREAM_SPLIT_RIGHT = range(5)


def _derive_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1)[0])


def _paste_max(canvas: Tensor, digits: Tensor, offsets: Tensor) -> None:
    """canvas[i, y:y+28, x:x+28] = max(canvas, digits[i]) with (y, x) = offsets[i].

    Loops over the <= 81 distinct offsets, not over examples: each group is one batched op.
    """
    span = BASE + 1
    key = offsets[:, 0] * span + offsets[:, 1]
    for k in torch.unique(key).tolist():
        idx = (key == k).nonzero().squeeze(1)
        y, x = divmod(int(k), span)
        region = canvas[idx, y : y + DIGIT, x : x + DIGIT]
        canvas[idx, y : y + DIGIT, x : x + DIGIT] = torch.maximum(region, digits[idx])


def _compose_canvas(left: Tensor, right: Tensor, left_offsets: Tensor, right_offsets: Tensor) -> Tensor:
    """uint8 [n, 36, 36] canvases from digits [n, 28, 28] at absolute (y, x) offsets [n, 2]."""
    canvas = torch.zeros(len(left), CANVAS, CANVAS, dtype=torch.uint8)
    _paste_max(canvas, left, left_offsets)
    _paste_max(canvas, right, right_offsets)
    return canvas


def _resize(canvas: Tensor) -> Tensor:
    """uint8 [n, 36, 36] -> uint8 [n, 1, 28, 28] (bilinear + antialias, rounded)."""
    out = torch.empty(len(canvas), 1, OUT, OUT, dtype=torch.uint8)
    for start in range(0, len(canvas), _RESIZE_CHUNK):
        chunk = canvas[start : start + _RESIZE_CHUNK].unsqueeze(1).float()
        small = F.interpolate(chunk, size=(OUT, OUT), mode="bilinear", align_corners=False, antialias=True)
        out[start : start + len(chunk)] = small.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _check_pool(images: Tensor, labels: Tensor, what: str) -> None:
    if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (DIGIT, DIGIT):
        raise ValueError(f"{what}: expected uint8 [N, 28, 28], got {images.dtype} {tuple(images.shape)}")
    if labels.dim() != 1 or len(labels) != len(images):
        raise ValueError(f"{what}: expected labels [N] matching {len(images)} images, got {tuple(labels.shape)}")


def build_multi_digits(
    images: Tensor,
    labels: Tensor,
    n_examples: int,
    seed: int,
    *,
    right_images: Tensor | None = None,
    right_labels: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """n_examples two-digit images: uint8 [n, 1, 28, 28], int64 labels [n, 2] = (left, right).

    Both digits come from (images, labels), the right one a different source digit than the
    left; if right_images/right_labels are given, the right digit is drawn from them instead
    (MultiFashion+MNIST).  Deterministic for a seed (a local torch.Generator; draw order:
    left index, right index, left offset, right offset).
    """
    _check_pool(images, labels, "images")
    separate = right_images is not None
    if separate:
        if right_labels is None:
            raise ValueError("right_images needs right_labels")
        _check_pool(right_images, right_labels, "right_images")
    else:
        right_images, right_labels = images, labels
    n = int(n_examples)
    if n < 0:
        raise ConfigError(f"number of examples must be >= 0, got {n}")
    if n == 0:
        return torch.zeros(0, 1, OUT, OUT, dtype=torch.uint8), torch.zeros(0, 2, dtype=torch.int64)
    if (not separate and len(images) < 2) or (separate and (len(images) < 1 or len(right_images) < 1)):
        raise ConfigError(f"need at least two source digits to build two-digit images, got {len(images)}")

    g = torch.Generator().manual_seed(int(seed))
    left = torch.randint(0, len(images), (n,), generator=g)
    if separate:
        right = torch.randint(0, len(right_images), (n,), generator=g)
    else:
        # Uniform over the other N-1 digits: draw from N-1 and skip the left index.
        right = torch.randint(0, len(images) - 1, (n,), generator=g)
        right += (right >= left).long()
    left_off = torch.randint(0, MAX_SHIFT + 1, (n, 2), generator=g)
    right_off = BASE - torch.randint(0, MAX_SHIFT + 1, (n, 2), generator=g)

    canvas = _compose_canvas(images[left], right_images[right], left_off, right_off)
    x = _resize(canvas)
    y = torch.stack([labels[left], right_labels[right]], dim=1).to(torch.int64)
    return x, y


def _hold_out(images: Tensor, labels: Tensor, n_val: int, seed: int, what: str) -> tuple[tuple, tuple]:
    """Split a train split's source digits into disjoint (train, val) pools."""
    n = len(images)
    if n_val > n - 2:
        raise ConfigError(
            f"val_size={n_val} holds out {n_val} of the {n} train source digits of {what}; "
            f"at most {n - 2} (two must stay for training)"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])


def build_multimnist_dataset(
    left_source: str,
    right_source: str,
    root: Path,
    train_size: int | None,
    val_size: int,
    test_size: int | None,
    seed: int,
    download: bool = False,
    mirror: str | None = None,
) -> dict:
    """{"train": (x, y), "val": (x, y), "test": (x, y), "tasks": ["left", "right"], "meta": {...}}.

    Val digits come from ``val_size`` source digits held out of the train split (at least 2
    when val_size > 0), so train, val and test never share a source digit.  A size of None
    means as many examples as source digits (e.g. 54k/6k/10k for MNIST with val_size 6000).
    """
    for name, src in (("left_source", left_source), ("right_source", right_source)):
        if src not in SOURCES:
            raise ConfigError(f"{name}: unknown digit source {src!r}; valid sources: {', '.join(SOURCES)}")
    for name, size in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ConfigError(f"{name} must be a non-negative integer or null, got {size!r}")
    if val_size is None:
        val_size = 0
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    root = Path(root)
    separate = right_source != left_source
    n_val_src = max(val_size, 1 if separate else 2) if val_size > 0 else 0

    left_tr = load_source(left_source, root, train=True, download=download, mirror=mirror)
    left_te = load_source(left_source, root, train=False, download=download, mirror=mirror)
    left_train, left_val = _hold_out(*left_tr, n_val_src, _derive_seed(seed, _STREAM_SPLIT_LEFT), left_source)
    pools = {"train": (left_train, None), "val": (left_val, None), "test": (left_te, None)}
    if separate:
        right_tr = load_source(right_source, root, train=True, download=download, mirror=mirror)
        right_te = load_source(right_source, root, train=False, download=download, mirror=mirror)
        right_train, right_val = _hold_out(
            *right_tr, n_val_src, _derive_seed(seed, _STREAM_SPLIT_RIGHT), right_source
        )
        pools = {"train": (left_train, right_train), "val": (left_val, right_val), "test": (left_te, right_te)}

    requested = {"train": train_size, "val": val_size, "test": test_size}
    streams = {"train": _STREAM_TRAIN, "val": _STREAM_VAL, "test": _STREAM_TEST}
    out: dict = {}
    n_sources: dict = {}
    for split, (left_pool, right_pool) in pools.items():
        n_src = len(left_pool[0]) if right_pool is None else min(len(left_pool[0]), len(right_pool[0]))
        n = requested[split] if requested[split] is not None else n_src
        kwargs = {} if right_pool is None else {"right_images": right_pool[0], "right_labels": right_pool[1]}
        out[split] = build_multi_digits(*left_pool, n, _derive_seed(seed, streams[split]), **kwargs)
        n_sources[split] = (
            {"left": len(left_pool[0])}
            if right_pool is None
            else {"left": len(left_pool[0]), "right": len(right_pool[0])}
        )

    x_train = out["train"][0].float().div_(255.0)
    meta = {
        "kind": "multimnist",
        "left_source": left_source,
        "right_source": right_source,
        "seed": seed,
        "sizes": {split: len(out[split][0]) for split in ("train", "val", "test")},
        "source_digits": n_sources,
        "n_classes": [10, 10],
        "canvas": CANVAS,
        "max_shift": MAX_SHIFT,
        "image_shape": [1, OUT, OUT],
        # Train-split statistics for input normalisation (on the [0, 1] scale).
        "mean": [float(x_train.mean())] if len(x_train) else [0.0],
        "std": [float(x_train.std())] if len(x_train) > 1 else [1.0],
        "reference": "Sener & Koltun 2018 (Sec. 4.1); Lin et al. 2019 (Pareto MTL)",
    }
    return {"train": out["train"], "val": out["val"], "test": out["test"], "tasks": list(TASKS), "meta": meta}
