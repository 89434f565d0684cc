"""Dense task types against independent references: brute-force per-class counts, a direct
per-pixel arccos, hand-computed depth errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import TASK_TYPES, build_task
from mtlpareto.tasks.depth import DepthTask
from mtlpareto.tasks.instance import InstanceOffsetTask
from mtlpareto.tasks.normals import SurfaceNormalTask, normalize_channels
from mtlpareto.tasks.segmentation import SegmentationTask


def _brute_force_segmentation(pred: np.ndarray, truth: np.ndarray, n_classes: int, ignore: int) -> tuple[float, float]:
    """mIoU and pixel accuracy by counting each class's pixels directly (no confusion matrix)."""
    labelled = truth != ignore
    ious = []
    for c in range(n_classes):
        in_pred = (pred == c) & labelled
        in_truth = truth == c
        union = int((in_pred | in_truth).sum())
        if union == 0:
            continue  # absent from both: no IoU
        ious.append(int((in_pred & in_truth).sum()) / union)
    return float(np.mean(ious)), float((pred[labelled] == truth[labelled]).mean())


def test_miou_and_pixel_accuracy_match_a_brute_force_count_over_the_split():
    rng = np.random.default_rng(0)
    n_classes, ignore = 7, -1
    task = SegmentationTask("seg", n_classes)
    meter = task.meter()
    preds, truths = [], []
    for batch in range(3):  # batches of different sizes: one matrix over the split, not a mean of batches
        n = 2 + batch
        logits = torch.from_numpy(rng.normal(size=(n, n_classes, 9, 11))).float()
        # Classes 5 and 6 never in the truth; 6 also suppressed in the prediction: 6 is absent from both.
        truth = rng.integers(0, 5, size=(n, 9, 11))
        truth[rng.random(truth.shape) < 0.2] = ignore
        logits[:, 6] = -1e3
        meter.update(logits, torch.from_numpy(truth).to(torch.int8))
        preds.append(logits.argmax(1).numpy())
        truths.append(truth)
    pred, truth = np.concatenate([p.ravel() for p in preds]), np.concatenate([t.ravel() for t in truths])
    assert (pred == 5).any() and not (pred == 6).any()
    miou, pixel_acc = _brute_force_segmentation(pred, truth, n_classes, ignore)
    scores = meter.compute()
    assert scores["miou"] == pytest.approx(miou, abs=1e-6)
    assert scores["pixel_acc"] == pytest.approx(pixel_acc, abs=1e-6)
    assert not math.isnan(scores["miou"]) and scores["loss"] > 0


def test_segmentation_loss_ignores_unlabelled_pixels_and_a_fully_ignored_batch_is_zero():
    task = SegmentationTask("seg", 3)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    truth = torch.randint(0, 3, (2, 4, 4))
    masked = truth.clone()
    masked[:, :2] = -1
    expected = torch.nn.functional.cross_entropy(logits[:, :, 2:], truth[:, 2:])
    assert float(task.loss(logits, masked).detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    empty = task.loss(logits, torch.full_like(truth, -1))
    empty.backward()
    assert float(empty.detach()) == 0.0 and float(logits.grad.abs().sum()) == 0.0
    assert task.meter().compute() == {"miou": None, "pixel_acc": None, "loss": None}


def test_segmentation_rejects_labels_out_of_range_and_mismatched_shapes():
    task = SegmentationTask("seg", 3)
    meter = task.meter()
    with pytest.raises(ValueError, match="outside 0..2"):
        meter.update(torch.randn(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 3]]]))
    with pytest.raises(ValueError, match=r"expected outputs \[N, 3, H, W\]"):
        task.loss(torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="differ in batch size or H x W"):
        task.loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="ignore_index"):
        SegmentationTask("seg", 3, ignore_index=1)


