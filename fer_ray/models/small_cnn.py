"""Seed 003's shallow expression CNN (Zhu, Fan & Yuan), trained from scratch.

Why a network of its own: seed 003 analyses a net small enough that every conv3 map can be
projected back to pixels and matched to an Action Unit; a pretrained ResNet is not that net.

Numbers from the paper (section 2.1 "Model design" unless said otherwise):

- input 96×96 ("the size of the data layer input image is 96×96"; 2.2: resize to 99×99, then
  a random 96×96 crop);
- three convolution layers with 64, 128 and 256 maps ("The number of convolution cores is
  64, 128, 256 in turn");
- 5×5 kernels ("The size of each convolution core is 5×5");
- each conv followed by ReLU and a 2×2 max pooling ("Each convolution layer is followed by a
  ReLU activation layer and a max pooling layer with size 2×2");
- a fully connected layer of 1024 hidden neurons, then softmax ("Then connected to the full
  connection layer with 1024 hidden neurons, and finally connected to softmax layer");
- dropout 0.5 on the fully connected layer (2.2: "The parameter for the full connection layer
  is dropout with a probability value of 0.5");
- 7 classes (2.2: CK+ "anger, contempt, disgust, fear, joy, sadness, and surprise"); fer_ray
  passes its own class count;
- no pretrained weights (2.2: "This is a new network. So there are no pre-trained model
  parameters"; "this section trains the network from scratch");
- init "Gaussian distribution with mean value 0 and variance 1" (2.2): ``init="paper"``.

Numbers the paper leaves open, and the choice made here:

- no normalisation layer is named (no LRN, no BatchNorm), so there is none;
- conv stride 1 and padding 2 ("same": 96→96→48→48→24→24→12), so conv3 has 256 maps of 24×24
  and the flat vector has 256·12·12 = 36864 features; ``padding=0`` gives 256·8·8 = 16384;
- pooling stride 2 (non-overlapping 2×2), floor rounding;
- bias in every conv/linear layer, initialised to 0;
- ReLU after the 1024-unit layer (the paper names no activation there; ReLU as in the convs);
- default ``init="he"`` (Gaussian, mean 0, variance 2/fan_in): with N(0, 1) weights a
  unit-variance input gives pooled conv3 features of std ~1.5·10⁴ and logits of std ~10⁸
  (measured), against ~2.5 and ~4 with ``he``; the paper's value is kept as ``init="paper"``;
- 3 input channels (fer_ray feeds RGB; CK+ is mostly grey, ``in_chans=1`` also works);
- other input sides than the design ``image_size`` (96): pool3's maps go through an adaptive
  max pooling to the design grid (12×12) before the flatten, as torchvision's AlexNet/VGG do
  with their adaptive average pool, so the head keeps its 36864 inputs at any side >= 8
  (``MIN_INPUT``). At 96 px that pooling is the identity (the paper's net, bit for bit); a
  smaller side repeats positions (48 px: each 6×6 value fills a 2×2 block), a larger one
  pools them. This lets tests and quick CPU runs use small crops; seed 003's config is 96.

Dropout: the paper applies it to "the full connection layer", i.e. (Caffe convention) to the
1024 hidden activations, after their ReLU and before the output layer: ``fc1 → ReLU →
Dropout(0.5) → fc2``. In fer_ray's split the conv part is the backbone and the head is
fer_ray's own ``Linear(36864, 1024) → act → Linear(1024, n_classes)``, which has no dropout:
the paper's dropout belongs between that head's activation and its second Linear.

Which layers train: all of them (conv1-3, fc1, fc2); ``split_small_cnn(model, -1)`` gives an
empty frozen trunk; ``k >= 0`` trains the last ``k`` convs (conv3, then conv2, conv1) and the
head. Weights: ``none`` (random init) or a state-dict path; ``imagenet`` is refused.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from fer_ray.errors import ModelError
from fer_ray.models.backbones import BackboneSpec, BackboneSplit

#: The paper's numbers, for config validation and reports.
INPUT_SIZE = 96
WIDTHS: tuple[int, int, int] = (64, 128, 256)
KERNEL = 5
POOL = 2
HIDDEN = 1024
DROPOUT = 0.5
PAPER_CLASSES = 7
INITS = ("he", "paper")
#: The smallest input side the three 5×5 conv + 2×2 pool stages accept (padding 2: 8→4→2→1).
MIN_INPUT = 8


def _side_after(image_size: int, kernel: int, padding: int, n_layers: int) -> int:
    side = image_size
    for _ in range(n_layers):
        side = (side + 2 * padding - kernel + 1) // POOL
    return side


class SmallCNN(nn.Module):
    """conv(5×5)→ReLU→maxpool(2×2) ×3, then (``n_classes > 0``) fc1→ReLU→dropout→fc2.

    With ``n_classes=0`` (timm's convention) ``forward`` returns the flat ``num_features``
    vector that fer_ray's own head receives. Input must be ``in_chans`` channels of a square
    side >= ``MIN_INPUT`` (padding 2); ``image_size`` is the design side that fixes the flat
    grid (``feature_shape``), and other sides are pooled to it (see the module docstring).
    """

    def __init__(
        self,
        n_classes: int = 0,
        *,
        in_chans: int = 3,
        image_size: int = INPUT_SIZE,
        widths: Sequence[int] = WIDTHS,
        padding: int = 2,
        hidden: int = HIDDEN,
        dropout: float = DROPOUT,
        init: str = "he",
    ):
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise ModelError(f"small_cnn: widths must be three positive ints, got {widths}")
        if not 0 <= padding <= KERNEL // 2:
            raise ModelError(f"small_cnn: padding must be 0..{KERNEL // 2}, got {padding}")
        if init not in INITS:
            raise ModelError(f"small_cnn: init must be one of {INITS}, got {init!r}")
        side = _side_after(image_size, KERNEL, padding, 3)
        if side < 1:
            raise ModelError(
                f"small_cnn: image_size={image_size} is too small for three 5×5 conv + 2×2 pool"
            )
        self.in_chans, self.image_size, self.padding = in_chans, image_size, padding
        layers: list[tuple[str, nn.Module]] = []
        prev = in_chans
        for k, width in enumerate(widths, start=1):
            layers += [
                (f"conv{k}", nn.Conv2d(prev, width, KERNEL, stride=1, padding=padding)),
                (f"relu{k}", nn.ReLU()),  # not inplace: deconvolution hooks need the module
                (f"pool{k}", nn.MaxPool2d(POOL, POOL)),
            ]
            prev = width
        self.features = nn.Sequential(OrderedDict(layers))
        # identity at the design side; other sides are pooled to its grid (module docstring)
        self.pool = nn.Sequential(
            OrderedDict(grid=nn.AdaptiveMaxPool2d((side, side)), flatten=nn.Flatten(1))
        )
        self.feature_shape = (prev, side, side)
        self.num_features = prev * side * side
        self.classifier: nn.Module = nn.Identity()
        if n_classes > 0:
            self.classifier = nn.Sequential(
                OrderedDict(
                    fc1=nn.Linear(self.num_features, hidden),
                    relu=nn.ReLU(),
                    dropout=nn.Dropout(dropout),
                    fc2=nn.Linear(hidden, n_classes),
                )
            )
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "he") -> None:
        """Zero biases; weights N(0, 2/fan_in) (``he``) or the paper's N(0, 1) (``paper``)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if init == "paper":
                    nn.init.normal_(m.weight, 0.0, 1.0)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def units(self) -> list[tuple[str, nn.Module]]:
        """The conv part in order: conv1, relu1, pool1, …, pool3 (what the split cuts)."""
        return list(self.features.named_children())

    def min_input(self) -> int:
        """The smallest square input side this net accepts (1×1 maps after pool3)."""
        side = 1
        for _ in range(3):
            side = side * POOL + KERNEL - 1 - 2 * self.padding
        return max(side, 1)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or x.shape[2] != x.shape[3]:
            raise ModelError(
                f"small_cnn expects square input (N, {self.in_chans}, S, S) (the paper's S is "
                f"{self.image_size}), got {tuple(x.shape)}"
            )
        if x.shape[2] < self.min_input():
            raise ModelError(
                f"small_cnn: input side {x.shape[2]} is too small; it needs >= "
                f"{self.min_input()} (set faces.size, the paper's is {self.image_size})"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.pool(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def build_small_cnn(pretrained: bool, in_chans: int) -> SmallCNN:
    """``BackboneSpec.build``: the conv part only (fer_ray adds its head)."""
    if pretrained:
        raise ModelError(
            "model.backbone=small_cnn has no pretrained weights (seed 003 trains it from "
            "scratch); set model.weights=none or a state-dict path"
        )
    return SmallCNN(0, in_chans=in_chans)


def split_small_cnn(model: nn.Module, train_last_convs: int) -> BackboneSplit:
    """small_cnn's freeze policy: cut after the unit before the first trained conv.

    ``train_last_convs=-1`` (the paper, trained from scratch) trains conv1-3 and the head
    (fc1 → ReLU → dropout → fc2); ``k`` in 0..3 trains the last ``k`` convs (``1``: conv3,
    ``2``: conv2 and conv3) and the head, ``0`` the head alone. A conv trains together with
    the ReLU and pooling after it (they have no parameters). Input: 96 px (the paper's), any
    side >= 8 px runs (pooled to the 12×12 grid). Weights: ``none`` or a state-dict path.
    """
    if not isinstance(model, SmallCNN):
        raise ModelError(f"split_small_cnn needs a SmallCNN, got {type(model).__name__}")
    units = model.units()
    convs = [i for i, (name, _) in enumerate(units) if name.startswith("conv")]
    n = len(convs) if train_last_convs < 0 else train_last_convs
    if not 0 <= n <= len(convs):
        raise ModelError(
            f"model.train_last_convs={train_last_convs}: small_cnn has {len(convs)} convs"
        )
    cut = convs[len(convs) - n] if n else len(units)
    trunk = nn.Sequential(OrderedDict(units[:cut]))
    blocks = nn.Sequential(OrderedDict(units[cut:]))
    for p in trunk.parameters():
        p.requires_grad_(False)
    for p in blocks.parameters():
        p.requires_grad_(True)
    trained = [name for name, _ in units[cut:] if name.startswith("conv")]
    return BackboneSplit(trunk, blocks, model.pool, model.num_features, trained)


def load_small_cnn_weights(model: SmallCNN, weights: str) -> str:
    """Apply ``model.weights`` (``none`` or a state-dict path); returns a report line."""
    if weights == "none":
        return "none (random init, trained from scratch as in seed 003)"
    path = Path(weights)
    if not path.is_file():
        raise ModelError(
            f"model.weights={weights!r}: small_cnn takes 'none' or a state-dict file "
            "(it has no pretrained weights)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if any(k.startswith("features.") for k in missing):
        raise ModelError(f"{path}: state dict lacks small_cnn conv keys, e.g. {missing[:3]}")
    return f"state dict {path} ({len(unexpected)} unused keys)"


#: ``BACKBONES.register("small_cnn", "fer_ray.models.small_cnn:SPEC")`` adds it to fer_ray.
SPEC = BackboneSpec(
    build=build_small_cnn,
    split=split_small_cnn,
    input_size=INPUT_SIZE,
    weights=("none",),
    description="seed 003 shallow CNN: 3×(5×5 conv, ReLU, 2×2 max-pool) 64/128/256, from scratch",
    min_input_size=MIN_INPUT,
    map_unit="relu3",  # seed 003 analyses the third conv layer's maps
)
