"""Weight sources: ``model.weights`` is a registered name or a path to a state dict.

Knowing the source before any stage runs lets the driver fail at once on a missing file or an
unreachable hub, instead of inside a Ray task after preprocessing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fer_ray.errors import ModelError
from fer_ray.registry import Registry


@dataclass(frozen=True)
class WeightSource:
    description: str
    timm_pretrained: bool = False  # timm loads them (from its hub or local cache)
    stand_in: bool = False  # trained here before any trial (fer_ray.models.pretrain)
    objective: str | None = None  # stand-ins: a fer_ray.models.pretrain_tasks.OBJECTIVES name
    targets: str = ""  # one line for the report: what the weights were trained to predict
    reveals: str = ""  # one line for the report: what those targets reveal about the class
    label_free: bool = True  # the targets carry no information about the expression class


_AU = dict(
    targets="the 13 Action Unit intensities of each image of a disjoint synthetic set",
    reveals="the expression class: the generator composes each class from its AUs, so the"
    " targets determine it (supervised pretraining on the task, with other people)",
    label_free=False,
)
WEIGHTS: Registry[WeightSource] = Registry("weight source", "model.weights")
WEIGHTS.register(
    "none",
    WeightSource(
        "none (random init from model.init_seed)",
        targets="none (random initialisation)",
        reveals="nothing (no training)",
    ),
)
WEIGHTS.register(
    "imagenet",
    WeightSource(
        "imagenet (timm pretrained)",
        timm_pretrained=True,
        targets="the 1000 ImageNet object classes",
        reveals="nothing about the expression class (object categories)",
    ),
)
WEIGHTS.register(
    "synthetic_au",
    WeightSource(
        "synthetic_au stand-in: pretrained here on the Action Units of a disjoint synthetic set"
        " (supervised: the AUs determine the class)",
        stand_in=True,
        objective="au",
        **_AU,
    ),
)
WEIGHTS.register(
    "synthetic_free_au",
    WeightSource(
        "synthetic_free_au stand-in: pretrained here on the Action Units of a disjoint synthetic"
        " set whose AUs are drawn independently of any class (label-free, the analogue of an"
        " AU-coded data set)",
        stand_in=True,
        objective="free_au",
        targets="the 13 Action Unit intensities of a disjoint synthetic set whose faces' AUs are"
        " each drawn by a fair coin, with no expression class",
        reveals="nothing about the expression class: no face was drawn from a class, and about"
        " 1 in 1,200 shows one of the seven classes' AU sets by chance; the trunk learns what"
        " each AU looks like, not which AUs make an expression",
    ),
)
WEIGHTS.register(
    "synthetic_identity",
    WeightSource(
        "synthetic_identity stand-in: pretrained here to tell apart the subjects of a disjoint"
        " synthetic set (label-free, the VGG-Face analogue)",
        stand_in=True,
        objective="identity",
        targets="which of a disjoint synthetic set's subjects each image shows",
        reveals="nothing about the expression class: every subject shows every class equally often",
    ),
)
WEIGHTS.register(
    "synthetic_rotation",
    WeightSource(
        "synthetic_rotation stand-in: pretrained here, self-supervised, to predict a random"
        " quarter turn of the images of a disjoint synthetic set (label-free)",
        stand_in=True,
        objective="rotation",
        targets="how many quarter turns each image of a disjoint synthetic set was rotated by",
        reveals="nothing about the expression class: the turn is drawn at random,"
        " independently of the image",
    ),
)
WEIGHTS.register(
    "synthetic_identity_rotation",
    WeightSource(
        "synthetic_identity_rotation stand-in: pretrained here on the subject and a random"
        " quarter turn of the images of a disjoint synthetic set (label-free)",
        stand_in=True,
        objective="identity_rotation",
        targets="the subject each image of a disjoint synthetic set shows and the random"
        " quarter turn applied to it",
        reveals="nothing about the expression class: every subject shows every class equally"
        " often and the turn is independent of the image",
    ),
)
WEIGHTS.register(
    "synthetic_face_shape",
    WeightSource(
        "synthetic_face_shape stand-in: pretrained here to regress the resting face geometry"
        " of the subjects of a disjoint synthetic set (label-free)",
        stand_in=True,
        objective="face_shape",
        targets="each subject's resting face geometry (face aspect, eye, brow, nose and mouth"
        " positions and sizes, lip thickness; the same for all their images) in a disjoint"
        " synthetic set",
        reveals="nothing about the expression class: the values are fixed per subject and every"
        " subject shows every class equally often",
    ),
)
WEIGHTS.register(
    "synthetic_contrastive",
    WeightSource(
        "synthetic_contrastive stand-in: pretrained here, self-supervised (SimCLR), to match two"
        " augmented views of each image of a disjoint synthetic set (label-free)",
        stand_in=True,
        objective="contrastive",
        targets="which image of a disjoint synthetic set an augmented view comes from (each image"
        " its own class: SimCLR's contrastive loss over two views)",
        reveals="nothing about the expression class: the target is the image itself, never its"
        " label",
    ),
)
# the AU stand-in's former name, kept so older configs and stored runs still resolve
WEIGHTS.register(
    "synthetic",
    WeightSource(
        "synthetic (= synthetic_au) stand-in: pretrained here on the Action Units of a disjoint"
        " synthetic set (supervised: the AUs determine the class)",
        stand_in=True,
        objective="au",
        **_AU,
    ),
)


def source(weights: str) -> WeightSource | None:
    """The registered source, or None when ``weights`` is a state-dict path."""
    return WEIGHTS.get(weights) if weights in WEIGHTS else None


def check(weights: str) -> None:
    """A name must be registered; anything else must be a readable file."""
    if weights in WEIGHTS:
        return
    path = Path(weights).expanduser()
    if not path.is_file():
        names = ", ".join(WEIGHTS.names())
        raise ModelError(
            f"model.weights={weights!r}: not one of {names}, and no such state-dict file"
        )


#: Seconds the model hub gets to answer (name lookup and a TCP connection) before
#: ``model.weights=imagenet`` is loaded from the local cache only: without it, an offline
#: machine spends about a minute in the hub client's retries before the same one-line error.
HUB_TIMEOUT_S = 5.0
#: Where ``imagenet`` weights come from, per ``BackboneSpec.hub``.
HUBS = {"huggingface": "https://huggingface.co", "torchvision": "https://download.pytorch.org"}
_answers: dict[str, str | None] = {}


def hub_url(hub: str) -> str:
    """The hub's address (``HF_ENDPOINT`` overrides the Hugging Face one, as for its client)."""
    if hub == "huggingface":
        return os.environ.get("HF_ENDPOINT") or HUBS[hub]
    return HUBS[hub]


