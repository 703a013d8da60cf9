import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from fer_ray.config import TrainConfig
from fer_ray.train import checkpoint as ckpt
from fer_ray.train import loop
from fer_ray.train.loop import CheckpointPolicy, Phase, Split, fit, torch_settings, train_epoch


def _problem(seed=0, n=120):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return Split(x[: n * 2 // 3], y[: n * 2 // 3]), Split(x[n * 2 // 3 :], y[n * 2 // 3 :])


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


CFG = TrainConfig(batch_size=16)
PHASES = [Phase(0.05, 4), Phase(0.01, 3)]


def test_fit_learns_and_selects_best_on_val():
    train, val = _problem()
    st = fit(_model(), train, val, PHASES, CFG, seed=1)
    vals = [h["val_acc"] for h in st["history"]]
    assert len(st["history"]) == 7
    assert st["best"]["score"] == max(vals)
    assert max(vals) > 0.6  # 3 classes, chance ~0.33-0.5


def test_resume_from_any_epoch_gives_identical_weights():
    train, val = _problem()
    ref = _model()
    fit(ref, train, val, PHASES, CFG, seed=1)
    snaps = []
    fit(_model(), train, val, PHASES, CFG, seed=1, on_epoch=lambda row, snap: snaps.append(snap()))
    for k in (1, 4, 5):  # mid phase 1, phase boundary, mid phase 2
        m = _model()
        st = fit(m, train, val, PHASES, CFG, seed=1, state=snaps[k - 1])
        assert len(st["history"]) == 7
        for a, b in zip(ref.state_dict().values(), m.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), f"resume after epoch {k} diverged"


def test_test_selection_requires_test_split():
    train, val = _problem()
    with pytest.raises(ValueError, match="needs a test split"):
        fit(_model(), train, val, PHASES, CFG, seed=1, select_on="test")
    st = fit(_model(), train, val, PHASES, CFG, seed=1, select_on="test", test=val)
    assert "test_acc" in st["history"][0]


# ---------------------------------------------------------------- checkpoints (format 2)


class Net(nn.Module):
    """A frozen stem, a BatchNorm'd body and a head: what a checkpoint must and need not hold."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Linear(8, 16)
        self.body = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, 3)
        self.stem.requires_grad_(False)

    def forward(self, x):
        return self.head(self.body(torch.relu(self.stem(x))))


def _roundtrip(state):
    """Through torch.save / torch.load(weights_only=True), as report_epoch and restore_state."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=True)


def _equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("keep_best", [True, False])
def test_resume_from_a_stored_checkpoint_is_bit_identical(keep_best):
    train, val = _problem()
    ref = Net()
    st_ref = fit(ref, train, val, PHASES, CFG, seed=3, keep_best=keep_best)
    snaps = []
    fit(Net(), train, val, PHASES, CFG, seed=3, keep_best=keep_best,
        on_epoch=lambda row, snap: snaps.append(_roundtrip(snap())))  # fmt: skip
    for k in range(1, 8):  # every epoch, both phases, the boundary and the very end
        m = Net()
        st = fit(m, train, val, PHASES, CFG, seed=3, state=snaps[k - 1], keep_best=keep_best)
        assert _equal(ref, m), f"resume after epoch {k} diverged"
        assert st["history"] == st_ref["history"]
        assert {x: st["best"][x] for x in ("score", "step")} == {
            x: st_ref["best"][x] for x in ("score", "step")
        }


def test_checkpoint_holds_only_what_trains_and_loads_weights_only():
    train, val = _problem()
    snaps = []
    fit(Net(), train, val, PHASES, CFG, seed=3, on_epoch=lambda r, s: snaps.append(s()))
    snap = _roundtrip(snaps[0])
    assert snap["format"] == ckpt.STATE_FORMAT
    assert not any(k.startswith("stem.") for k in snap["module"])  # frozen: rebuilt, not stored
    assert "body.1.running_mean" in snap["module"] and "head.weight" in snap["module"]
    # epoch 1 is the best so far: its weights are the module's, stored once
    assert snap["best"]["same_as_module"] and snap["best"]["state"] is None
    later = [s for s in snaps if not s["best"]["same_as_module"]]
    assert later, "expected an epoch after which the best is an earlier one"
    assert set(later[0]["best"]["state"]) == set(snap["module"])


def test_a_partial_state_is_completed_for_strict_loading():
    train, val = _problem()
    snaps = []
    fit(Net(), train, val, PHASES, CFG, seed=3, on_epoch=lambda r, s: snaps.append(s()))
    state = _roundtrip(snaps[-1])
    m = Net()
    fit(m, train, val, PHASES, CFG, seed=3, state=state)
    Net().load_state_dict(state["module"])  # strict: the frozen stem was filled in


def test_format_1_checkpoints_still_resume():
    """The old format: the full module state and a full copy of the best state."""
    train, val = _problem()
    ref = _model()
    fit(ref, train, val, PHASES, CFG, seed=1)
    snaps = []
    fit(_model(), train, val, PHASES, CFG, seed=1, on_epoch=lambda r, s: snaps.append(s()))
    old = dict(snaps[3])
    old.pop("format")
    full = {k: v.clone() for k, v in old["module"].items()}
    best = dict(old["best"])
    best.pop("same_as_module")
    if best["state"] is None:
        best["state"] = {k: v.clone() for k, v in full.items()}
    old["module"], old["best"] = full, best
    m = _model()
    fit(m, train, val, PHASES, CFG, seed=1, state=_roundtrip(old))
    assert _equal(ref, m)


def test_a_checkpoint_that_does_not_fit_the_model_fails():
    train, val = _problem()
    snaps = []
    fit(Net(), train, val, PHASES, CFG, seed=3, on_epoch=lambda r, s: snaps.append(s()))
    state = snaps[0]
    del state["module"]["head.weight"]  # trained, so it must be there
    with pytest.raises(RuntimeError, match="does not fit"):
        fit(Net(), train, val, PHASES, CFG, seed=3, state=state)


def test_the_checkpoint_policy_marks_epochs_due():
    train, val = _problem()

    def due_steps(policy):
        out = []
        fit(_model(), train, val, PHASES, CFG, seed=1, checkpoint=policy,
            on_epoch=lambda r, s: out.append(r["step"]) if s.due else None)  # fmt: skip
        return out

    assert due_steps(CheckpointPolicy(every=1)) == [1, 2, 3, 4, 5, 6, 7]
    assert due_steps(CheckpointPolicy(every=3)) == [3, 6]
    assert due_steps(CheckpointPolicy(every=0, every_s=3600.0)) == []
    assert due_steps(CheckpointPolicy(every=0, every_s=1e-9)) == [1, 2, 3, 4, 5, 6, 7]
    seen = []
    fit(_model(), train, val, PHASES, CFG, seed=1, on_epoch=lambda r, s: seen.append(s.due))
    assert seen == [None] * 7  # no policy: the caller decides
    p = CheckpointPolicy(every=0, every_s=60.0)
    assert not p.due(100, 59.0) and p.due(1, 60.0)


def test_epochs_due_by_time_count_from_the_last_checkpoint(monkeypatch):
    clock = iter(range(0, 1000, 25))  # each epoch "takes" 25 s
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(clock)))
    train, val = _problem()
    out = []
    fit(_model(), train, val, PHASES, CFG, seed=1, checkpoint=CheckpointPolicy(0, 60.0),
        on_epoch=lambda r, s: out.append(r["step"]) if s.due else None)  # fmt: skip
    assert out == [3, 6]  # 75 s after the start, then 75 s after that checkpoint


