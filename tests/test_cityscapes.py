import numpy as np
import pytest
import torch

from ganlib.cityscapes import (
    CLASS_NAMES, CLASSES, IGNORE_INDEX, NUM_CLASSES, PALETTE, TRAIN_ID, colors_to_ids, ids_to_colors, one_hot,
)


def test_palette_is_the_official_one():
    assert NUM_CLASSES == 19 and len(CLASSES) == 19 and PALETTE.shape == (19, 3) and PALETTE.dtype == np.uint8
    assert [c.train_id for c in CLASSES] == list(range(19))
    assert CLASS_NAMES[:3] == ["road", "sidewalk", "building"] and CLASS_NAMES[-1] == "bicycle"
    assert tuple(PALETTE[TRAIN_ID["road"]]) == (128, 64, 128)
    assert tuple(PALETTE[TRAIN_ID["sky"]]) == (70, 130, 180)
    assert tuple(PALETTE[TRAIN_ID["car"]]) == (0, 0, 142)
    assert tuple(PALETTE[TRAIN_ID["traffic sign"]]) == (220, 220, 0)
    assert len({tuple(c) for c in PALETTE}) == 19  # all colours distinct


def test_round_trip_ids_colors_ids():
    ids = np.random.default_rng(0).integers(0, 19, (37, 53)).astype(np.uint8)
    rgb = ids_to_colors(ids)
    assert rgb.shape == (37, 53, 3) and rgb.dtype == np.uint8
    out = colors_to_ids(rgb)
    assert out.dtype == np.uint8 and out.shape == (37, 53)
    np.testing.assert_array_equal(out, ids)


def test_unknown_colours_map_to_ignore():
    rgb = np.array([[[0, 0, 0], [81, 0, 81], [129, 64, 128], [128, 64, 128]]], np.uint8)
    np.testing.assert_array_equal(colors_to_ids(rgb), [[255, 255, 255, 0]])
    np.testing.assert_array_equal(colors_to_ids(rgb, ignore_index=250), [[250, 250, 250, 0]])


def test_nearest_maps_every_colour_to_a_class():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 19, (20, 20)).astype(np.uint8)
    noisy = np.clip(ids_to_colors(ids).astype(int) + rng.integers(-6, 7, (20, 20, 3)), 0, 255).astype(np.uint8)
    assert (colors_to_ids(noisy) == 255).mean() > 0.5  # exact lookup rejects the noise...
    np.testing.assert_array_equal(colors_to_ids(noisy, nearest=True), ids)  # ...nearest recovers it
    black = np.zeros((1, 1, 3), np.uint8)
    assert colors_to_ids(black, nearest=True)[0, 0] == TRAIN_ID["truck"]  # (0, 0, 70) is closest


def test_bad_inputs_say_what_to_do():
    with pytest.raises(ValueError, match=r"HxWx3.*rgb\[\.\.\., :3\]"):
        colors_to_ids(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"uint8.*clamp\(0, 255\)"):
        colors_to_ids(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="collides with a trainId"):
        colors_to_ids(np.zeros((4, 4, 3), np.uint8), ignore_index=5)


def test_ids_to_colors_draws_ignore_black_and_takes_tensors():
    ids = torch.tensor([[0, 255], [13, 19]])
    rgb = ids_to_colors(ids)
    np.testing.assert_array_equal(rgb[0, 0], (128, 64, 128))
    np.testing.assert_array_equal(rgb[0, 1], (0, 0, 0))
    np.testing.assert_array_equal(rgb[1, 0], (0, 0, 142))
    np.testing.assert_array_equal(rgb[1, 1], (0, 0, 0))


def test_one_hot_and_ignore_pixels():
    ids = torch.tensor([[[0, 18], [IGNORE_INDEX, 5]]])
    hot = one_hot(ids)
    assert hot.shape == (1, 19, 2, 2) and hot.dtype == torch.float32
    assert hot[0, :, 1, 0].abs().sum() == 0  # ignore -> all zeros
    assert hot[0, 0, 0, 0] == 1 and hot[0, 18, 0, 1] == 1 and hot[0, 5, 1, 1] == 1
    assert hot.sum(1).tolist() == [[[1.0, 1.0], [0.0, 1.0]]]
    assert one_hot(ids[0]).shape == (19, 2, 2)
    with pytest.raises(ValueError, match="NxHxW"):
        one_hot(torch.zeros(1, 1, 2, 2, dtype=torch.long))
