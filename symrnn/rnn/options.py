"""Checks of the cells' scalar options (cuDNN's cellClip, LSTMP's proj_size)."""
from __future__ import annotations

from runtime.errors import ConfigError
from symrnn.scalars import as_int, as_real


def check_clip(where: str, clip) -> float | None:
    """`clip` as a positive float (None: no clipping), or a ConfigError."""
    if clip is None:
        return None
    bound = as_real(clip)
    if bound is None or not bound > 0:
        raise ConfigError(f"{where}: 'cell_clip' must be a positive number (or None for no "
                          f"clipping), given {clip!r}")
    return bound


def check_proj(where: str, proj) -> int:
    """`proj` as an int >= 0 (None: 0, no projection), or a ConfigError."""
    size = 0 if proj is None else as_int(proj)
    if size is None or size < 0:
        raise ConfigError(f"{where}: 'proj_size' must be an int >= 0 (0: no projection), "
                          f"given {proj!r}")
    return size


__all__ = ["check_clip", "check_proj"]