# ---------------------------------------------------------------- class weights


def test_weighted_loss_equals_a_hand_computation():
    train, val = _problem()
    w = torch.tensor([0.2, 1.0, 3.0])
    m = _model()
    with torch.no_grad():
        logp = torch.log_softmax(m(train.x), 1).double()
    nll = -logp[torch.arange(len(train)), train.y]
    wy = w.double()[train.y]
    hand = float((wy * nll).sum() / wy.sum())
    unweighted = float(nll.mean())
    cfg = TrainConfig(batch_size=len(train), optimizer="sgd", momentum=0.0)  # one batch
    st = fit(m, train, val, [Phase(0.0, 1)], cfg, seed=1, class_weights=w)  # lr 0: no step
    assert st["history"][0]["train_loss"] == pytest.approx(hand, rel=1e-6)
    assert abs(hand - unweighted) > 1e-3  # the weights do change the loss
    st0 = fit(_model(), train, val, [Phase(0.0, 1)], cfg, seed=1)
    assert st0["history"][0]["train_loss"] == pytest.approx(unweighted, rel=1e-6)


def test_no_class_weights_leaves_the_numbers_unchanged():
    train, val = _problem()
    a, b = _model(), _model()
    fit(a, train, val, PHASES, CFG, seed=1)
    fit(b, train, val, PHASES, CFG, seed=1, class_weights=None)
    assert _equal(a, b)


# ---------------------------------------------------------------- phases with parameter groups


