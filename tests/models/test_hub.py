"""``model.weights=imagenet`` where the model hub does not answer: the hub gets
``HUB_TIMEOUT_S`` seconds (name lookup and a connection), then only the local cache is read,
so weights missing from it fail with one line at once instead of after the hub client's
retries. Only loopback addresses are probed here: a port nothing listens on, and one a test
socket listens on."""

from __future__ import annotations

import socket

import pytest

from fer_ray.config import ModelConfig
from fer_ray.errors import ModelError
from fer_ray.models import factory
from fer_ray.models import weights as weight_sources


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fresh_answers(monkeypatch):
    monkeypatch.setattr(weight_sources, "_answers", {})
    for var in ("HF_HUB_OFFLINE", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_a_hub_that_listens_answers_and_one_that_does_not_is_named(fresh_answers):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert weight_sources.hub_problem(f"http://127.0.0.1:{port}", timeout=3) is None
    closed = _closed_port()
    why = weight_sources.hub_problem(f"http://127.0.0.1:{closed}", timeout=3)
    assert why is not None and why.startswith(f"127.0.0.1:{closed}: ")
    # asked once per process and address: the same answer without a second connection
    assert weight_sources.hub_problem(f"http://127.0.0.1:{closed}") == why


def test_an_unreachable_hub_puts_the_client_offline_for_the_load_only(fresh_answers, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    before = constants.HF_HUB_OFFLINE
    with weight_sources.hub_or_cache("huggingface") as why:
        assert why is not None and constants.HF_HUB_OFFLINE is True
    assert constants.HF_HUB_OFFLINE is before


def test_imagenet_weights_fail_at_once_in_one_line_when_the_hub_does_not_answer(
    fresh_answers, monkeypatch, tmp_path
):
    """timm is asked with the hub client offline (the cache only), and the error says why."""
    import timm
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty local cache
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    real, asked = timm.create_model, []

    def create(name, pretrained=False, **kw):
        if pretrained:
            asked.append(constants.HF_HUB_OFFLINE)
        return real(name, pretrained=pretrained, **kw)

    monkeypatch.setattr(timm, "create_model", create)
    with pytest.raises(ModelError) as e:
        factory.create_backbone(ModelConfig(weights="imagenet"))
    assert asked == [True]
    message = str(e.value)
    assert "\n" not in message and "model.weights=imagenet" in message
    assert f"did not answer within {weight_sources.HUB_TIMEOUT_S:g} s" in message
    assert "not in the local cache" in message and "model.weights=<path>" in message
