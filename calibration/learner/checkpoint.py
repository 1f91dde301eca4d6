"""Checkpoints of a population in training: a long run resumes where it stopped.

A checkpoint is one .npz file beside the run's logs (numpy arrays only, read back with
allow_pickle=False; its metadata is a JSON string), written atomically at a log point once
`TrainConfig.checkpoint_s` seconds have passed since the last one, and removed when the run
finishes. It holds everything the run carries from one env step to the next except the
environments: networks, target networks, optimiser moments and step counts, temperatures, both
replay buffers, the random generators, the UTD credit, the divergence flags, the logs so far and
the running sums (loss, member-updates, time by phase).

A resumed run starts new episodes (training and validation envs reset with seeds derived from
each member's seed and the step), so it continues the same run statistically, not bit for bit;
its manifest lists the steps it resumed from. A checkpoint written for another configuration
(anything that changes the arithmetic), or one that does not read, is set aside with a warning
and the run starts over; the log files the other configuration's attempt wrote (the checkpoint
lists them) are removed, so that only this run's logs are there to be read and fitted.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from calibration.atomic import atomic_savez

FILE = "checkpoint.npz"
VERSION = 1
# Settings that change how fast a run goes, not what it computes: a run may resume with others.
SPEED_ONLY = ("device", "cuda_graph", "compile", "optimizer", "vector_env", "env_threads",
              "divergence_check_every", "name", "checkpoint_s", "spans", "eval_background")
# Settings added after checkpoints were first written, with the value a checkpoint that does not
# name them was written with: left out of the comparison at that value, so such a checkpoint
# still resumes.
ADDED_LATER = {"bf16": False}


def comparable(cfg) -> dict:
    """The configuration a checkpoint must share to be resumed."""
    return {k: v for k, v in asdict(cfg).items()
            if k not in SPEED_ONLY and not (k in ADDED_LATER and v == ADDED_LATER[k])}


def population_tensors(pop) -> dict[str, torch.Tensor]:
    """Every tensor of a Population that training changes (restored in place: the networks'
    layer views, the optimisers and any captured CUDA graph keep pointing at them), but for
    the bf16 copies of Population.bf16: those are the parameters rounded, rounded again on
    restore (`restore_population`)."""
    out = {"critic": pop.critic, "target": pop.target, "actor": pop.actor,
           "log_alpha": pop.log_alpha}
    for name in ("critic_opt", "actor_opt", "alpha_opt"):
        opt = getattr(pop, name)
        out.update({f"{name}.m": opt.m, f"{name}.v": opt.v, f"{name}.t": opt.t})
    return out


def restore_population(pop, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
    """Restore `pop` from a checkpoint's arrays in place, and round its restored parameters to
    its bf16 copies (Population.bf16: they are not saved, numpy has no bf16)."""
    restore_tensors(population_tensors(pop), arrays, prefix)
    pop.sync_copies()


def save(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    arrays = dict(arrays)
    arrays["meta"] = np.array(json.dumps({"version": VERSION, **meta}))
    atomic_savez(path, arrays)


def load(path: Path, cfg) -> tuple[dict[str, np.ndarray], dict] | None:
    """The checkpoint at `path` if there is one for `cfg`, else None (a checkpoint that does not
    read, or of another configuration, is renamed to `<name>.stale` and warned about)."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict) or meta.get("version") != VERSION:
            raise ValueError(f"version {meta.get('version') if isinstance(meta, dict) else '?'}"
                             f", expected {VERSION}")
        why = None if meta.get("config") == as_json(comparable(cfg)) else "another configuration"
    except Exception as exc:  # a torn or foreign file: never fatal, the run starts over
        why, meta = f"unreadable ({type(exc).__name__}: {exc})", None
    if why is None:
        return arrays, meta
    set_aside(path, why)
    if why == "another configuration":  # its partial logs are not this run's: never fitted
        remove_logs(path.parent, meta.get("log_files"))
    return None


def remove_logs(run_dir: Path, files) -> None:
    """Remove the log files (relative paths, as a checkpoint lists them) of an abandoned
    attempt from `run_dir`, and the folders that leaves empty; nothing outside `run_dir`, and
    only .npy files."""
    if not isinstance(files, list):
        return
    root = run_dir.resolve()
    for rel in files:
        if not isinstance(rel, str) or not rel.endswith(".npy"):
            continue
        target = (run_dir / rel).resolve()
        if root not in target.parents:
            continue
        target.unlink(missing_ok=True)
        for folder in target.parents:
            if folder == root:
                break
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break


def set_aside(path: Path, why: str) -> None:
    """Rename a checkpoint that cannot be resumed to `<name>.stale` (removed when the run ends),
    with a warning saying why."""
    stale = path.with_name(path.name + ".stale")
    path.replace(stale)
    warnings.warn(f"checkpoint {path} is {why}: moved to {stale.name}; training from the start",
                  RuntimeWarning, stacklevel=3)


def clean(run_dir: Path) -> None:
    """Remove what checkpoints leave in `run_dir`: the checkpoint, a stale one, and temporary
    files of a write that was killed."""
    for p in (run_dir / FILE, run_dir / (FILE + ".stale"), *run_dir.glob(f".{FILE}.*.tmp")):
        p.unlink(missing_ok=True)


def restore_tensors(tensors: dict[str, torch.Tensor], arrays: dict[str, np.ndarray],
                    prefix: str = "") -> None:
    for name, t in tensors.items():
        a = arrays[prefix + name]
        if tuple(a.shape) != tuple(t.shape):
            raise ValueError(f"checkpoint {prefix + name} has shape {a.shape}, expected "
                             f"{tuple(t.shape)}")
        t.copy_(torch.from_numpy(a).to(t.dtype))


def as_json(x):
    """x as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(x))
