"""Experiment tracking: always local files, Weights & Biases on request.

Every run writes its scalars to out_dir/log.jsonl (one JSON object per log() call: step plus the
values) and its sample grids to out_dir/samples/NAME_00000120.png, so curves and samples survive
without any account. mode="offline" or "online" also sends them to wandb (imported only then).
"""
from __future__ import annotations

import json
import math
import netrc
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlib.errors import GanlibError

__all__ = ["Tracker", "resolve_mode", "write_metrics", "read_history"]

_MODES = ("disabled", "offline", "online")
# Seconds wandb.init may take before giving up (its default is 90, a long stall without network).
WANDB_INIT_TIMEOUT = 20


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str) -> str:
    """The wandb mode to use: "online" without an API key (WANDB_API_KEY or ~/.netrc) becomes
    "offline" with a warning, since a login prompt or a network wait would stall the notebook."""
    if mode not in _MODES:
        raise GanlibError(f"tracking mode={mode!r} is not one of {_MODES}.")
    if mode == "online" and not _has_wandb_credentials():
        print("Warning: wandb mode 'online' but no API key found (set WANDB_API_KEY or run `wandb login`). "
              "Logging offline instead; upload later with `wandb sync`.")
        return "offline"
    return mode


def _to_float(name: str, value: Any) -> float:
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        size = value.numel() if torch.is_tensor(value) else value.size
        if size != 1:
            raise GanlibError(f"Tracker.log: {name} has shape {tuple(value.shape)}; log one number per name.")
        value = value.item()
    return float(value)


def read_history(path: str | Path) -> dict[str, list]:
    """Columns of a log.jsonl: {"step": [...], name: [...]}, NaN where a row lacks a name.

    A partial last line (a crash mid-write) is skipped.
    """
    rows = []
    path = Path(path)
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    names = ["step"] + sorted({k for r in rows for k in r} - {"step"})
    return {k: [r.get(k, math.nan) for r in rows] for k in names}


class Tracker:
    """Logs scalars and image grids of one run.

    resume_step: the step a resumed run starts at (the checkpoint's next_step). Rows logged at that
    step or later by the interrupted run are dropped, so curves have no duplicates.
    log_name: the log file is out_dir/LOG_NAME.jsonl (and the config LOG_NAME.config.json when it is not
    "log"), so several models trained in one notebook each keep their own log and step axis.
    """

    def __init__(self, out_dir: str | Path, mode: str = "disabled", project: str = "ganlib", name: str | None = None,
                 config: dict | None = None, resume_step: int | None = None, log_name: str = "log"):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out_dir / f"{log_name}.jsonl"
        self._prefix = "" if log_name == "log" else f"{log_name}."
        self.samples_dir = self.out_dir / "samples"
        if resume_step is not None:
            self._truncate_log(resume_step)
        elif self.log_path.exists():
            self.log_path.unlink()  # a fresh run in an old directory starts a fresh log
        self._file = open(self.log_path, "a")
        if config is not None:
            (self.out_dir / f"{self._prefix}config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        self.mode = resolve_mode(mode)
        self.run = None
        if self.mode != "disabled":
            self.run = self._start_wandb(project, name, config, resume=resume_step is not None)

    def _truncate_log(self, resume_step: int) -> None:
        if not self.log_path.exists():
            return
        kept = []
        for line in self.log_path.read_text().splitlines():
            try:
                if json.loads(line)["step"] < resume_step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        tmp = self.log_path.with_name(f".{self.log_path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.log_path)

    def _start_wandb(self, project, name, config, resume: bool):
        try:
            import wandb
        except ImportError:
            print("Warning: wandb is not installed (pip install wandb); logging to local files only.")
            self.mode = "disabled"
            return None
        # Reuse the run id across resumes so wandb continues the same run.
        id_file = self.out_dir / f"{self._prefix}wandb_run_id.txt"
        if resume and id_file.exists():
            run_id = id_file.read_text().strip()
        else:
            run_id = wandb.util.generate_id()
            id_file.write_text(run_id + "\n")
        for mode in dict.fromkeys([self.mode, "offline"]):
            try:
                run = wandb.init(project=project, name=name, config=config, dir=str(self.out_dir), id=run_id,
                                 resume="allow", mode=mode, settings=wandb.Settings(init_timeout=WANDB_INIT_TIMEOUT))
                self.mode = mode
                return run
            except Exception as err:
                print(f"Warning: wandb.init(mode={mode!r}) failed ({type(err).__name__}: {str(err)[:200]}).")
        print("Warning: logging to local files only.")
        self.mode = "disabled"
        return None

    def log(self, step: int, **scalars) -> None:
        row = {"step": int(step), **{k: _to_float(k, v) for k, v in scalars.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.run is not None:
            self.run.log({k: v for k, v in row.items() if k != "step"}, step=int(step))

    def log_images(self, step: int, name: str, images) -> Path:
        """Save a grid as samples/NAME_00000120.png (and send it to wandb). `images` is a batch
        NCHW in [-1, 1], a grid CHW in [0, 1] (plots.image_grid), or a uint8 HxWx3 array."""
        from ganlib.plots import save_images

        path = save_images(images, self.samples_dir / f"{name}_{int(step):08d}.png")
        if self.run is not None:
            import wandb
            self.run.log({name: wandb.Image(str(path))}, step=int(step))
        return path

    def history(self) -> dict[str, list]:
        """Every logged row so far (also after close(): the notebook plots once training is over)."""
        if not self._file.closed:
            self._file.flush()
        return read_history(self.log_path)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self.run is not None:
            self.run.finish()
            self.run = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _rounded(value: Any) -> Any:
    """Plain JSON values; floats to 6 significant digits (metrics are not more precise than that)."""
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if torch.is_tensor(value) or isinstance(value, np.generic | np.ndarray):
        value = value.tolist()
        return _rounded(value)
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return value


def _merge(into: dict, new: dict) -> None:
    # Nested sections merge key by key, so {"dcgan": {"fid": ..}} then {"dcgan": {"is": ..}} keeps both.
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def write_metrics(out_dir: str | Path, metrics: dict) -> dict:
    """Merge `metrics` into out_dir/metrics.json (atomic write, sorted keys); returns the merged dict.

    Each notebook section adds its own numbers; nested dicts merge key by key and a later value for
    the same key replaces the earlier.
    Non-finite floats are written as null (JSON has no NaN).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    merged = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except json.JSONDecodeError:
            print(f"Warning: {path} was not valid JSON; starting it afresh.")
    _merge(merged, _rounded(metrics))
    tmp = path.with_name(f".metrics.json.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return merged
