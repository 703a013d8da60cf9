"""Backbone registry: ``model.backbone`` → how to build the network and its freeze policy.

A freeze policy cuts a backbone into a frozen ``trunk`` (run once per image when the feature
cache applies) and trained ``blocks``, then says which parameters inside those blocks train.
Adding a backbone is one ``BACKBONES.register`` line with a ``BackboneSpec`` (a builder and a
policy), in this module or in a module of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fer_ray.errors import ModelError
from fer_ray.registry import Registry


@dataclass(frozen=True)
class BackboneSplit:
    trunk: nn.Module
    blocks: nn.Module
    pool: nn.Module
    n_features: int
    trained_modules: list[str]


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone (``build(pretrained, in_chans)``) and cut it (``split``)."""

    build: Callable[[bool, int], nn.Module]
    split: Callable[[nn.Module, int], BackboneSplit]
    input_size: int  # the input side its published weights were trained at
    weights: tuple[str, ...]  # model.weights sources it can load (a state-dict path always)
    description: str = ""
    min_input_size: int = 16  # the smallest square side its layers accept (check_input_size)
    # the unit whose maps seed 003's deconvolution / AU analysis reads (a plain conv stack's
    # third conv layer, after its ReLU), or None where the net is no plain stack (ResNets)
    map_unit: str | None = None
    # where ``imagenet`` weights come from (a key of fer_ray.models.weights.HUBS)
    hub: str = "huggingface"


def _resnet_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    units = [(n, getattr(model, n)) for n in ("conv1", "bn1", "act1", "maxpool")]
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        for i, block in enumerate(getattr(model, layer)):
            units.append((f"{layer}.{i}", block))
    return units


def split_resnet(model: nn.Module, train_last_convs: int) -> BackboneSplit:
    """Cut a timm ResNet after the block holding the first trained conv.

    ``train_last_convs=2`` on resnet18 trains ``layer4.1.conv1`` and ``layer4.1.conv2`` (with
    their BatchNorms ``layer4.1.bn1``/``bn2``) plus the head: seed 000's "last two
    convolutional layers and the fully connected classifier". Convs of the tail that come
    before the last ``train_last_convs`` ones stay frozen (e.g. resnet50's ``layer4.2.conv1``
    when two convs are trained); ``-1`` trains every conv (the whole network).
    Input: 224 px published; any side >= 16 px runs (global average pool). Weights: ``none``,
    ``imagenet`` (timm's hub), the ``synthetic_*`` stand-ins, or a state-dict path.
    """
    units = _resnet_units(model)
    convs = [
        (ui, f"{un}.{cn}" if cn else un)
        for ui, (un, unit) in enumerate(units)
        for cn, m in unit.named_modules()
        if isinstance(m, nn.Conv2d) and "downsample" not in cn
    ]
    n = len(convs) if train_last_convs < 0 else train_last_convs
    if not 0 <= n <= len(convs):
        raise ModelError(
            f"model.train_last_convs={train_last_convs}: this backbone has {len(convs)} convs"
        )
    trained_convs = [name for _, name in convs[len(convs) - n :]] if n else []
    cut = convs[len(convs) - n][0] if n else len(units)
    trunk = nn.Sequential(*[m for _, m in units[:cut]])
    blocks = nn.Sequential(*[m for _, m in units[cut:]])
    for p in model.parameters():
        p.requires_grad_(n == len(convs))  # training every conv trains everything
    trained = set(trained_convs)
    for name, unit in units[cut:]:
        for mname, m in unit.named_modules():
            full = f"{name}.{mname}" if mname else name
            if isinstance(m, nn.Conv2d) and full in trained:
                m.weight.requires_grad_(True)
            if isinstance(m, nn.BatchNorm2d):
                # a BatchNorm trains with the conv it follows: bnN after convN
                base, _, leaf = full.rpartition(".")
                conv = (
                    f"{base}.{leaf.replace('bn', 'conv')}" if base else leaf.replace("bn", "conv")
                )
                if conv in trained:
                    for p in m.parameters():
                        p.requires_grad_(True)
    trained_modules = trained_convs + [
        f"{c.rpartition('.')[0]}.{c.rpartition('.')[2].replace('conv', 'bn')}".lstrip(".")
        for c in trained_convs
    ]
    return BackboneSplit(trunk, blocks, model.global_pool, model.num_features, trained_modules)


def _timm(name: str) -> Callable[[bool, int], nn.Module]:
    def build(pretrained: bool, in_chans: int) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans)

    return build


