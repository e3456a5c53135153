import numpy as np
import pytest
import torch
from PIL import Image

from ganlib.cityscapes import CLASS_NAMES, PALETTE, TRAIN_ID, colors_to_ids
from ganlib.embedded.streets import BUILDING, BUS, CAR, TRUCK, StreetScene, StreetScenes, main, render_street
from ganlib.errors import GanlibError

REQUIRED = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
            "vegetation", "terrain", "sky", "person", "car", "truck", "bus"]


def luma(image):
    return float((image.astype(np.float64) @ [0.299, 0.587, 0.114]).mean())


def test_same_seed_same_scene_different_index_different_scene():
    a, b = render_street([0, 3], 64), render_street([0, 3], 64)
    for name in ("label", "ids", "day", "night"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = render_street([0, 4], 64)
    assert (a.ids != c.ids).mean() > 0.05 and np.abs(a.day.astype(int) - c.day).mean() > 5
    d = render_street([1, 3], 64)
    assert (a.ids != d.ids).mean() > 0.05


def test_shapes_dtypes_and_any_resolution():
    for h, w in [(64, 64), (96, 160), (256, 512)]:
        s = render_street(5, h, w)
        assert isinstance(s, StreetScene)
        assert s.label.shape == s.day.shape == s.night.shape == (h, w, 3)
        assert s.ids.shape == (h, w)
        assert s.label.dtype == s.ids.dtype == s.day.dtype == s.night.dtype == np.uint8
    assert render_street(5, 80).ids.shape == (80, 80)  # width defaults to height


def test_geometry_scales_with_size():
    # One seed at two sizes is the same scene; a wider image adds street at the sides only.
    big, small = render_street([0, 7], 128).ids, render_street([0, 7], 64).ids
    assert (big[1::2, 1::2] == small).mean() > 0.9
    wide = render_street([0, 7], 128, 256).ids
    assert (wide[:, 64:192] == big).mean() > 0.98


def test_label_colours_are_palette_colours_and_match_ids():
    for i in range(5):
        s = render_street([0, i], 96)
        np.testing.assert_array_equal(s.label, PALETTE[s.ids])
        np.testing.assert_array_equal(colors_to_ids(s.label), s.ids)
        assert s.ids.max() < 19


def test_every_required_class_appears_across_50_scenes():
    seen = np.zeros(19, bool)
    for i in range(50):
        seen |= np.bincount(render_street([0, i], 64).ids.ravel(), minlength=19)[:19] > 0
    missing = [name for name in REQUIRED if not seen[TRAIN_ID[name]]]
    assert missing == [], f"classes never drawn: {missing}"
    assert set(REQUIRED) <= {CLASS_NAMES[k] for k in np.flatnonzero(seen)}


def test_night_is_dark_but_not_black():
    for i in range(20):
        s = render_street([0, i], 64)
        assert luma(s.night) < 0.5 * luma(s.day), f"scene {i}"
        assert luma(s.night) > 8  # structure stays visible
        assert s.night.std() > 10


def test_headlights_tail_lights_and_lit_windows_at_night():
    headlights = tail_lights = windows = 0
    for i in range(12):
        s = render_street([0, i], 128)
        night = s.night.astype(int)
        vehicle = np.isin(s.ids, [CAR, TRUCK, BUS])
        building = s.ids == BUILDING
        headlights += ((night.min(-1) > 200) & vehicle).any()
        tail_lights += ((night[..., 0] > 150) & (night[..., 1] < 100) & (night[..., 2] < 100) & vehicle).any()
        warm = (night[..., 0] > 150) & (night[..., 0] > night[..., 2] + 50) & building
        windows += warm.any()
        assert warm.sum() < 0.5 * building.sum()  # some windows lit, not the whole facade
    assert headlights >= 6 and tail_lights >= 6 and windows >= 10, (headlights, tail_lights, windows)


def test_dataset_items_ranges_and_order_independence():
    ds = StreetScenes(6, height=64, width=96, seed=0, cache=False)
    assert len(ds) == 6
    item = ds[2]
    assert set(item) == {"label", "ids", "day", "night"}
    for name in ("label", "day", "night"):
        x = item[name]
        assert x.shape == (3, 64, 96) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
    assert item["ids"].shape == (64, 96) and item["ids"].dtype == torch.long
    scene = render_street([0, 2], 64, 96)
    np.testing.assert_array_equal(item["ids"].numpy(), scene.ids)
    assert torch.equal(item["day"], torch.from_numpy(scene.day).permute(2, 0, 1).float() / 127.5 - 1)
    # Order does not matter: item 2 asked for after others, in a fresh dataset, is identical.
    other = StreetScenes(6, height=64, width=96, seed=0, cache=False)
    _ = other[5], other[0]
    assert torch.equal(other[2]["night"], item["night"])
    assert not torch.equal(ds[3]["day"], item["day"])
    assert torch.equal(ds[-4]["ids"], item["ids"])
    with pytest.raises(IndexError, match="out of range"):
        ds[6]


def test_seeds_give_different_sets_and_cache_memoizes():
    train, test = StreetScenes(4, 64, seed=0), StreetScenes(4, 64, seed=1)
    assert all(not torch.equal(train[i]["ids"], test[i]["ids"]) for i in range(4))
    assert train[1] is train[1]  # cached
    assert StreetScenes(4, 64, cache=False)[1] is not StreetScenes(4, 64, cache=False)[1]


def test_bad_sizes_say_what_to_do():
    with pytest.raises(GanlibError, match="at least 16x16.*larger height"):
        render_street(0, 8)
    with pytest.raises(GanlibError, match="length >= 1"):
        StreetScenes(0)


def test_cli_writes_a_grid(tmp_path):
    out = tmp_path / "grid.png"
    main(["--out", str(out), "--n", "2", "--size", "48"])
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * 48 + 2, 3 * 48 + 4, 3)
    np.testing.assert_array_equal(grid[:48, :48], render_street([0, 0], 48).label)


def test_same_items_from_dataloader_workers():
    ds = StreetScenes(4, 32, seed=3, cache=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    for i in range(4):
        assert torch.equal(batches[i // 2]["night"][i % 2], ds[i]["night"])
