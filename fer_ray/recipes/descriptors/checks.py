"""The descriptor sheet: checked before Ray starts, and hashed into the stage's fingerprint
(its contents are what the config cannot see)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from fer_ray.data.descriptors import read_sheet, sheet_path

if TYPE_CHECKING:
    from fer_ray.config import Config


def sheet_identity(cfg: Config) -> str | None:
    sheet = sheet_path(cfg.descriptors.path, cfg.data.root)
    return hashlib.sha256(sheet.read_bytes()).hexdigest() if sheet.is_file() else None


def sheet(cfg: Config, inputs: dict[str, Any]) -> None:
    read_sheet(sheet_path(cfg.descriptors.path, cfg.data.root))