BACKBONES: Registry[BackboneSpec] = Registry("backbone", "model.backbone")
for _name, _desc in (
    ("resnet18", "seed 000/001"),
    ("resnet34", "seed 004"),
    ("resnet50", ""),
    ("resnet101", ""),
    ("resnet152", "seed 002"),
):
    BACKBONES.register(
        _name,
        BackboneSpec(
            _timm(_name),
            split_resnet,
            224,
            ("none", "imagenet", "synthetic"),
            f"timm {_name}" + (f" ({_desc})" if _desc else ""),
        ),
    )


def check_input_size(backbone: str, size: int) -> None:
    """A network input side the backbone cannot take fails here, naming the keys, instead of
    as a shape error inside a Ray trial (AlexNet's pools need >= 63 px, for instance)."""
    spec = BACKBONES.get(backbone)
    if size < spec.min_input_size:
        raise ModelError(
            f"model.backbone={backbone} needs faces.size >= {spec.min_input_size}, got {size}"
            f" (its published input is {spec.input_size})"
        )


def plain_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv part of a plain conv stack (``model.features``: conv, ReLU, pool, ...) in order."""
    return list(model.features.named_children())


def alexnet_neck(model: nn.Module) -> tuple[nn.Module, tuple[str, ...]]:
    """AlexNet after its convs: adaptive 6×6 average pool, flatten, dropout, fc6, ReLU,
    dropout, fc7, ReLU (fc8 is an Identity); the trained layers' names."""
    neck = nn.Sequential(
        OrderedDict(avgpool=model.avgpool, flatten=nn.Flatten(1), classifier=model.classifier)
    )
    return neck, ("classifier.1", "classifier.4")


def vgg_neck(model: nn.Module) -> tuple[nn.Module, tuple[str, ...]]:
    """timm VGG after its convs: ``pre_logits`` (fc6 as a 7×7 conv, ReLU, dropout, fc7 as a
    1×1 conv, ReLU), global average pool + flatten, dropout; the trained layers' names."""
    neck = nn.Sequential(
        OrderedDict(pre_logits=model.pre_logits, pool=model.head.global_pool, drop=model.head.drop)
    )
    return neck, ("pre_logits.fc1", "pre_logits.fc2")


def split_alexnet(model: nn.Module, train_last_convs: int) -> BackboneSplit:
    """AlexNet's freeze policy (``split_plain``): its five convs are ``features.0, .3, .6,
    .8, .10``; ``train_last_convs=2`` trains ``features.8``, ``features.10``, fc6
    (``classifier.1``), fc7 (``classifier.4``) and the head, ``0`` fc6, fc7 and the head,
    ``-1`` (seed 002) everything. Input: 224 px published, >= 63 px accepted (the adaptive
    6×6 pool absorbs other sides). Weights: ``none``, ``imagenet`` (torchvision's, via
    torch.hub), the ``synthetic_*`` stand-ins (pretrained here on fc7's 4096 outputs) or a
    state-dict path (a torchvision ``alexnet`` state dict loads as is)."""
    return split_plain(model, train_last_convs, alexnet_neck)


def split_vgg19(model: nn.Module, train_last_convs: int) -> BackboneSplit:
    """VGG-19's freeze policy (``split_plain``): its sixteen convs are ``features.0, .2, .5,
    .7, .10, … .34``; ``train_last_convs=2`` trains ``features.32``, ``features.34``, fc6
    (``pre_logits.fc1``), fc7 (``pre_logits.fc2``) and the head, ``0`` fc6, fc7 and the
    head, ``-1`` (seed 002) everything. Input: 224 px published, >= 32 px accepted (five 2×2
    pools; fc6 average-pools smaller maps up to 7×7). Weights: ``none``, ``imagenet`` (timm's
    ``vgg19.tv_in1k`` from the Hugging Face hub), the ``synthetic_*`` stand-ins or a
    state-dict path in timm's key names."""
    return split_plain(model, train_last_convs, vgg_neck)


