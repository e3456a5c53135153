import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ganlib import plots  # noqa: E402
from ganlib.errors import GanlibError  # noqa: E402


def test_image_grid_maps_minus_one_one_to_zero_one_and_tiles():
    images = torch.tensor([[[[-1.0, 1.0], [0.0, 3.0]]], [[[1.0, 1.0], [1.0, 1.0]]], [[[-1.0, -1.0], [-1.0, -1.0]]]])
    grid = plots.image_grid(images, nrow=2, padding=1, pad_value=0.5)
    # 2 columns and 2 rows of 2x2 images with 1-pixel padding; grey becomes 3 channels.
    assert grid.shape == (3, 1 + 2 * 3, 1 + 2 * 3)
    assert torch.equal(grid[0, 1:3, 1:3], torch.tensor([[0.0, 1.0], [0.5, 1.0]]))   # 3.0 clamped to 1
    assert torch.equal(grid[:, 1:3, 4:6], torch.ones(3, 2, 2))
    assert torch.equal(grid[:, 4:6, 1:3], torch.zeros(3, 2, 2))
    assert torch.all(grid[:, 4:6, 4:6] == 0.5)    # the empty cell stays padding
    assert torch.all(grid[:, 0, :] == 0.5)


def test_image_grid_rejects_hwc():
    with pytest.raises(GanlibError, match=r"got shape \(2, 8, 8, 3\)\. Permute HWC"):
        plots.image_grid(torch.zeros(2, 8, 8, 3))


def test_save_images_writes_the_uint8_grid(tmp_path):
    images = torch.rand(5, 3, 6, 6) * 2 - 1
    path = plots.save_images(images, tmp_path / "a" / "grid.png", nrow=3)
    saved = np.asarray(Image.open(path))
    expected = plots.to_uint8(plots.image_grid(images, nrow=3))
    assert saved.dtype == np.uint8 and saved.shape == expected.shape == (2 + 2 * 8, 2 + 3 * 8, 3)
    assert np.array_equal(saved, expected)


def test_show_images_draws_on_given_axes():
    fig, ax = plt.subplots()
    out = plots.show_images(torch.zeros(4, 3, 8, 8), nrow=2, title="samples", ax=ax)
    assert out is ax and ax.get_title() == "samples"
    assert ax.images[0].get_array().shape == (2 + 2 * 10, 2 + 2 * 10, 3)
    plt.close(fig)


def test_smooth_ema_is_debiased_and_skips_nan():
    out = plots.smooth_ema([1.0, float("nan"), 3.0], smooth=0.5)
    # s1 = 0.5 / 0.5 = 1;  s2 = (0.5*0.5 + 0.5*3) / (0.5*0.5 + 0.5) = 1.75 / 0.75
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == pytest.approx(1.75 / 0.75)


def test_plot_history_one_subplot_per_group():
    history = {"step": [0, 1, 2, 3], "loss_D": [1.0, 0.5, 0.7, 0.6], "loss_G": [2.0, 1.0, 1.5, 1.2],
               "fid": [math.nan, math.nan, 50.0, math.nan]}
    fig = plots.plot_history(history, {"losses": ["loss_D", "loss_G"], "FID": ["fid"]}, smooth=0.6)
    losses, fid = fig.axes
    assert losses.get_title() == "losses" and fid.get_title() == "FID"
    assert len(losses.lines) == 4           # raw (faint) + smoothed per curve
    assert list(fid.lines[-1].get_xdata()) == [2.0]   # NaN rows are not drawn
    plt.close(fig)
    with pytest.raises(GanlibError, match=r"no column \['loss'\]"):
        plots.plot_history(history, ["loss"])


def test_format_table_is_plain_markdown():
    rows = [{"model": "DCGAN", "FID": 41.23456, "steps": 1000}, {"model": "WGAN-GP", "FID": 38.0}]
    assert plots.format_table(rows) == (
        "| model   | FID   | steps |\n"
        "| ------- | ----- | ----- |\n"
        "| DCGAN   | 41.23 | 1000  |\n"
        "| WGAN-GP | 38    |       |")
    assert plots.format_table([]) == ""
