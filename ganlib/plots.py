"""Image grids, loss curves and small tables for the notebooks (matplotlib only, works headless)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ganlib.errors import GanlibError

__all__ = ["image_grid", "to_uint8", "show_images", "save_images", "plot_history", "smooth_ema",
           "format_table", "show_table"]


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0,
               value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Tile a batch NCHW (values in value_range, [-1, 1] by default) into one CHW image in [0, 1].

    nrow images per row; 1-channel images become 3-channel grey. A single CHW image is a batch of one.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise GanlibError(f"image_grid expects images NCHW with 1 or 3 channels; got shape {tuple(images.shape)}. "
                          "Permute HWC arrays to CHW first.")
    low, high = value_range
    x = ((images.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), float(pad_value))
    for k in range(n):
        r, col = divmod(k, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = x[k]
    return grid


def to_uint8(grid: torch.Tensor) -> np.ndarray:
    """CHW in [0, 1] -> uint8 HxWx3."""
    return (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _as_uint8_image(images, nrow: int) -> np.ndarray:
    # Accepts a batch NCHW in [-1, 1], a grid CHW in [0, 1], or a uint8 HxWx3 array.
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        return images if images.ndim == 3 else np.repeat(images[..., None], 3, axis=2)
    if torch.is_tensor(images) and images.dim() == 3:
        return to_uint8(image_grid(images, nrow=1, padding=0, value_range=(0.0, 1.0)))
    return to_uint8(image_grid(images, nrow=nrow))


def show_images(images, nrow: int = 8, title: str | None = None, ax=None, figsize: float = 6.0):
    """Draw images (batch NCHW in [-1, 1], grid CHW in [0, 1], or uint8 HxWx3) on ax; returns ax."""
    import matplotlib.pyplot as plt

    image = _as_uint8_image(images, nrow)
    if ax is None:
        h, w = image.shape[:2]
        _, ax = plt.subplots(figsize=(figsize, figsize * h / w))
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_images(images, path: str | Path, nrow: int = 8) -> Path:
    """Write images (as show_images takes them) to a PNG; returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_as_uint8_image(images, nrow)).save(path)
    return path


def smooth_ema(values: Sequence[float], smooth: float) -> np.ndarray:
    """TensorBoard-style smoothing, debiased: s_t = smooth * s_{t-1} + (1 - smooth) * v_t, divided by
    (1 - smooth^t) so the curve does not start at 0. NaN values are skipped (stay NaN)."""
    values = np.asarray(values, dtype=float)
    out = np.full_like(values, np.nan)
    s, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        s = smooth * s + (1 - smooth) * v
        weight = smooth * weight + (1 - smooth)
        out[i] = s / weight
    return out


def plot_history(history: dict[str, Sequence[float]], keys: Sequence[str] | dict[str, Sequence[str]] | None = None,
                 smooth: float = 0.0, x: str = "step", axes=None):
    """Loss curves from Tracker.history() (or any dict of equal-length lists).

    keys: names on one plot; a list of lists or a dict {title: names} gives one subplot per group.
    Default: every column but `x` on one plot. smooth in [0, 1): EMA smoothing, raw curve drawn faintly.
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    if keys is None:
        keys = [k for k in history if k != x]
    if isinstance(keys, dict):
        groups = list(keys.items())
    elif keys and not isinstance(keys[0], str):
        groups = [(None, list(g)) for g in keys]
    else:
        groups = [(None, list(keys))]
    missing = [k for _, g in groups for k in g if k not in history]
    if missing:
        raise GanlibError(f"plot_history: no column {missing} in the history; it has {sorted(history)}.")
    if not 0.0 <= smooth < 1.0:
        raise GanlibError(f"plot_history smooth={smooth} must be in [0, 1).")
    if axes is None:
        fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    for ax, (title, names) in zip(axes, groups):
        for name in names:
            y = np.asarray(history[name], dtype=float)
            xs = np.asarray(history[x], dtype=float) if x in history else np.arange(len(y))
            finite = np.isfinite(y)
            if smooth > 0:
                line, = ax.plot(xs[finite], y[finite], alpha=0.25)
                ax.plot(xs[finite], smooth_ema(y, smooth)[finite], color=line.get_color(), label=name)
            else:
                ax.plot(xs[finite], y[finite], label=name)
        ax.set_xlabel(x)
        if title:
            ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _cell(value: Any, floatfmt: str) -> str:
    if isinstance(value, float) or isinstance(value, np.floating):
        return format(float(value), floatfmt)
    if torch.is_tensor(value) and value.numel() == 1:
        return format(value.item(), floatfmt)
    return str(value).replace("|", "\\|")


def format_table(rows: list[dict], floatfmt: str = ".4g") -> str:
    """A markdown table of a list of dicts (columns in first-seen order; missing cells blank)."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(r[c], floatfmt) if c in r else "" for c in columns] for r in rows]
    widths = [max(len(str(c)), *(len(row[i]) for row in cells), 3) for i, c in enumerate(columns)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    return "\n".join([line([str(c) for c in columns]), line(["-" * w for w in widths])] + [line(r) for r in cells])


def show_table(rows: list[dict], floatfmt: str = ".4g") -> None:
    """Print rows as a markdown table (plain text: deterministic in checked notebook outputs)."""
    print(format_table(rows, floatfmt))
