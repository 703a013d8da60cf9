"""The core pipeline every run shares (the protocol of Dai, "Facial Expression Analysis based
on Transfer Learning and Feature Analysis"): prepare the faces, search the grid, train
the ensemble, analyse its members. Their config sections are the core ones in
``fer_ray.config``."""

from __future__ import annotations

from fer_ray.protocol import Stage, register

CROPS = "crops"  # the manifest and the cropped faces (prepare)
CHOSEN = "chosen"  # the searched configuration (grid: grid/chosen.json)
MEMBERS = "members"  # the trained ensemble members (ensemble/members/member_XX/)
ANALYSES = "member_analyses"  # per-member feature analyses (analyse)

register(
    Stage(
        "prepare",
        "fer_ray.stages.prepare:stage",
        keys=("data", "faces"),
        writes=(CROPS,),
        data_files=True,
        preflight="fer_ray.recipes.core.checks:faces",
        estimate="fer_ray.recipes.core.estimates:prepare",
    ),
    Stage(
        "grid",
        "fer_ray.stages.grid:stage",
        keys=("seed", "model", "train", "grid", "search", "ensemble.test_fraction"),
        reads=(CROPS,),
        writes=(CHOSEN,),
        experiments=("search",),
        preflight="fer_ray.recipes.core.checks:training",
        estimate="fer_ray.recipes.core.estimates:grid",
    ),
    Stage(
        "ensemble",
        "fer_ray.stages.ensemble:stage",
        keys=("ensemble",),
        reads=(CHOSEN,),
        writes=(MEMBERS,),
        preflight="fer_ray.recipes.core.checks:training",
        estimate="fer_ray.recipes.core.estimates:ensemble",
    ),
    Stage(
        "analyse",
        "fer_ray.stages.analyse:stage",
        keys=("analyse",),
        reads=(MEMBERS,),
        writes=(ANALYSES,),
        enabled=lambda c: c.analyse.enabled,
        estimate="fer_ray.recipes.core.estimates:analyse",
    ),
)