def test_depth_errors_by_hand():
    task = DepthTask("depth")
    # Two batches; zeros in the target are invalid pixels.
    out1 = torch.tensor([[[[1.0, 2.0], [3.0, 9.0]]]])
    tgt1 = torch.tensor([[[[2.0, 2.0], [4.0, 0.0]]]])
    out2 = torch.tensor([[[[5.0]]]])
    tgt2 = torch.tensor([[[[4.0]]]], dtype=torch.float16)
    meter = task.meter()
    meter.update(out1, tgt1)
    meter.update(out2, tgt2)
    # |errors| on valid pixels: 1, 0, 1, 1 -> abs 3/4; relative: 1/2, 0, 1/4, 1/4 -> 1/4.
    scores = meter.compute()
    assert scores["abs_err"] == pytest.approx(0.75)
    assert scores["rel_err"] == pytest.approx(0.25)
    assert float(task.loss(out1, tgt1)) == pytest.approx(2 / 3)
    assert float(task.loss(out1, torch.zeros_like(tgt1))) == 0.0
    with pytest.raises(ValueError, match=r"expected a 4-d target"):
        task.loss(out1, tgt1[:, 0])


def _random_unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.normal(size=shape)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_normal_angle_errors_match_a_direct_per_pixel_arccos():
    rng = np.random.default_rng(1)
    task = SurfaceNormalTask("normal")
    truth = _random_unit(rng, (3, 3, 6, 5))
    truth[0, :, :2, :] = 0.0  # invalid pixels
    # Predictions near the truth (angles spread over 0..~60 degrees), not unit length.
    pred = (truth + 0.6 * rng.normal(size=truth.shape)) * rng.uniform(0.5, 3.0, size=(3, 1, 6, 5))
    meter = task.meter()
    meter.update(torch.from_numpy(pred[:2]).float(), torch.from_numpy(truth[:2]).half())
    meter.update(torch.from_numpy(pred[2:]).float(), torch.from_numpy(truth[2:]).float())
    angles = []
    for n in range(3):
        for i in range(6):
            for j in range(5):
                t = truth[n, :, i, j]
                if not t.any():
                    continue
                p = pred[n, :, i, j] / np.linalg.norm(pred[n, :, i, j])
                angles.append(math.degrees(math.acos(max(-1.0, min(1.0, float(p @ t))))))
    angles = np.array(angles)
    assert len(angles) == 3 * 30 - 10
    scores = meter.compute()
    assert scores["mean_angle"] == pytest.approx(angles.mean(), abs=0.05)  # float16 truths
    assert scores["median_angle"] == pytest.approx(np.median(angles), abs=0.05)
    for name, threshold in (("within_11_25", 11.25), ("within_22_5", 22.5), ("within_30", 30.0)):
        assert scores[name] == pytest.approx((angles < threshold).mean(), abs=1.5 / len(angles))
    assert 0 < scores["within_11_25"] < scores["within_30"] < 1


def test_normal_loss_is_one_minus_cosine_on_valid_pixels_after_normalising():
    task = SurfaceNormalTask("normal")
    truth = torch.zeros(1, 3, 1, 2)
    truth[0, 2, 0, 0] = 1.0  # pixel 0 valid (+z), pixel 1 invalid
    pred = torch.zeros(1, 3, 1, 2)
    pred[0, :, 0, 0] = torch.tensor([5.0, 0.0, 5.0])  # 45 degrees, length 7.07
    pred[0, :, 0, 1] = torch.tensor([1.0, 0.0, 0.0])
    assert float(task.loss(pred, truth)) == pytest.approx(1 - math.cos(math.radians(45)), abs=1e-6)
    meter = task.meter()
    meter.update(pred, truth)
    assert meter.compute()["mean_angle"] == pytest.approx(45.0, abs=1e-4)


@pytest.mark.parametrize("shape", [(8, 3, 64, 96), (1, 3, 1, 1), (3, 3, 7, 13), (2, 3, 33, 17), (2, 3, 1, 1000), (2, 5, 9, 11)])
@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 1e15])
def test_fast_channel_normalisation_is_torch_normalize_bit_for_bit_in_values_and_gradients(shape, scale):
    g = torch.Generator().manual_seed(hash((shape, scale)) % 2**31)
    x = torch.randn(shape, generator=g) * scale
    x[0, :, 0, 0] = 0  # a zero vector: clamped norm, masked gradient
    probe = torch.randn(shape, generator=g)
    results = []
    for normalize in (lambda v: torch.nn.functional.normalize(v, dim=1), normalize_channels):
        leaf = x.clone().requires_grad_(True)
        out = normalize(leaf)
        (out * probe).sum().backward()
        results.append((out.detach(), leaf.grad))
    (ref, ref_grad), (fast, fast_grad) = results
    assert torch.equal(ref, fast)
    assert torch.equal(ref_grad, fast_grad)


