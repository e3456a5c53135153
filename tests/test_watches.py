"""The embedded wrist-watch dataset: determinism, variety, sizes, value ranges and the CLI."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib.embedded.watches import (
    DIAL_COLOURS, WristWatches, draw_watch, main, render_watch, sample_watch, watch_grid,
)


def luma(img):
    return np.asarray(img, np.float64) @ [0.299, 0.587, 0.114]


@pytest.fixture(scope="module")
def watches64():
    return np.stack([render_watch([0, i], 64) for i in range(32)])


def test_render_is_uint8_rgb_at_any_size():
    for size in (16, 17, 33, 64, 100, 128, 512):
        img = render_watch(3, size)
        assert img.shape == (size, size, 3)
        assert img.dtype == np.uint8


@pytest.mark.parametrize("size", [15, 513, 64.0, "64"])
def test_bad_size_names_the_range(size):
    with pytest.raises(ValueError, match=r"integer from 16 to 512 pixels"):
        render_watch(0, size)


def test_same_seed_same_watch_other_seed_other_watch():
    assert np.array_equal(render_watch(11, 48), render_watch(11, 48))
    assert np.array_equal(render_watch([4, 2], 48), render_watch([4, 2], 48))
    assert not np.array_equal(render_watch(11, 48), render_watch(12, 48))


def test_same_watch_at_every_size():
    # The random choices do not depend on the size: 128 px box-downsampled to 32 px is the 32 px render,
    # up to antialiasing and text too small to draw (mean |difference| measured at about 4 of 255).
    for i in range(4):
        big = np.asarray(Image.fromarray(render_watch([0, i], 128)).reduce(4), np.float64)
        assert np.abs(big - render_watch([0, i], 32)).mean() < 10
        other = np.asarray(Image.fromarray(render_watch([0, i + 1], 128)).reduce(4), np.float64)
        assert np.abs(other - render_watch([0, i], 32)).mean() > 10


def test_variety_across_watches(watches64):
    pixels = watches64.astype(np.float64)
    # Pixel-wise spread across 32 watches (measured about 39 of 255); memorizing a few will not do.
    assert pixels.std(axis=0).mean() > 25
    # No two alike: the closest pair still differs by > 10 of 255 per pixel on average (measured 21).
    closest = min(np.abs(pixels[i] - pixels[j]).mean() for i in range(32) for j in range(i))
    assert closest > 10


def test_several_dial_colours_and_designs():
    specs = [sample_watch(np.random.default_rng([0, i])) for i in range(200)]
    assert len({w.dial for w in specs[:32]}) >= 8
    assert {w.dial for w in specs} == set(DIAL_COLOURS)
    assert {w.shape for w in specs} == {"round", "cushion", "tonneau", "square", "rectangular"}
    assert {w.strap for w in specs} == {"leather", "bracelet", "rubber", "nato"}
    assert {w.metal for w in specs} >= {"steel", "gold", "rose gold", "black PVD"}
    assert {w.indices for w in specs} == {"sticks", "dots", "roman", "numerals", "wedges"}
    assert {w.dial_texture for w in specs} == {"plain", "sunburst", "fume", "guilloche", "clous", "grain"}


def test_rendered_dial_colours_differ(watches64):
    # Median colour of a patch left of the centre (dial, away from the hands' hub): many distinct colours.
    patches = watches64[:, 26:38, 14:22].reshape(32, -1, 3)
    medians = np.median(patches, axis=1)
    distinct = {tuple(m // 40) for m in medians.astype(int)}
    assert len(distinct) >= 8
    assert np.ptp(luma(medians)) > 150  # black dials and white dials both occur


def test_background_corners_are_light(watches64):
    for img in watches64:
        for corner in (img[:4, :4], img[:4, -4:], img[-4:, :4], img[-4:, -4:]):
            assert luma(corner).mean() > 160  # measured >= 184


def test_strap_reaches_top_and_bottom_edges(watches64):
    # The strap runs out of frame: at the middle of the top and bottom rows the image is not background.
    for img in watches64:
        for row in (img[0], img[-1]):
            background = (row[:3].astype(float).mean(0) + row[-3:].astype(float).mean(0)) / 2
            assert np.abs(row[29:35].astype(float) - background).mean() > 8


def test_hands_move_with_the_time():
    w = sample_watch(np.random.default_rng([0, 5]))
    a = draw_watch(replace(w, hour=1.5, minute=7.0, second=40.0), 64).astype(int)
    b = draw_watch(replace(w, hour=7.2, minute=38.0, second=10.0), 64).astype(int)
    changed = np.abs(a - b).sum(-1) > 30
    assert changed[22:42, 22:42].sum() > 30       # the hands swept across the dial centre
    assert not changed[:12].any() and not changed[-12:].any()  # strap, case edge, background unchanged


def test_hands_differ_between_seeds():
    times = {(round(w.hour, 3), round(w.minute, 3)) for w in
             (sample_watch(np.random.default_rng([0, i])) for i in range(20))}
    assert len(times) == 20


def test_dataset_items_are_chw_float_in_unit_range():
    ds = WristWatches(6, size=32, seed=2)
    assert len(ds) == 6
    x = ds[0]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert x.min() >= -1 and x.max() <= 1
    assert x.min() < -0.5 and x.max() > 0.8  # uses the range: dark and light pixels
    expected = torch.from_numpy(render_watch([2, 0], 32)).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(x, expected)


def test_dataset_item_depends_only_on_seed_and_index():
    forward = WristWatches(5, size=24, seed=7)
    backward = WristWatches(5, size=24, seed=7, cache=False)
    items = [forward[i] for i in range(5)]
    for i in reversed(range(5)):
        assert torch.equal(backward[i], items[i])
    assert torch.equal(forward[-1], items[4])
    assert not torch.equal(WristWatches(5, size=24, seed=8)[0], items[0])
    assert len(forward._cache) == 5 and len(backward._cache) == 0


def test_dataset_is_the_same_in_dataloader_workers():
    ds = WristWatches(8, size=16, seed=3, cache=False)
    batches = torch.cat(list(torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)))
    assert torch.equal(batches, torch.stack([ds[i] for i in range(8)]))


def test_dataset_bad_arguments():
    with pytest.raises(IndexError, match="out of range for a WristWatches of length 3"):
        WristWatches(3, size=16)[3]
    with pytest.raises(ValueError, match="length >= 1"):
        WristWatches(0)
    with pytest.raises(ValueError, match="16 to 512"):
        WristWatches(4, size=8)


def test_grid_cli_writes_png(tmp_path, capsys):
    out = tmp_path / "grid.png"
    main(["--out", str(out), "--n", "5", "--size", "16", "--seed", "1"])
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 + 2 * 18, 2 + 3 * 18, 3)  # 3 columns x 2 rows of 16 px with 2 px gaps
    assert np.array_equal(grid[2:18, 2:18], render_watch([1, 0], 16))
    assert np.array_equal(grid, watch_grid(5, 16, 1))
    assert "saved 5 watches" in capsys.readouterr().out
