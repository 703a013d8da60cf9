"""ensemble: one Ray Tune run over member seeds, each a two-phase fine-tune.

Every member trains with the grid's chosen (lr, hidden) for ``train.epochs``,
then from its best state at ``ensemble.phase2_lr`` for ``phase2_epochs``. The
kept state is the best epoch over both phases on validation, or on test when
``ensemble.selection: test`` reproduces seed 000's protocol (the report then
labels the numbers "selected on test"). The test holdout is the same for all
members, so their soft vote is well defined.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune

from fer_ray import files, layout
from fer_ray.analysis.metrics import ensemble_summary, soft_vote
from fer_ray.config import Config
from fer_ray.layout import Ensemble, RunPaths
from fer_ray.models.factory import create_model
from fer_ray.seeds import member_seed
from fer_ray.stages import common
from fer_ray.stages.cluster import node_info
from fer_ray.train.loop import Phase, fit, predict_proba


@torch.no_grad()
def _pooled(model: Any, kind: str, x: torch.Tensor, device: str) -> np.ndarray:
    model.eval()
    x = x.to(device)
    z = x if kind == "features" else model.trunk(x)
    return model.tail.pooled(z).cpu().numpy().astype(np.float32)


def ensemble_trainable(config: dict[str, Any], cfg: Config, chosen: dict, data_ref: Any) -> None:
    common.set_threads(cfg, cfg.resources.cpus_per_trial)
    data = ray.get(data_ref[0])
    member = int(config["member"])
    seed = member_seed(cfg.seed, member)
    device = common.trial_device(cfg.resources.gpus_per_trial)
    model = create_model(
        cfg.model,
        data.n_classes,
        chosen["hidden"],
        head_seed=seed,
        backbone_state=data.backbone_state,
    ).to(device)
    module = model.tail if data.kind == "features" else model
    train_m, val_m = data.member_split(seed, cfg.ensemble.val_fraction)
    train, val, test = data.split(train_m, train=True), data.split(val_m), data.split(data.test)
    phases = [Phase(chosen["lr"], cfg.train.epochs)]
    if cfg.ensemble.phase2_epochs > 0:
        phases.append(Phase(cfg.ensemble.phase2_lr, cfg.ensemble.phase2_epochs))
    last_step = sum(p.epochs for p in phases)
    sel = cfg.ensemble.selection
    state = common.restore_state()
    resumed = len(state["history"]) if state else 0  # epochs done before a restart

    def on_epoch(row: dict[str, Any], snapshot: Any) -> None:
        row = {**row, "resumed_from": resumed}
        common.report_epoch(row, snapshot, cfg.output.checkpoint_every, row["step"] == last_step)

    st = fit(
        module,
        train,
        val,
        phases,
        cfg.train,
        seed,
        select_on=sel,
        test=test if sel == "test" else None,
        state=state,
        on_epoch=on_epoch,
        transform=data.train_transform(),
    )
    # the selected weights are loaded: score them once on val and test
    test_probs = predict_proba(module, test.x)
    val_probs = predict_proba(module, val.x)
    head = model.tail.head
    artifacts = {
        "test_idx": np.flatnonzero(data.test),
        "val_idx": np.flatnonzero(val_m),
        "train_idx": np.flatnonzero(train_m),
        "test_labels": test.y.numpy(),
        "test_probs": test_probs,
        "val_probs": val_probs,
        "test_features": _pooled(model, data.kind, test.x, device),
        "w_hidden": head.fc1.weight.detach().cpu().numpy(),
        "b_hidden": head.fc1.bias.detach().cpu().numpy(),
        "w_out": head.fc2.weight.detach().cpu().numpy(),
        "b_out": head.fc2.bias.detach().cpu().numpy(),
    }
    final = {
        "step": last_step + 1,
        "final": True,
        "member": member,
        "seed": seed,
        "test_acc": float((test_probs.argmax(1) == artifacts["test_labels"]).mean()),
        "val_acc": float((val_probs.argmax(1) == val.y.numpy()).mean()),
        "selected_phase": st["best"]["phase"],
        "selected_epoch": st["best"]["epoch"],
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
        "resumed_from": resumed,
        **node_info(),
    }
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / Ensemble.MEMBER, **artifacts)
        torch.save(module.state_dict(), Path(d) / Ensemble.MODEL)
        torch.save({**st, "module": module.state_dict()}, Path(d) / "state.pt")
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(d))
    common.release_accelerator(model)


def run(cfg: Config, paths: RunPaths, data_ref: Any, chosen: dict, resume: bool) -> dict[str, Any]:
    out = paths.stage(Ensemble.DIR)
    (out / Ensemble.MEMBERS_DIR).mkdir(parents=True, exist_ok=True)
    space = {"member": tune.grid_search(list(range(cfg.ensemble.members)))}
    trainable = tune.with_resources(
        tune.with_parameters(ensemble_trainable, cfg=cfg, chosen=chosen, data_ref=[data_ref]),
        common.resources(cfg),
    )
    settings = common.tune_settings(cfg, "ensemble", "val_acc", cfg.ensemble.members)
    results = common.fit_tuner(
        trainable, space, settings, resume, finished=lambda r: bool(r.metrics.get("final"))
    )

    rows, curves, work, probs, labels = [], [], [], {}, None
    for r in results:
        m = r.metrics
        if not m.get("final"):
            raise common.StageError(f"ensemble member {r.config['member']} ended without a result")
        with r.checkpoint.as_directory() as d:
            dst = out / Ensemble.MEMBERS_DIR / Ensemble.member_dir(m["member"])
            dst.mkdir(exist_ok=True)
            for f in (Ensemble.MEMBER, Ensemble.MODEL):
                shutil.copy(Path(d) / f, dst / f)
        with np.load(dst / Ensemble.MEMBER) as z:
            probs[m["member"]] = z["test_probs"]
            labels = z["test_labels"]
        keys = ["member", "seed", "test_acc", "val_acc", "selected_phase", "selected_epoch"]
        rows.append({k: m[k] for k in (*keys, "n_train", "n_val", "n_test")})
        work.append(
            {
                "unit": f"member {m['member']}",
                **common.where(m),
                "resumed_from_epoch": m["resumed_from"],
            }
        )
        h = r.metrics_dataframe
        h = h[h.get("final", pd.Series(False, index=h.index)).fillna(False) != True]  # noqa: E712
        h = h.drop_duplicates("step", keep="last").sort_values("step")
        cols = [
            c
            for c in (
                "step",
                "phase",
                "epoch",
                "lr",
                "train_loss",
                "train_acc",
                "val_loss",
                "val_acc",
                "test_acc",
            )
            if c in h.columns
        ]
        curves.append(h[cols].assign(member=m["member"]))
    members = pd.DataFrame(rows).sort_values("member")
    probs = [probs[k] for k in sorted(probs)]  # member order, not Tune's completion order
    stats = ensemble_summary(members["test_acc"].to_numpy(), probs, labels)
    common.write_work(out, sorted(work, key=lambda w: int(w["unit"].split()[1])))
    summary = {
        "members": len(members),
        "chosen": chosen,
        "selection": cfg.ensemble.selection,
        "selected_on_test": cfg.ensemble.selection == "test",
        **stats,
    }
    members.to_csv(out / Ensemble.MEMBERS, index=False)
    pd.concat(curves).sort_values(["member", "step"]).to_csv(out / Ensemble.CURVES, index=False)
    files.savez(out / Ensemble.VOTE, probs=soft_vote(probs), labels=labels)
    files.write_json(out / layout.SUMMARY, summary)
    vote_acc = summary["vote_acc"]
    tag = " (selected on test)" if summary["selected_on_test"] else ""
    print(
        f"[ensemble] {len(members)} members · test acc {summary['test_acc_mean']:.3f}"
        f" ± {summary['test_acc_std']:.3f}{tag} · soft vote {vote_acc:.3f}"
        f" · chance {summary['chance_uniform']:.3f}",
        flush=True,
    )
    return summary