def hub_problem(url: str, timeout: float = HUB_TIMEOUT_S) -> str | None:
    """None when ``url``'s host (or the HTTPS proxy the environment names) accepts a TCP
    connection within ``timeout`` seconds, name lookup included; else why not, in a few words.
    Asked once per process and address."""
    if url in _answers:
        return _answers[url]
    proxy = urllib.request.getproxies().get(urlsplit(url).scheme)
    target = urlsplit(proxy if proxy and "://" in proxy else url)
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    answer: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(None)
        except OSError as e:  # no name, refused, unreachable, timed out
            answer.append(f"{host}:{port}: {e.strerror or type(e).__name__}")

    t = threading.Thread(target=attempt, daemon=True)  # the name lookup has no timeout of its own
    t.start()
    t.join(timeout)
    why = answer[0] if answer else f"{host}:{port}: no answer within {timeout:g} s"
    _answers[url] = why
    return why


@contextlib.contextmanager
def hub_or_cache(hub: str) -> Iterator[str | None]:
    """Around loading ``imagenet`` weights: when the hub does not answer within
    ``HUB_TIMEOUT_S``, the Hugging Face client is put offline for the block, so weights in its
    local cache still load and missing ones fail at once (instead of after its retries).
    Yields why the hub did not answer, or None."""
    why = None
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if not offline:
        why = hub_problem(hub_url(hub))
    if why is None or hub != "huggingface":
        yield why
        return
    try:
        from huggingface_hub import constants
    except ImportError:  # timm brings it; without it there is nothing to put offline
        yield why
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield why
    finally:
        constants.HF_HUB_OFFLINE = before