def test_fast_channel_normalisation_hands_other_layouts_and_dtypes_to_torch():
    x = torch.randn(2, 3, 5, 7)
    last = x.to(memory_format=torch.channels_last)
    assert torch.equal(normalize_channels(last), torch.nn.functional.normalize(last, dim=1))
    assert torch.equal(normalize_channels(x.double()), torch.nn.functional.normalize(x.double(), dim=1))


def test_instance_offsets_l1_on_instance_pixels_only():
    task = InstanceOffsetTask("instance")
    target = torch.full((1, 2, 1, 3), 250.0)
    target[0, :, 0, 0] = torch.tensor([1.0, -2.0])
    target[0, :, 0, 1] = torch.tensor([0.0, 0.0])  # the centre pixel of an instance: a valid zero offset
    output = torch.zeros(1, 2, 1, 3, requires_grad=True)
    loss = task.loss(output, target)
    assert float(loss.detach()) == pytest.approx((1 + 2 + 0 + 0) / 4)
    loss.backward()
    assert float(output.grad[0, :, 0, 2].abs().sum()) == 0.0  # background pixel: no gradient
    meter = task.meter()
    meter.update(output.detach(), target)
    assert meter.compute() == {"l1_err": 0.75, "loss": 0.75}


@pytest.mark.parametrize("task", [SegmentationTask("s", 13), DepthTask("d"), SurfaceNormalTask("n"), InstanceOffsetTask("i")])
def test_dense_tasks_are_registered_and_rebuild_from_their_config(task):
    assert TASK_TYPES.get(task.type_name) is type(task)
    assert build_task(task.config()) == task
    assert task.primary in task.metrics




def _all_method_names() -> list[str]:
    from mtlpareto.methods import METHODS

    # Methods that need validation batches (Auto-Lambda) train through the loop: tests/test_method_auto_lambda.py.
    return [n for n in METHODS.names() if not METHODS.get(n).needs_validation_batches]


@pytest.mark.parametrize("name", _all_method_names())
def test_every_method_trains_two_steps_on_a_dense_batch_and_moves_the_shared_weights(name):
    """Segmentation, depth and normals of rendered rooms, a two-conv shared encoder, 1x1 conv heads."""
    from torch import nn

    from mtlpareto.data.scenes import ScenesKind
    from mtlpareto.methods import StepContext, build_method, standalone_options
    from mtlpareto.models.hard_sharing import HardSharing

    torch.manual_seed(0)
    data = ScenesKind.build(None, n_train=8, n_test=1, val_size=0, image_size=[16, 24], seed=1)
    tasks = ScenesKind.tasks({})
    x = data["train"][0].float() / 255
    targets = [data["train"][1][t.name] for t in tasks]
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    model = HardSharing(encoder, [nn.Conv2d(8, t.out_channels, 1) for t in tasks])
    method = build_method({"name": name}, n_tasks=3, **standalone_options(name, 3))
    optimizer = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.shared_parameters()]
    for step in range(2):
        optimizer.zero_grad()
        idx = torch.arange(4 * step, 4 * step + 4)
        z = model.encode(x[idx])
        losses = torch.stack([t.loss(o, y[idx]) for t, o, y in zip(tasks, model.decode(z), targets)])
        weights = method.backward(StepContext(model, losses, z, step=step))
        assert weights.shape == (3,) and torch.isfinite(weights).all()
        optimizer.step()
        method.end_epoch(step, losses.detach())
    moved = sum(float((a.detach() - b).abs().sum()) for a, b in zip(model.shared_parameters(), before))
    assert moved > 0