class Layered(nn.Module):
    """Three layer groups as fastai cuts a network: early, middle (with a BatchNorm), head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.early = nn.Linear(8, 16)
        self.middle = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.middle(torch.relu(self.early(x))))


def test_discriminative_learning_rates_are_fastai_slices():
    ph = Phase.discriminative(1e-5, 1e-4, 2, ["early", "middle", "head"])
    assert ph.lr == 1e-4
    lrs = [ph.lr * m for _, m in ph.groups]
    np.testing.assert_allclose(lrs, [1e-5, 10**-4.5, 1e-4], rtol=1e-12)
    assert Phase.discriminative(1e-5, 1e-4, 2, ["head"]).groups == (("head", 1.0),)


def test_head_alone_then_unfrozen_groups_at_their_own_rates():
    train, val = _problem()
    cfg = TrainConfig(batch_size=len(train), optimizer="sgd", momentum=0.0)  # one full batch
    m = Layered()
    start = {k: v.clone() for k, v in m.state_dict().items()}
    p1 = Phase(0.05, 3, groups=[("head", 1.0)])
    # fastai's slice(0.01, 0.1) over three groups, named three ways: a tuple of name prefixes,
    # a prefix, the parameters themselves
    p2 = Phase.discriminative(0.01, 0.1, 1, [("early",), "middle", list(m.head.parameters())])
    seen = {}

    def on_epoch(row, snap):
        if row["step"] == 3:  # the end of phase 1 = the start of phase 2 (keep_best=False)
            seen["p1"] = {k: v.clone() for k, v in m.state_dict().items()}
            seen["flags"] = {n: p.requires_grad for n, p in m.named_parameters()}

    fit(m, train, val, [p1, p2], cfg, seed=1, keep_best=False, on_epoch=on_epoch)
    p1_end = seen["p1"]
    for k in start:  # phase 1 trained the head alone: the rest, BatchNorm statistics too, held
        if not k.startswith("head."):
            assert torch.equal(start[k], p1_end[k]), k
    assert not torch.equal(start["head.weight"], p1_end["head.weight"])
    assert seen["flags"] == {n: n.startswith("head.") for n in seen["flags"]}
    assert all(p.requires_grad for p in m.parameters())  # flags restored after the fit

    # phase 2: one SGD step on the full batch, each group at its own rate
    ref = Layered()
    ref.load_state_dict(p1_end)
    ref.train()
    loss = nn.functional.cross_entropy(ref(train.x), train.y)
    grads = dict(zip([n for n, _ in ref.named_parameters()],
                     torch.autograd.grad(loss, list(ref.parameters()))))  # fmt: skip
    rate = {"early": 0.01, "middle": 0.1 * math.sqrt(0.1), "head": 0.1}
    end = m.state_dict()
    for n, g in grads.items():
        lr = rate[n.split(".")[0]]
        expected = p1_end[n] - lr * g
        torch.testing.assert_close(end[n], expected, rtol=1e-5, atol=1e-6)
        if g.abs().max() > 1e-6:  # (a bias before a BatchNorm gets no gradient)
            assert not torch.equal(end[n], p1_end[n]), n


def test_a_group_naming_no_parameter_fails():
    train, val = _problem()
    with pytest.raises(ValueError, match="matches no parameter"):
        fit(Layered(), train, val, [Phase(0.1, 1, groups=[("nothing", 1.0)])], CFG, seed=1)


def test_groups_resume_bit_identical():
    train, val = _problem()
    phases = [Phase(0.05, 3, groups=[("head", 1.0)]),
              Phase.discriminative(0.005, 0.05, 3, ["early", "middle", "head"])]  # fmt: skip
    ref = Layered()
    fit(ref, train, val, phases, CFG, seed=2)
    snaps = []
    fit(
        Layered(),
        train,
        val,
        phases,
        CFG,
        seed=2,
        on_epoch=lambda r, s: snaps.append(_roundtrip(s())),
    )
    for k in (2, 3, 4):
        m = Layered()
        fit(m, train, val, phases, CFG, seed=2, state=snaps[k - 1])
        assert _equal(ref, m), k


# ---------------------------------------------------------------- GPU options, on the CPU


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)  # as in a ResNet
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _images(n=96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, 6, 6, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + (x[:, 1].mean((1, 2)) > 0.2).long()
    return Split(x[:64], y[:64]), Split(x[64:], y[64:])


def test_default_gpu_options_keep_the_numbers_bit_identical():
    train, val = _images()
    a, b = ConvNet(), ConvNet()
    fit(a, train, val, PHASES, CFG, seed=1)
    fit(b, train, val, PHASES, TrainConfig(batch_size=16, amp="none", channels_last=False), seed=1)
    assert _equal(a, b)


def test_channels_last_trains_the_same_model():
    train, val = _images()
    a, b = ConvNet(), ConvNet()
    st_a = fit(a, train, val, PHASES, CFG, seed=1)
    st_b = fit(b, train, val, PHASES, TrainConfig(batch_size=16, channels_last=True), seed=1)
    assert b.conv.weight.is_contiguous(memory_format=torch.channels_last)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, rtol=1e-4, atol=1e-5)
    assert [h["val_acc"] for h in st_a["history"]] == [h["val_acc"] for h in st_b["history"]]


def test_bf16_autocast_trains_in_bf16_and_learns():
    train, val = _images()
    m = ConvNet()
    dtypes = []
    hook = m.conv.register_forward_hook(lambda mod, i, o: dtypes.append(o.dtype))
    st = fit(m, train, val, [Phase(0.05, 6)], TrainConfig(batch_size=16, amp="bf16"), seed=1)
    hook.remove()
    assert torch.bfloat16 in dtypes
    assert m.conv.weight.dtype == torch.float32  # master weights stay fp32
    losses = [h["train_loss"] for h in st["history"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_fit_leaves_the_callers_splits_alone():
    train, val = _problem()
    x0 = train.x.clone()
    fit(_model(), train, val, PHASES, CFG, seed=1)
    assert torch.equal(train.x, x0) and train.x.device.type == "cpu"
    assert train.to(torch.device("cpu")).x is train.x  # same device: no copy


def test_nondeterministic_settings_let_cudnn_benchmark():
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())  # fmt: skip
    try:
        torch_settings(1, deterministic=False)
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        torch_settings(1, deterministic=True)
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[:2]
        torch.use_deterministic_algorithms(before[2], warn_only=True)
        torch.set_num_threads(before[3])


def test_train_epoch_keeps_its_positional_signature():
    """pretrain.py and the benchmarks call it positionally with a loss function."""
    train, _ = _problem()
    m = _model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    loss, acc = train_epoch(m, train, opt, 16, torch.Generator().manual_seed(0), None,
                            nn.functional.cross_entropy)  # fmt: skip
    assert np.isfinite(loss) and 0 <= acc <= 1


def test_a_diverged_fit_stops_and_reports_no_accuracy():
    """A non-finite training loss ends the fit at once: the epoch is marked diverged with NaN
    accuracies (an argmax of NaN probabilities would read as class 0, i.e. a chance score)."""
    train, val = _problem()
    seen = []
    cfg = TrainConfig(batch_size=16, optimizer="sgd")
    st = fit(_model(), train, val, [Phase(1e30, 5), Phase(0.01, 3)], cfg, seed=1,
             on_epoch=lambda row, snap: seen.append((row, snap.due)))  # fmt: skip
    last = st["history"][-1]
    assert st["diverged"]["step"] == last["step"] == len(st["history"]) < 8
    assert (
        last["diverged"] and math.isnan(last["val_acc"]) and not math.isfinite(last["train_loss"])
    )
    assert seen[-1][0] is last and seen[-1][1] is False  # reported, never checkpointed
    assert all(not r.get("diverged") for r in st["history"][:-1])
    healthy = fit(_model(), train, val, PHASES, CFG, seed=1)
    assert "diverged" not in healthy and len(healthy["history"]) == 7


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_the_fused_optimizer_takes_the_steps_of_torchs_loop(name):
    """make_optimizer's fused kernels update as torch's per-tensor loop does (to float
    rounding), with parameter groups at their own rates."""
    cfg = TrainConfig(optimizer=name, weight_decay=1e-4)
    models = [_model(), _model()]
    groups = [[{"params": m[0].parameters(), "lr": 0.01}, {"params": m[2].parameters()}]
              for m in models]  # fmt: skip
    fused = loop.make_optimizer(groups[0], cfg, 0.05)
    kind = torch.optim.Adam if name == "adam" else torch.optim.SGD
    extra = {"momentum": cfg.momentum} if name == "sgd" else {}
    plain = kind(groups[1], lr=0.05, weight_decay=1e-4, foreach=False, **extra)
    assert fused.defaults["fused"] is True and plain.defaults["fused"] in (None, False)
    train, _ = _problem()
    for opt, m in zip((fused, plain), models, strict=True):
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(m(train.x), train.y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(models[0][0].weight, _model()[0].weight)  # they did move


def test_fused_is_left_to_torch_where_a_parameter_cannot_take_it():
    assert loop.fused_ok([nn.Parameter(torch.zeros(2))]) is True
    assert loop.fused_ok([nn.Parameter(torch.zeros(2, device="meta"))]) is None
    assert loop.fused_ok([]) is None
