"""Dense-prediction models: SegNet (hard sharing and MTAN) and the dilated ResNet-50 with ASPP heads.

Shapes, the shared/task parameter partition, parameter counts against the reference
implementations, clear errors, every weighting method training on a dense batch, and one run
through the unchanged training loop and evaluator.  Small widths and 32-64 px inputs keep this
fast on CPU.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from mtlpareto.config import load_profile
from mtlpareto.data import DATASETS
from mtlpareto.data.store import save_processed
from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS, StepContext, build_method
from mtlpareto.models import MODELS, StageSpec, build_model
from mtlpareto.models import resnet_aspp
from mtlpareto.models.hypernet import FunctionalTarget
from mtlpareto.models.mtan import MTAN
from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.training import evaluate_run, train_run

SMALL_SEGNET = {"width": 0.125}  # widths 8, 16, 32, 64, 64
# (backbone, architecture, options) of every dense combination; the ResNet one is full width.
COMBINATIONS = [
    ("segnet", "hard_sharing", SMALL_SEGNET),
    ("segnet", "mtan", SMALL_SEGNET),
    ("segnet", "mtan_shared_attention", SMALL_SEGNET),
    ("resnet50_aspp", "hard_sharing", {"output_stride": 8}),
    ("resnet50_aspp", "hard_sharing", {"output_stride": 16}),
]
COMBINATION_IDS = [f"{b}-{a}-{'-'.join(f'{k}{v}' for k, v in o.items())}" for b, a, o in COMBINATIONS]
# Methods that differentiate the shared representation z (none under MTAN).
REPRESENTATION_METHODS = {"mgda_ub", "graddrop"}
# Methods that need validation batches (Auto-Lambda) train through the loop: tests/test_method_auto_lambda.py.
NETWORK_METHODS = [name for name in METHODS.names() if METHODS.get(name).learns == "network" and not METHODS.get(name).needs_validation_batches]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Small convolutions: a second intra-op thread buys little and spins when CPUs are shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count(params) -> int:
    return sum(p.numel() for p in params)


def build_on_meta(name: str, task_outputs: list[int], input_shape: tuple[int, ...], **options):
    # Parameter counts need no storage: full-width models are built on the meta device.
    with torch.device("meta"):
        return build_model(name, task_outputs, input_shape, **options)


# ---------------------------------------------------------------------------------- shapes


SHAPE_CASES = [
    *[(b, a, o, outputs, h, w) for b, a, o in COMBINATIONS[:3] for outputs, h, w in [([13, 1, 3], 32, 32), ([7], 64, 32), ([2, 5], 32, 64)]],
    # A full-width ResNet-50 is slow to build: one case per output stride.
    ("resnet50_aspp", "hard_sharing", {"output_stride": 8}, [13, 1, 3], 64, 32),
    ("resnet50_aspp", "hard_sharing", {"output_stride": 16}, [2, 5], 32, 64),
]


@pytest.mark.parametrize(("backbone", "architecture", "options", "task_outputs", "height", "width"), SHAPE_CASES)
def test_outputs_are_full_resolution_maps_with_the_tasks_channels(backbone, architecture, options, task_outputs, height, width):
    torch.manual_seed(0)
    model = build_model(backbone, task_outputs, (3, height, width), architecture=architecture, **options)
    assert model.n_tasks == len(task_outputs)
    outputs = model(torch.randn(2, 3, height, width))
    assert [tuple(o.shape) for o in outputs] == [(2, c, height, width) for c in task_outputs]
    assert all(bool(torch.isfinite(o).all()) for o in outputs)


@pytest.mark.parametrize("architecture", ["hard_sharing", "mtan"])
def test_segnet_runs_on_other_sizes_than_it_was_built_for_and_in_channels_last(architecture):
    torch.manual_seed(0)
    model = build_model("segnet", [4, 1], (1, 32, 32), architecture=architecture, **SMALL_SEGNET).eval()
    x = torch.randn(2, 1, 96, 64)
    reference = model(x)
    assert [tuple(o.shape) for o in reference] == [(2, 4, 96, 64), (2, 1, 96, 64)]
    model = model.to(memory_format=torch.channels_last)
    for got, want in zip(model(x.contiguous(memory_format=torch.channels_last)), reference):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_hard_sharing_representation_is_the_shared_feature_map():
    torch.manual_seed(0)
    segnet = build_model("segnet", [3, 1], (3, 32, 32), **SMALL_SEGNET)
    outputs, z = segnet.forward_with_representation(torch.randn(2, 3, 32, 64))
    assert tuple(z.shape) == (2, 8, 32, 64)  # the trunk's full-resolution output (width 64 x 0.125)
    torch.testing.assert_close(segnet.heads[0](z), outputs[0])
    resnet = build_model("resnet50_aspp", [3], (3, 32, 32), output_stride=8)
    _, z = resnet.forward_with_representation(torch.randn(2, 3, 32, 64))
    assert tuple(z.shape) == (2, 2048, 4, 8)  # layer4 at 1/8: stride replaced by dilation


def test_segnet_stages_describe_what_forward_stages_returns():
    torch.manual_seed(0)
    backbone = MODELS.get("segnet")(task_outputs=[2], in_channels=3, input_size=64, width=0.25)
    backbone.encoder.eval()
    assert [s.direction for s in backbone.stages] == ["down"] * 5 + ["up"] * 5
    x = torch.randn(1, 3, 64, 64)
    taps = backbone.encoder.forward_stages(x)
    assert len(taps) == len(backbone.stages)
    sides = [64, 32, 16, 8, 4, 4, 8, 16, 32, 64]
    for (tap, out), spec, side in zip(taps, backbone.stages, sides):
        assert tuple(tap.shape) == (1, spec.tap_channels, side, side)
        assert tuple(out.shape) == (1, spec.out_channels, side, side)
    torch.testing.assert_close(backbone.encoder(x), taps[-1][1])  # encoder(x) is the last stage's output


def test_same_seed_same_model_and_outputs():
    def build_and_run():
        torch.manual_seed(3)
        model = build_model("segnet", [3, 1], (3, 32, 32), architecture="mtan", **SMALL_SEGNET)
        return model.state_dict(), model(torch.ones(2, 3, 32, 32))

    (state_a, out_a), (state_b, out_b) = build_and_run(), build_and_run()
    assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert all(torch.equal(a, b) for a, b in zip(out_a, out_b))


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("name", "options", "bad_size", "factor"), [
    ("segnet", SMALL_SEGNET, (48, 64), 32),
    ("segnet", SMALL_SEGNET, (64, 80), 32),
    ("resnet50_aspp", {"output_stride": 8}, (36, 32), 8),
    ("resnet50_aspp", {"output_stride": 16}, (32, 40), 16),
])
def test_inputs_not_divisible_by_the_downsampling_factor_fail_clearly(name, options, bad_size, factor):
    model = build_model(name, [2], (3, 64, 64), **options)
    with pytest.raises(ConfigError, match=rf"model {name}: input height and width must be positive multiples of {factor}.*got {bad_size[0]}x{bad_size[1]}"):
        model(torch.randn(2, 3, *bad_size))


@pytest.mark.parametrize(("name", "options", "match"), [
    ("segnet", {"width": 0.125}, "input width must be a positive multiple of 32"),
    ("segnet", {"width": 0}, "width must be a positive number"),
    ("segnet", {"width": "wide"}, "width must be a positive number"),
    ("resnet50_aspp", {"output_stride": 4}, "output_stride must be one of 8, 16"),
    ("resnet50_aspp", {"atrous_rates": [6, 0]}, "atrous_rates must be a non-empty list of positive integers"),
    ("resnet50_aspp", {"pretrained": True, "in_channels": 1}, "pretrained ImageNet weights need 3 input channels"),
])
def test_bad_options_fail_when_the_model_is_built(name, options, match):
    input_shape = (options.pop("in_channels", 3), 64, 100 if "input width" in match else 64)
    with pytest.raises(ConfigError, match=match):
        build_model(name, [2], input_shape, **options)


def test_mtan_needs_a_staged_backbone():
    with pytest.raises(ConfigError, match="architecture mtan needs a staged backbone.*Sequential has no stages"):
        build_model("lenet", [10, 10], (1, 28, 28), architecture="mtan")
    with pytest.raises(ConfigError, match="architecture mtan_shared_attention needs a staged backbone"):
        build_model("lenet", [10, 10], (1, 28, 28), architecture="mtan_shared_attention")
    with pytest.raises(ConfigError, match="architecture mtan needs a staged backbone"):
        build_model("resnet50_aspp", [2], (3, 32, 32), architecture="mtan")


def test_stage_spec_rejects_an_unknown_direction():
    with pytest.raises(ValueError, match="direction must be one of"):
        StageSpec(tap_channels=4, out_channels=4, direction="sideways")


def test_aspp_head_says_a_training_batch_needs_two_images():
    model = build_model("resnet50_aspp", [2], (3, 32, 32), output_stride=16)
    with pytest.raises(ConfigError, match="at least 2 images per training batch"):
        model(torch.randn(1, 3, 32, 32))
    assert tuple(model.eval()(torch.randn(1, 3, 32, 32))[0].shape) == (1, 2, 32, 32)


@pytest.mark.parametrize(("name", "options"), [("segnet", SMALL_SEGNET), ("resnet50_aspp", {})])
def test_batchnorm_models_cannot_be_hypernetwork_targets(name, options):
    with pytest.raises(ConfigError, match=r"hypernetwork target HardSharing has buffers \[.*running_mean.*\]; generated targets must hold parameters only \(no BatchNorm"):
        FunctionalTarget(lambda: build_model(name, [2, 1], (3, 32, 32), **options))


# ---------------------------------------------------------------------- pretrained weights


def test_pretrained_without_the_weights_file_says_where_torchvision_looks(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(ConfigError) as err:
        build_model("resnet50_aspp", [2], (3, 32, 32), pretrained=True)
    message = str(err.value)
    assert str(expected) in message
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in message
    assert "TORCH_HOME" in message and "pretrained: false" in message


def test_pretrained_weights_file_with_a_wrong_hash_is_reported_corrupt(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path, _ = resnet_aspp.pretrained_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"resnet50-0676ba61\.pth is corrupt \(SHA-256 " + hashlib.sha256(b"not a checkpoint").hexdigest()[:12]):
        build_model("resnet50_aspp", [2], (3, 32, 32), pretrained=True)


def test_pretrained_weights_are_loaded_into_the_encoder(monkeypatch, tmp_path):
    from torchvision.models import resnet50

    torch.manual_seed(11)
    source = resnet50(weights=None)
    path = tmp_path / "resnet50-local.pth"  # no hash in the name: nothing to check
    torch.save(source.state_dict(), path)
    monkeypatch.setattr(resnet_aspp, "pretrained_weights_path", lambda: (path, "file://unused"))
    torch.manual_seed(0)
    model = build_model("resnet50_aspp", [2], (3, 32, 32), pretrained=True)
    torch.testing.assert_close(model.encoder.stem[0].weight, source.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.encoder.layer4[2].conv3.weight, source.layer4[2].conv3.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.encoder.layer3[0].bn1.running_var, source.layer3[0].bn1.running_var, rtol=0, atol=0)


# ------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(("backbone", "architecture", "options"), COMBINATIONS, ids=COMBINATION_IDS)
def test_shared_and_task_parameters_partition_all_parameters(backbone, architecture, options):
    model = build_on_meta(backbone, [13, 1, 3], (3, 32, 32), architecture=architecture, **options)
    shared = [id(p) for p in model.shared_parameters()]
    task = [id(p) for p in model.task_parameters()]
    assert len(set(shared)) == len(shared) and len(set(task)) == len(task)  # no parameter listed twice
    assert not set(shared) & set(task)
    assert set(shared) | set(task) == {id(p) for p in model.parameters()}
    assert shared and task


def test_segnet_matches_the_reference_parameter_counts():
    # MTAN's code divides by 24,981,069, "the parameter space of the single task network"
    # (lorenmt/mtan issue 30): model_segnet_single.py with the 13-class semantic head.
    assert count(build_on_meta("segnet", [13], (3, 288, 384)).parameters()) == 24_981_069
    # Nash-MTL experiments/nyuv2/models.py, counted: SegNetSplit 25,055,185; SegNetMtan
    # 44,229,073, of which 8,953,728 in the task attention modules and 111,889 in the heads.
    split = build_on_meta("segnet", [13, 1, 3], (3, 288, 384))
    assert count(split.parameters()) == 25_055_185
    assert count(split.task_parameters()) == 111_889
    mtan = build_on_meta("segnet", [13, 1, 3], (3, 288, 384), architecture="mtan")
    assert count(mtan.parameters()) == 44_229_073
    assert count(mtan.attention.parameters()) == 8_953_728
    assert count(mtan.task_parameters()) == 8_953_728 + 111_889
    # Nash-MTL's own partition: all but the heads' parameters are "shared".
    nash = build_on_meta("segnet", [13, 1, 3], (3, 288, 384), architecture="mtan_shared_attention")
    assert count(nash.shared_parameters()) == 44_229_073 - 111_889
    assert count(nash.task_parameters()) == 111_889
    # MTAN paper Table 3 reports #P. 1.77 for MTAN relative to one single-task network.
    assert round(44_229_073 / 24_981_069, 2) == 1.77


def test_segnet_width_scales_every_channel_count():
    backbone = MODELS.get("segnet")(task_outputs=[2], in_channels=3, input_size=32, width=0.25)
    assert backbone.encoder.widths == [16, 32, 64, 128, 128]
    # Conv weights scale with width^2 (the input layer and head outputs with width): roughly 1/16.
    full = count(build_on_meta("segnet", [2], (3, 32, 32)).shared_parameters())
    quarter = count(backbone.encoder.parameters())
    assert 1 / 17 < quarter / full < 1 / 15


def test_resnet50_encoder_is_torchvisions_resnet50_without_its_classifier():
    from torchvision.models import resnet50

    with torch.device("meta"):
        reference = resnet50(weights=None)
    expected = count(reference.parameters()) - count(reference.fc.parameters())
    assert expected == 23_508_032
    for output_stride in (8, 16):
        model = build_on_meta("resnet50_aspp", [13, 1, 3], (3, 288, 384), output_stride=output_stride)
        assert count(model.shared_parameters()) == expected
    # DeepLabV3 head: ASPP (1x1, three 3x3 atrous, pooling; 256 each; 1x1 projection) + 3x3 + 1x1.
    aspp = 2048 * 256 + 3 * 2048 * 256 * 9 + 2048 * 256 + 5 * 256 * 256 + 5 * 2 * 256 + 2 * 256
    per_head = aspp + 256 * 256 * 9 + 2 * 256 + 256 * 13 + 13
    assert count(model.heads[0].parameters()) == per_head


# --------------------------------------------------------------- every method on a dense batch


class PixelL1Task(Task):
    """Per-pixel regression with an L1 loss on valid pixels (target 0 = invalid), e.g. depth."""

    type_name = "test_pixel_l1"
    metrics = {"abs_err": False}
    primary = "abs_err"

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = (target != 0).float()
        return ((output - target).abs() * valid).sum() / valid.sum().clamp_min(1)

    def meter(self) -> MetricMeter:
        return _AbsErrorMeter(self)


class _AbsErrorMeter(MetricMeter):
    def __init__(self, task: PixelL1Task) -> None:
        self.task, self.total, self.count = task, 0.0, 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        valid = target != 0
        self.total += float((output - target).abs()[valid].sum())
        self.count += int(valid.sum())

    def compute(self) -> dict:
        return {"abs_err": self.total / self.count}


def dense_batch(n: int = 4, height: int = 32, width: int = 32, classes: int = 5):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, height, width, generator=g)
    labels = torch.randint(0, classes, (n, height, width), generator=g)
    labels[:, :2] = -100  # ignored pixels, as unlabelled NYUv2 pixels
    depth = torch.rand(n, 1, height, width, generator=g) + 0.5
    depth[..., :3] = 0  # invalid depth
    return x, labels, depth


def method_options(name: str, n_tasks: int) -> dict:
    sweep = METHODS.get(name).sweep
    if sweep == "preferences":
        options = {"preference": (0.3, 0.7)}
    elif sweep == "tasks":
        options = {"task": 1}
    else:
        options = {}
    if name == "pareto_mtl":
        options["preference_set"] = [(0.3, 0.7), (0.7, 0.3), (0.5, 0.5)]
    return options


def train_two_steps(model, method, batch, jacobian: str = "loop") -> torch.Tensor:
    x, labels, depth = batch
    segmentation, depth_task = ClassificationTask("seg", 5), PixelL1Task("depth")
    optimizer = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.01)
    for step in range(2):
        optimizer.zero_grad(set_to_none=True)
        outputs, z = model.forward_with_representation(x)
        losses = torch.stack([segmentation.loss(outputs[0], labels), depth_task.loss(outputs[1], depth)])
        weights = method.backward(StepContext(model, losses, z, step=step, jacobian=jacobian))
        optimizer.step()
    return weights


def test_every_network_method_is_covered():
    assert len(NETWORK_METHODS) >= 13 and {"uniform", "mgda", "mgda_ub", "pcgrad"} <= set(NETWORK_METHODS)


@pytest.mark.parametrize("architecture", ["hard_sharing", "mtan", "mtan_shared_attention"])
@pytest.mark.parametrize("method_name", NETWORK_METHODS)
def test_every_weighting_method_trains_segnet_on_a_dense_batch(method_name, architecture):
    torch.manual_seed(0)
    model = build_model("segnet", [5, 1], (3, 32, 32), architecture=architecture, **SMALL_SEGNET)
    method = build_method({"name": method_name}, n_tasks=2, **method_options(method_name, 2))
    # What every task uses: under mtan_shared_attention the "shared" attention of a task that
    # a method ignores (single_task) rightly keeps its weights, so the check is on the trunk.
    trunk = lambda: list(MTAN.shared_parameters(model) if isinstance(model, MTAN) else model.shared_parameters())  # noqa: E731
    before = [p.detach().clone() for p in trunk()]
    if architecture.startswith("mtan") and method_name in REPRESENTATION_METHODS:
        with pytest.raises(ConfigError, match=r"architecture MTAN\w* exposes no shared representation; MGDA-UB and GradDrop need one"):
            train_two_steps(model, method, dense_batch())
        return
    weights = train_two_steps(model, method, dense_batch())
    assert weights.shape == (2,) and bool(torch.isfinite(weights).all())
    after = trunk()
    changed = [not torch.equal(b, a) for b, a in zip(before, after)]
    assert all(changed), f"{changed.count(False)} of {len(changed)} shared tensors unchanged"


@pytest.mark.parametrize("method_name", ["uniform", "mgda_ub", "pcgrad"])
def test_methods_train_the_resnet_aspp_model(method_name):
    torch.manual_seed(0)
    model = build_model("resnet50_aspp", [5, 1], (3, 32, 32), output_stride=16)
    method = build_method({"name": method_name}, n_tasks=2)
    before = [p.detach().clone() for p in model.shared_parameters()]
    weights = train_two_steps(model, method, dense_batch(n=2))
    assert bool(torch.isfinite(weights).all())
    changed = [not torch.equal(b, a) for b, a in zip(before, model.shared_parameters())]
    assert all(changed)


def test_mtan_shared_attention_is_mtan_with_another_partition():
    x = torch.randn(2, 3, 32, 32)
    outputs = []
    for architecture in ("mtan", "mtan_shared_attention"):
        torch.manual_seed(5)
        model = build_model("segnet", [2, 1], (3, 32, 32), architecture=architecture, **SMALL_SEGNET)
        outputs.append(model.forward_with_representation(x))
    (mtan_out, mtan_z), (shared_out, shared_z) = outputs
    assert mtan_z is None and shared_z is None
    assert all(torch.equal(a, b) for a, b in zip(mtan_out, shared_out))


def test_mtan_exposes_no_representation_but_hard_sharing_does():
    x = torch.randn(2, 3, 32, 32)
    _, z = build_model("segnet", [2, 1], (3, 32, 32), architecture="mtan", **SMALL_SEGNET).forward_with_representation(x)
    assert z is None
    _, z = build_model("segnet", [2, 1], (3, 32, 32), **SMALL_SEGNET).forward_with_representation(x)
    assert z is not None


def test_mtan_attention_changes_what_each_task_sees():
    # With every attention mask forced to 1 (sigmoid of a large bias) MTAN's task features are
    # the trunk's features passed through the shared transitions; real masks differ per task.
    # Training mode: BatchNorm normalises with the batch's statistics, so the masks vary.
    torch.manual_seed(0)
    model = build_model("segnet", [2, 2], (3, 32, 32), architecture="mtan", **SMALL_SEGNET)
    model.heads[1].load_state_dict(model.heads[0].state_dict())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        first, second = model(x)
        assert (first - second).abs().max() > 1e-3 * first.abs().max()  # same heads, different attention
        for chain in model.attention:
            for module in chain:
                module[-2].bias.fill_(50.0)  # the last BatchNorm's shift: sigmoid -> 1
        first, second = model(x)
    torch.testing.assert_close(first, second)


# ------------------------------------------------------------------ through the training loop


class DenseToyKind:
    """32x32 random images with a 3-class label map and a depth map (tiny, in memory)."""

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        return [ClassificationTask("seg", 3), PixelL1Task("depth")]

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (3, 32, 32)

    @staticmethod
    def fetch(spec: dict, root) -> dict:
        return {}

    @staticmethod
    def build(root, n: int = 24) -> dict:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, 3, 32, 32, generator=g)
        # Labels and depth follow the image, so training can reduce the losses.
        seg = (x[:, 0] * 3).long().clamp_max(2)
        depth = x[:, 1:2] + 0.5
        split = lambda lo, hi: (x[lo:hi], {"seg": seg[lo:hi], "depth": depth[lo:hi]})  # noqa: E731
        return {"train": split(0, n - 8), "val": split(n - 8, n - 4), "test": split(n - 4, n), "meta": {}}


@pytest.fixture
def dense_toy():
    TASK_TYPES.register("test_pixel_l1")(PixelL1Task)
    DATASETS.register("test_dense_toy")(DenseToyKind)
    yield
    TASK_TYPES.unregister("test_pixel_l1")
    DATASETS.unregister("test_dense_toy")


def dense_profile(model: dict, method: str):
    return load_profile({
        "profile": "toy",
        "profiles": {"toy": {
            "device": "cpu", "seeds": [0],
            "datasets": {"dense": {"kind": "test_dense_toy", "n": 24}},
            "experiments": {"dense": {
                "dataset": "dense", "model": model,
                "train": {"epochs": 2, "batch_size": 8, "optimizer": "adam", "lr": 0.001},
                "methods": {method: {}},
            }},
        }},
    })


def test_a_misspelt_model_option_is_named_with_its_path(dense_toy):
    with pytest.raises(ConfigError, match=r"experiments\.dense\.model\.widht: unknown option; accepted: width"):
        dense_profile({"name": "segnet", "architecture": "mtan", "widht": 0.25}, "uniform")


@pytest.mark.parametrize(("architecture", "method"), [("hard_sharing", "mgda_ub"), ("mtan", "pcgrad")])
def test_segnet_trains_and_evaluates_through_the_one_loop(dense_toy, tmp_path, architecture, method):
    prof = dense_profile({"name": "segnet", "architecture": architecture, "width": 0.125}, method)
    spec = prof.run_spec(prof.runs()[0])
    save_processed(DenseToyKind.build(None), tmp_path / "dense.pt")
    train_run(spec, tmp_path / "dense.pt", tmp_path / "model.pt", tmp_path / "log.jsonl", progress=False)
    record = evaluate_run(spec, torch.load(tmp_path / "dense.pt", weights_only=True), tmp_path / "model.pt")
    test = record["splits"]["test"]
    assert set(test) == {"seg", "depth"}
    assert 0 <= test["seg"]["accuracy"] <= 100 and test["depth"]["abs_err"] > 0
