"""Checkpoints of a `Trainer`: a symrnn artifact (runtime.artifact: `runtime.load` and
`symrnn run` read it) with two more members, `extra/train/state.json` (position, history,
optimizer settings, the run's configuration, rank count) and `extra/train/arrays.npz` (the
optimizer's arrays and every rank's carried states).

Rank 0 writes, atomically: a temporary file in the same folder, renamed over the last
checkpoint, so that a kill mid-write leaves the previous checkpoint whole. Every rank reads
(on several hosts the path must be on a shared file system).
"""
from __future__ import annotations

import io
import json
import os

import numpy as np

from runtime import artifact
from runtime.errors import ConfigError

STATE, ARRAYS = "extra/train/state.json", "extra/train/arrays.npz"  # runtime.artifact's own


def save_checkpoint(trainer, path: str, config: dict) -> None:
    """Every rank calls it (the carried states are gathered); rank 0 writes `path`."""
    ex = trainer.executor
    states = {a: ex.arg_dict[a].copy() for a in trainer.links.values()}
    everyone = trainer.dp.comm.allgather_object(states)
    if not trainer.root:
        return
    arrays = {f"rank{r}/{a}": v for r, s in enumerate(everyone) for a, v in s.items()}
    opt = trainer.optimizer
    arrays.update({f"opt/{n}/{k}": v for n, s in opt.state.items() for k, v in s.items()})
    state = {"epoch": trainer.epoch, "window": trainer.window, "steps": trainer.steps,
             "ranks": trainer.dp.size, "losses": trainer.history.losses,
             "epochs": trainer.history.epochs, "config": config,
             "optimizer": {"type": type(opt).__name__, "steps": opt.steps, "lr": opt.lr}}
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        ex.export(tmp)
        manifest, members = artifact.read(tmp)
        members[STATE] = json.dumps(state, indent=1, sort_keys=True).encode()
        members[ARRAYS] = _npz(arrays)
        artifact.write(tmp, {k: v for k, v in manifest.items() if k != "members"}, members)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(trainer, path: str, config: dict) -> None:
    """Restores parameters, optimizer, carried states, position and history from `path`."""
    where = f"train --resume: {path!r}"
    if not os.path.isfile(path):
        raise ConfigError(f"{where}: no such checkpoint")
    _, members = artifact.read(path)
    if STATE not in members or ARRAYS not in members:
        raise ConfigError(f"{where} is an artifact without training state ({STATE}); "
                          f"it was not written by symrnn train")
    state = json.loads(members[STATE])
    _check_same_run(where, state, config, trainer.dp.size)
    ex, opt = trainer.executor, trainer.optimizer
    params = _arrays(members[artifact.PARAMS])
    ex.copy_params_from({n: params[n] for n in ex.grad_dict})
    arrays = _arrays(members[ARRAYS])
    for a in trainer.links.values():
        np.copyto(ex.arg_dict[a], arrays[f"rank{trainer.dp.rank}/{a}"])
    opt.state = {}
    for key, v in arrays.items():
        if key.startswith("opt/"):
            name, slot = key[4:].rsplit("/", 1)
            opt.state.setdefault(name, {})[slot] = v
    opt.steps, opt.lr = state["optimizer"]["steps"], state["optimizer"]["lr"]
    trainer.epoch, trainer.window, trainer.steps = state["epoch"], state["window"], \
        state["steps"]
    trainer.history.losses, trainer.history.epochs = list(state["losses"]), state["epochs"]


def _check_same_run(where: str, state: dict, config: dict, ranks: int) -> None:
    if state["ranks"] != ranks:
        raise ConfigError(f"{where} was written by {state['ranks']} ranks; resume it with "
                          f"mpiexec -n {state['ranks']}, given {ranks}")
    for key in sorted(set(config) | set(state["config"])):
        if key not in ("steps", "resume") and config.get(key) != state["config"].get(key):
            raise ConfigError(f"{where}: --{key.replace('_', '-')} was "
                              f"{state['config'].get(key)!r} in the checkpointed run, given "
                              f"{config.get(key)!r}")


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _arrays(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {n: npz[n] for n in npz.files}