def split_plain(
    model: nn.Module,
    train_last_convs: int,
    neck_of: Callable[[nn.Module], tuple[nn.Module, tuple[str, ...]]],
) -> BackboneSplit:
    """Freeze policy of a plain conv stack with a fully connected neck (AlexNet, VGG-19).

    The trunk is ``features`` up to the first trained conv; the tail is the rest of
    ``features`` (the last ``train_last_convs`` convs with their ReLUs and pools), then the
    neck ``neck_of(model)`` (the ImageNet classifier's fc6 and fc7 with their ReLUs and
    dropouts; fc8 is replaced by fer_ray's head), then the head. For ``k = train_last_convs``:

    - ``k >= 0``: the last ``k`` convs, fc6, fc7 and the head train; ``0`` trains fc6, fc7 and
      the head on cached conv features (the paper's "replace the last fc layer" keeps fc6/fc7
      as the classifier being fine-tuned);
    - ``-1`` (seed 002, "all of the weights ... fine tuned"): every layer trains.

    ``trained_modules`` names them as in the backbone (``features.8``, ``classifier.1``, ...).
    Neither net has BatchNorm, so nothing else changes between train and eval but dropout.
    """
    units = plain_units(model)
    convs = [i for i, (_, m) in enumerate(units) if isinstance(m, nn.Conv2d)]
    n = len(convs) if train_last_convs < 0 else train_last_convs
    if not 0 <= n <= len(convs):
        raise ModelError(
            f"model.train_last_convs={train_last_convs}: this backbone has {len(convs)} convs"
        )
    cut = convs[len(convs) - n] if n else len(units)
    trunk = nn.Sequential(OrderedDict(units[:cut]))
    blocks = nn.Sequential(OrderedDict(units[cut:]))
    neck, neck_layers = neck_of(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for part in (blocks, neck):
        for p in part.parameters():
            p.requires_grad_(True)
    trained = [f"features.{units[i][0]}" for i in convs[len(convs) - n :]] if n else []
    return BackboneSplit(trunk, blocks, neck, model.num_features, trained + list(neck_layers))


def build_alexnet(pretrained: bool, in_chans: int) -> nn.Module:
    """torchvision's AlexNet (timm has none) with fc8 removed: ``forward`` gives fc7's 4096
    ReLU outputs, the features fer_ray's head reads (seed 002 replaced only the last layer).

    ``imagenet`` loads torchvision's ``IMAGENET1K_V1`` weights through torch.hub (cached under
    ``~/.cache/torch/hub/checkpoints``); ``in_chans != 3`` replaces conv1 (random init)."""
    import torchvision

    try:
        model = torchvision.models.alexnet(weights="IMAGENET1K_V1" if pretrained else None)
    except OSError as e:  # no network and no cached file
        raise ModelError(
            "model.weights=imagenet: torchvision could not fetch AlexNet's weights"
            f" ({type(e).__name__}); run once where download.pytorch.org is reachable (they"
            " are cached under ~/.cache/torch/hub/checkpoints), or set model.weights=<path of"
            " a torchvision alexnet state dict>"
        ) from e
    if in_chans != 3:
        model.features[0] = nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2)
    model.classifier[6] = nn.Identity()
    model.num_features = 4096
    return model


def build_vgg19(pretrained: bool, in_chans: int) -> nn.Module:
    """timm's VGG-19 (torchvision's weights, converted: ``vgg19.tv_in1k``), no classifier:
    ``forward`` gives fc7's 4096 ReLU outputs (timm's ``pre_logits``: fc6 as a 7×7 conv, fc7
    as a 1×1 conv; smaller inputs are average-pooled up to 7×7 first). Dropout 0.5 after fc6
    and after fc7, as in torchvision's classifier."""
    import timm

    model = timm.create_model(
        "vgg19", pretrained=pretrained, num_classes=0, in_chans=in_chans, drop_rate=0.5
    )
    model.num_features = model.head_hidden_size  # timm says 512 (conv); the head reads 4096
    return model


# Seed 002's comparison: AlexNet and VGG-19 beside ResNet-152; seed 003's own network.
BACKBONES.register(
    "alexnet",
    BackboneSpec(
        build_alexnet,
        split_alexnet,
        224,
        ("none", "imagenet", "synthetic"),
        "torchvision AlexNet, fc6/fc7 kept, fc8 replaced by the head (seed 002)",
        min_input_size=63,  # 63 → 15 → 7 → 7 → 3 → 3 → 1 after the three max pools
        map_unit="7",  # conv3's ReLU (features.6 → features.7)
        hub="torchvision",
    ),
)
BACKBONES.register(
    "vgg19",
    BackboneSpec(
        build_vgg19,
        split_vgg19,
        224,
        ("none", "imagenet", "synthetic"),
        "timm VGG-19 (torchvision weights), fc6/fc7 kept, fc8 replaced by the head (seed 002)",
        min_input_size=32,  # five 2×2 max pools
        map_unit="6",  # conv3's ReLU (features.5 → features.6)
    ),
)
BACKBONES.register("small_cnn", "fer_ray.models.small_cnn:SPEC", help="seed 003's network")
