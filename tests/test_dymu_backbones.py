"""DYMU's paper backbones (models/resnet_aspp.py resnet34_aspp, models/mobilenetv2.py) and their tree blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlpareto.errors import ConfigError
from mtlpareto.models import build_model
from mtlpareto.models.dymu import TREE_BLOCKS, AnchorNet, Tree
from mtlpareto.models.hard_sharing import HardSharing
from mtlpareto.models.mobilenetv2 import depthwise_conv

# torchvision's documented parameter counts (docs "num_params") minus what the dense encoders drop:
# MobileNetV2 3,504,872 - features[18] (1x1 conv 320->1280: 409,600; BatchNorm: 2 x 1280) - classifier
# (Linear 1280->1000: 1,281,000); ResNet-34 21,797,672 - fc (512 x 1000 + 1000).
MOBILENETV2_ENCODER_PARAMETERS = 3_504_872 - (320 * 1280 + 2 * 1280) - (1280 * 1000 + 1000)
RESNET34_ENCODER_PARAMETERS = 21_797_672 - (512 * 1000 + 1000)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_encoder_parameter_counts_against_torchvisions_published_counts():
    assert MOBILENETV2_ENCODER_PARAMETERS == 1_811_712
    assert count(build_model("mobilenetv2", [2], (3, 32, 32)).encoder) == MOBILENETV2_ENCODER_PARAMETERS
    assert count(build_model("resnet34_aspp", [2], (3, 32, 32)).encoder) == RESNET34_ENCODER_PARAMETERS


@pytest.mark.parametrize("output_stride, dilations", [(16, [1] * 14 + [1, 2, 2, 2]), (8, [1] * 7 + [1] + [2] * 6 + [2, 4, 4, 4])])
def test_mobilenetv2_dilation_follows_deeplabs_rule(output_stride, dilations):
    """Hand-listed: the 17 inverted-residual blocks' depthwise dilations; the feature map is at 1/output_stride."""
    net = build_model("mobilenetv2", [3, 1], (3, 32, 64), output_stride=output_stride).eval()
    blocks = [layer for stage in net.encoder.stages for layer in stage][1:]
    assert [depthwise_conv(b).dilation[0] for b in blocks] == dilations[1:]
    x = torch.randn(2, 3, 32, 64)
    assert net.encoder(x).shape == (2, 320, 32 // output_stride, 64 // output_stride)
    assert [tuple(o.shape) for o in net(x)] == [(2, 3, 32, 64), (2, 1, 32, 64)]


def test_resnet34_dilated_stages_keep_the_resolution():
    net = build_model("resnet34_aspp", [2], (3, 32, 32), output_stride=8).eval()
    assert [net.encoder.layer3[0].conv1.dilation[0], net.encoder.layer3[1].conv2.dilation[0], net.encoder.layer4[0].conv1.dilation[0], net.encoder.layer4[2].conv2.dilation[0]] == [1, 2, 2, 4]
    assert net.encoder(torch.randn(2, 3, 32, 32)).shape == (2, 512, 4, 4)


@pytest.mark.parametrize(
    "name, shape, options, message",
    [
        ("mobilenetv2", (3, 32, 32), {"output_stride": 32}, "mobilenetv2: output_stride must be one of 8, 16"),
        ("mobilenetv2", (3, 32, 32), {"atrous_rates": [6, 0]}, "mobilenetv2: atrous_rates"),
        ("mobilenetv2", (3, 30, 30), {}, "mobilenetv2: input width must be a positive multiple of output_stride 16"),
        ("resnet34_aspp", (3, 32, 32), {"output_stride": 32}, "resnet34_aspp: output_stride must be one of 8, 16"),
    ],
)
def test_bad_options_name_the_model_and_option(name, shape, options, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, [2], shape, **options)


def randomise_statistics(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)


@pytest.mark.parametrize("name, options, block_stages, layers", [("mobilenetv2", {"output_stride": 16}, [2, 2, 2, 2], 4), ("resnet34_aspp", {"output_stride": 16}, [2, 1, 2], 3)])
def test_trees_reproduce_the_single_task_and_shared_networks(name, options, block_stages, layers):
    """Disjoint tree = each task's own network; all nodes on stream 1 = hard sharing over stream 1's encoder."""
    torch.manual_seed(0)
    nets = [build_model(name, [3, 1], (3, 32, 32), **options).eval() for _ in range(2)]
    for net in nets:
        randomise_statistics(net)
    streams = [TREE_BLOCKS.get(name)(net.encoder, block_stages) for net in nets]
    anchor = AnchorNet(streams, [net.heads[i] for i, net in enumerate(nets)], torch.zeros(1, 3, 32, 32))
    assert anchor.n_layers == layers
    # the tree blocks hold exactly the encoder's parameters
    assert sum(anchor.node_parameters[0]) == count(nets[0].encoder)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        disjoint = anchor.forward_tree(x, Tree.disjoint(2, layers))
        for i, net in enumerate(nets):
            assert torch.allclose(disjoint[i], net(x)[i], atol=1e-5)
        shared = anchor.forward_tree(x, Tree.shared(2, layers, 1))
        reference = HardSharing(nets[1].encoder, [net.heads[i] for i, net in enumerate(nets)]).eval()(x)
        for out, ref in zip(shared, reference):
            assert torch.allclose(out, ref, atol=1e-5)
        mixed = Tree(parents=tuple((1, 1) if l == 0 else (0, 1) for l in range(layers - 1)), heads=(0, 1))
        assert anchor.cost(mixed)["parameters"] < anchor.cost(Tree.disjoint(2, layers))["parameters"]
    with pytest.raises(ConfigError, match="block_stages"):
        TREE_BLOCKS.get(name)(nets[0].encoder, [1])


def test_resnet50_blocks_compose_to_its_encoder():
    torch.manual_seed(0)
    net = build_model("resnet50_aspp", [2], (3, 32, 32), output_stride=16).eval()
    blocks = TREE_BLOCKS.get("resnet50_aspp")(net.encoder)
    assert len(blocks) == 5
    x = torch.randn(1, 3, 32, 32)
    state = (x, ())
    with torch.no_grad():
        for block in blocks:
            state = block(*state)
        assert torch.equal(state[0], net.encoder(x))


def test_mobilenetv2_serves_dense_tasks_and_a_dymu_anchor_through_the_registries():
    """`model: {name: mobilenetv2}` for a dense dataset's tasks: the normal build path, then the DYMU anchor of it."""
    from mtlpareto.data import dataset_tasks
    from mtlpareto.training.dymu import build_anchor
    from mtlpareto.training.learners import build_from_architecture

    tasks = dataset_tasks({"kind": "scenes", "variant": "indoor", "n_train": 4, "n_test": 2, "val_size": 0, "image_size": [32, 64]})
    arch = {"name": "mobilenetv2", "options": {"output_stride": 16}, "task_outputs": [t.out_channels for t in tasks], "input_shape": [3, 32, 64]}
    torch.manual_seed(0)
    net = build_from_architecture(arch).eval()
    x = torch.randn(2, 3, 32, 64)
    outputs = net(x)
    assert [tuple(o.shape) for o in outputs] == [(2, t.out_channels, 32, 64) for t in tasks]
    anchor = build_anchor(arch, [1, 3, 4], len(tasks))
    assert anchor.n_layers == 3 and anchor.n_tasks == len(tasks)
    tree = Tree(parents=((0, 0, 2), (0, 1, 2)), heads=(0, 1, 2))
    with torch.no_grad():
        assert [tuple(o.shape) for o in anchor.forward_tree(x, tree)] == [tuple(o.shape) for o in outputs]


@pytest.mark.parametrize("name, tv_name", [("resnet34_aspp", "resnet34"), ("mobilenetv2", "mobilenet_v2")])
def test_pretrained_weights_come_from_the_local_hub_cache_only(name, tv_name, monkeypatch, tmp_path):
    import torchvision.models

    from mtlpareto.models import resnet_aspp

    torch.manual_seed(5)
    source = getattr(torchvision.models, tv_name)(weights=None)
    path = tmp_path / f"{tv_name}-local.pth"  # no hash in the name: nothing to check
    torch.save(source.state_dict(), path)
    monkeypatch.setattr(resnet_aspp, "hub_weights_path", lambda weights: (path, weights.url))
    model = build_model(name, [2], (3, 32, 32), pretrained=True)
    first = model.encoder.stem[0].weight if name == "resnet34_aspp" else model.encoder.stages[0][0][0].weight
    reference = source.conv1.weight if name == "resnet34_aspp" else source.features[0][0].weight
    torch.testing.assert_close(first, reference, rtol=0, atol=0)
    missing = tmp_path / "absent.pth"
    monkeypatch.setattr(resnet_aspp, "hub_weights_path", lambda weights: (missing, weights.url))
    with pytest.raises(ConfigError, match=f"model {name}: pretrained: true needs .*absent.pth"):
        build_model(name, [2], (3, 32, 32), pretrained=True)
