import pytest
import torch

from fer_ray.config import ModelConfig
from fer_ray.errors import ConfigError, ModelError
from fer_ray.models.factory import create_backbone, create_model

CFG = ModelConfig(weights="none")


def test_seed_000_freeze_policy_trains_last_two_convs_and_head():
    m = create_model(CFG, n_classes=7, hidden=100, head_seed=0)
    assert m.trained_modules == ["layer4.1.conv1", "layer4.1.conv2", "layer4.1.bn1", "layer4.1.bn2"]
    trained = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trained == {
        "tail.blocks.0.conv1.weight",
        "tail.blocks.0.bn1.weight",
        "tail.blocks.0.bn1.bias",
        "tail.blocks.0.conv2.weight",
        "tail.blocks.0.bn2.weight",
        "tail.blocks.0.bn2.bias",
        "tail.head.fc1.weight",
        "tail.head.fc1.bias",
        "tail.head.fc2.weight",
        "tail.head.fc2.bias",
    }
    assert m.tail.head.fc1.weight.shape == (100, 512) and m.tail.head.fc2.weight.shape == (7, 100)


def test_trunk_is_shared_and_head_follows_seed():
    a = create_model(CFG, 7, 100, head_seed=1)
    b = create_model(CFG, 7, 100, head_seed=2)
    c = create_model(CFG, 7, 100, head_seed=1)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.trunk.state_dict().values(), b.trunk.state_dict().values())
    )
    assert not torch.equal(a.tail.head.fc1.weight, b.tail.head.fc1.weight)
    assert torch.equal(a.tail.head.fc1.weight, c.tail.head.fc1.weight)


def test_trunk_stays_in_eval_mode():
    m = create_model(CFG, 7, 50, head_seed=0).train()
    assert not m.trunk.training and m.tail.training


def test_train_all_and_other_resnets():
    m = create_model(ModelConfig(weights="none", train_last_convs=-1), 7, 10, head_seed=0)
    assert all(p.requires_grad for p in m.parameters())
    m50 = create_model(ModelConfig(weights="none", backbone="resnet50"), 7, 10, head_seed=0)
    assert m50.trained_modules[:2] == ["layer4.2.conv2", "layer4.2.conv3"]
    assert not m50.tail.blocks[0].conv1.weight.requires_grad


def test_weights_from_state_dict_file(tmp_path):
    src = create_backbone(ModelConfig(weights="none", init_seed=5))
    torch.save(src.state_dict(), tmp_path / "w.pt")
    loaded = create_backbone(ModelConfig(weights=str(tmp_path / "w.pt"), init_seed=0))
    assert torch.equal(loaded.conv1.weight, src.conv1.weight)


def test_bad_weights_and_backbone_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match=r"not one of none, imagenet, synthetic.*no such"):
        create_backbone(ModelConfig(weights=str(tmp_path / "missing.pt")))
    with pytest.raises(ConfigError, match=r"model\.backbone='resnet_18'.*did you mean 'resnet18'"):
        create_backbone(ModelConfig(weights="none", backbone="resnet_18"))
    junk = tmp_path / "junk.pt"
    junk.write_text("not a state dict")
    with pytest.raises(ModelError, match="cannot read a state dict"):
        create_backbone(ModelConfig(weights=str(junk)))


def test_unreachable_imagenet_weights_give_an_actionable_error(monkeypatch):
    import timm

    from fer_ray.models import factory

    real = timm.create_model

    def offline(name, pretrained=False, **kw):
        if pretrained:
            raise FileNotFoundError("hub unreachable and not in the local cache")
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ModelError, match=r"model.weights=imagenet.*model.weights=<path>"):
        factory.create_backbone(ModelConfig(weights="imagenet"))
    # other weights never touch the hub
    assert factory.create_backbone(ModelConfig(weights="none")) is not None


def test_frozen_batchnorms_inside_the_tail_stay_in_eval_mode():
    from torch import nn

    m = create_model(ModelConfig(weights="none", train_last_convs=3), 7, 10, head_seed=0)
    m.train()
    bns = {n: b for n, b in m.tail.blocks.named_modules() if isinstance(b, nn.BatchNorm2d)}
    frozen = {n for n, b in bns.items() if not any(p.requires_grad for p in b.parameters())}
    assert frozen == {"0.bn1", "0.downsample.1"}  # layer4.0's first BN and its shortcut's BN
    assert all(not bns[n].training for n in frozen)
    assert all(bns[n].training for n in set(bns) - frozen)  # the trained ones do train
    before = bns["0.bn1"].running_mean.clone()
    m.tail(torch.randn(4, 256, 4, 4))  # a training step's forward on trunk features
    assert torch.equal(bns["0.bn1"].running_mean, before)  # statistics did not drift
