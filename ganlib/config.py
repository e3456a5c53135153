"""What a notebook does right after its `parameters` cell: resolve the preset, set up the run folder.

A notebook's parameters cell gives every hyperparameter the default `None`, meaning "take the
preset's value". `resolve_preset` fills those in from the notebook's table of presets, refuses
values the notebook does not know, and prints the resolved configuration, so the executed
notebook records exactly what ran.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from . import REPO_ROOT
from .errors import GanlibError

PRESETS = ("smoke", "demo", "paper")
KAGGLE_WORKING = Path("/kaggle/working")
KAGGLE_INPUT = Path("/kaggle/input")


def on_kaggle() -> bool:
    """True inside a Kaggle kernel (Kaggle sets KAGGLE_KERNEL_RUN_TYPE in every session)."""
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def resolve_preset(preset: str, presets: dict[str, dict], given: dict, show: bool = True) -> SimpleNamespace:
    """Fill every value left at None in `given` from `presets[preset]`.

    `given` holds the parameters cell's values (None = not given). A value given explicitly
    always wins over the preset. Returns a namespace with the preset's keys and the given keys.
    """
    if preset not in presets:
        raise GanlibError(f"Unknown preset {preset!r}; choose one of {', '.join(presets)}.")
    table = presets[preset]
    resolved = dict(table)
    for key, value in given.items():
        if value is not None:
            resolved[key] = value
        elif key not in table:
            raise GanlibError(
                f"Parameter {key!r} is None and preset {preset!r} gives it no value; set it explicitly."
            )
    resolved["preset"] = preset
    if show:
        width = max(map(len, resolved))
        print(f"Resolved configuration (preset {preset!r}; * = given explicitly):")
        for key in sorted(resolved):
            mark = "*" if given.get(key) is not None and key != "preset" else " "
            print(f"  {mark} {key:<{width}} = {resolved[key]!r}")
    return SimpleNamespace(**resolved)


def default_run_dir(name: str, preset: str) -> Path:
    """runs/NAME-PRESET at the repository root, or under /kaggle/working on Kaggle."""
    base = KAGGLE_WORKING if on_kaggle() else REPO_ROOT
    return base / "runs" / f"{name}-{preset}"


def prepare_run_dir(name: str, preset: str, out_dir: str | os.PathLike = "",
                    kaggle_input: Path = KAGGLE_INPUT) -> Path:
    """Create the run folder (checkpoints/, samples/) and return it.

    On Kaggle, a new version of a kernel starts with an empty /kaggle/working. When the earlier
    version's output is attached (kernel_sources), its checkpoints appear under /kaggle/input;
    they are copied in here so the run resumes where the earlier version timed out.
    """
    run_dir = Path(out_dir) if out_dir else default_run_dir(name, preset)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    if not any((run_dir / "checkpoints").rglob("*.pt")) and kaggle_input.is_dir():
        earlier = find_attached_checkpoints(name, preset, kaggle_input)
        if earlier is not None:
            shutil.copytree(earlier, run_dir / "checkpoints", dirs_exist_ok=True)
            print(f"Copied checkpoints of an earlier kernel version from {earlier}; training resumes from them.")
    return run_dir


def find_attached_checkpoints(name: str, preset: str, kaggle_input: Path = KAGGLE_INPUT) -> Path | None:
    """The checkpoints/ folder of runs/NAME-PRESET inside an attached kernel output, if any."""
    wanted = f"{name}-{preset}"
    found = [p for p in kaggle_input.rglob("checkpoints") if p.is_dir() and p.parent.name == wanted]
    found = [p for p in found if any(p.rglob("*.pt"))]
    # Several attached versions: take the one whose newest checkpoint is newest.
    return max(found, key=lambda p: max(f.stat().st_mtime for f in p.rglob("*.pt")), default=None)
