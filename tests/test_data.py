"""Real-data loaders on tiny folders built here in the real Kaggle / official layouts."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib import data as D
from ganlib.errors import DataError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)
    return path


def noise(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- files


def test_find_images_filters_sorts_and_recurses(tmp_path):
    for name in ["b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.bmp", "e.jpeg"]:
        write(tmp_path / name, noise(4, 4, 0))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in D.find_images(tmp_path)]
    assert found == ["a.JPG", "b.png", "e.jpeg", "sub/c.webp", "sub/deeper/d.bmp"]
    assert [p.name for p in D.find_images(tmp_path, recursive=False)] == ["a.JPG", "b.png", "e.jpeg"]


def test_check_images_lists_unreadable(tmp_path):
    good = [write(tmp_path / f"ok{i}.png", noise(4, 4, i)) for i in range(3)]
    bad = []
    for name in ["a.jpg", "b.png", "c.jpg"]:
        (tmp_path / name).write_bytes(b"not an image")
        bad.append(tmp_path / name)
    D.check_images(good, "data/x")  # no error
    with pytest.raises(DataError) as info:
        D.check_images(good + bad, "data/x")
    assert str(info.value) == ("3 of 6 images in data/x are unreadable: a.jpg (cannot identify image file), "
                               "b.png (cannot identify image file), c.jpg (cannot identify image file). "
                               "Delete or replace them (a re-download usually fixes a cut-short copy).")
    with pytest.raises(DataError, match=r"^3 of 6 .*a.jpg \(cannot identify image file\) and 2 more\. Delete"):
        D.check_images(good + bad, "data/x", show=1)


def test_load_rgb_composites_transparency_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = (10, 20, 30, 255)   # opaque left half
    rgba[:, 2:] = (10, 20, 30, 0)     # fully transparent right half
    rgba[0, 3] = (0, 0, 0, 128)       # half-transparent black over white -> 127
    image = D.load_rgb(write(tmp_path / "bitmoji.png", rgba, "RGBA"))
    assert image.dtype == np.uint8 and image.shape == (4, 4, 3)
    assert (image[:, :2] == (10, 20, 30)).all()
    assert (image[1:, 2:] == 255).all()
    assert (image[0, 3] == 127).all()

    la = np.stack([np.full((2, 2), 50, np.uint8), np.array([[255, 0], [255, 0]], np.uint8)], -1)
    assert D.load_rgb(write(tmp_path / "la.png", la, "LA"))[:, :, 0].tolist() == [[50, 255], [50, 255]]

    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 200, 100, 0] + [0] * 762)
    palette.putdata([0, 1])
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    assert D.load_rgb(tmp_path / "p.png").tolist() == [[[255, 255, 255], [200, 100, 0]]]


def test_load_rgb_error_names_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"Cannot read image .*broken.png: .*Delete or replace this file"):
        D.load_rgb(tmp_path / "broken.png")


def test_to_tensor_exact_values():
    x = D.to_tensor(np.array([[[0, 51, 255]]], np.uint8))
    assert x.dtype == torch.float32 and x.shape == (3, 1, 1)
    assert x.flatten().tolist() == pytest.approx([-1.0, -0.6, 1.0])


# ---------------------------------------------------------------------------------------------- folders


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"^Images not found: .*missing does not exist \(or is not a folder\)\. "
                                        r"Expected layout: <root>/\*\*/\*\.jpg\|png\.$"):
        D.ImageFolder(tmp_path / "missing")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match=r"^Images: no images \(\.jpg/\.jpeg/\.png/\.bmp/\.webp\) under .*empty\."):
        D.ImageFolder(tmp_path / "empty")
    write(tmp_path / "one" / "a.png", noise(8, 8, 0))
    (tmp_path / "one" / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"^1 of 2 images in .*one are unreadable: b.jpg"):
        D.ImageFolder(tmp_path / "one")


def test_image_folder_items_and_aspect(tmp_path):
    # 20x40 (h x w) with three vertical bands; size 10 keeps the aspect: scale to 10x20, centre crop 10x10,
    # which is exactly the middle band.
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :10], image[:, 10:30], image[:, 30:] = RED, GREEN, BLUE
    write(tmp_path / "nested" / "deep" / "a.png", image)
    ds = D.ImageFolder(tmp_path, size=10)
    assert len(ds) == 1
    x = ds[0]
    assert x.shape == (3, 10, 10) and x.dtype == torch.float32
    assert torch.equal(x, D.to_tensor(np.full((10, 10, 3), GREEN, np.uint8)))
    assert D.ImageFolder(tmp_path, size=(6, 12))[0].shape == (3, 6, 12)


def test_downscaling_averages_instead_of_aliasing(tmp_path):
    # Every 4th column white: a 4x shrink with INTER_AREA gives 255/4 ~ 64 everywhere; bilinear or
    # nearest sampling would miss the white columns (0) or hit only them (255).
    stripes = np.zeros((16, 16, 3), np.uint8)
    stripes[:, 3::4] = 255
    write(tmp_path / "s.png", stripes)
    x = D.ImageFolder(tmp_path, size=4)[0]
    assert torch.allclose(x, torch.full((3, 4, 4), 64 / 127.5 - 1))


def test_celeba_layout_and_dcgan_crop(tmp_path):
    # Kaggle layout; each photo is green with a red central 140x140 square: after the 140/178 centre crop
    # and the resize to 16, nothing green is left.
    face = np.zeros((218, 178, 3), np.uint8)
    face[:] = GREEN
    face[39:179, 19:159] = RED
    root = tmp_path / "celeba-dataset"
    for i in (1, 2):
        write(root / "img_align_celeba" / "img_align_celeba" / f"{i:06d}.png", face)
    (root / "list_attr_celeba.csv").write_text("image_id\n")
    ds = D.celeba(root, size=16)
    assert [p.name for p in ds.paths] == ["000001.png", "000002.png"]
    assert torch.equal(ds[1], D.to_tensor(np.full((16, 16, 3), RED, np.uint8)))

    with pytest.raises(DataError) as info:
        D.celeba(tmp_path / "nothing")
    text = str(info.value)
    assert "CelebA images not found" in text and "img_align_celeba/img_align_celeba/000001.jpg" in text
    assert f"kaggle datasets download -d jessicali9530/celeba-dataset -p {tmp_path / 'celeba-dataset'} --unzip" in text
    (root / "img_align_celeba" / "img_align_celeba" / "000001.png").unlink()
    (root / "img_align_celeba" / "img_align_celeba" / "000002.png").unlink()
    with pytest.raises(DataError, match=r"CelebA images: no images .* -p " + str(tmp_path / "celeba-dataset") + " --unzip"):
        D.celeba(root)


def test_celeba_hq_watches_nested_and_bitmoji_white(tmp_path):
    write(tmp_path / "hq" / "celeba_hq_256" / "celeba_hq_256" / "00000.jpg", noise(16, 16, 1))
    assert D.celeba_hq(tmp_path / "hq", size=8)[0].shape == (3, 8, 8)
    write(tmp_path / "watch" / "a" / "w1.jpg", noise(16, 16, 2))
    write(tmp_path / "watch" / "b" / "w2.png", noise(16, 16, 3))
    assert len(D.wrist_watches(tmp_path / "watch", size=8)) == 2
    (tmp_path / "no_watches").mkdir()
    with pytest.raises(DataError, match=r"Wrist-watch images: no images .*minhquntntht/wrist-watch-128"):
        D.wrist_watches(tmp_path / "no_watches")

    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (200, 0, 0, 255)  # an opaque avatar in a transparent frame
    write(tmp_path / "bitmojis" / "0.png", rgba, "RGBA")
    x = D.bitmoji(tmp_path / "bitmojis", size=16)[0]
    assert (x[:, :4] == 1.0).all() and (x[:, 12:] == 1.0).all()  # transparent -> white, not black
    assert torch.equal(x[:, 8, 8], D.to_tensor(np.array([[[200, 0, 0]]], np.uint8))[:, 0, 0])


# ---------------------------------------------------------------------------------------------- reproducibility


def test_augmentation_is_a_function_of_seed_epoch_index(tmp_path):
    for i in range(4):
        write(tmp_path / f"{i}.png", noise(24, 24, i))
    ds = D.ImageFolder(tmp_path, size=16, augment=True, crop_from=20, seed=7)
    other = D.ImageFolder(tmp_path, size=16, augment=True, crop_from=20, seed=7)
    forward = [ds[i] for i in range(4)]
    backward = [other[i] for i in reversed(range(4))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward))  # order does not matter

    ds.set_epoch(3)
    epoch3 = [ds[i] for i in range(4)]
    assert not all(torch.equal(a, b) for a, b in zip(forward, epoch3))  # a new epoch, new crops/flips
    other.set_epoch(3)  # a "resumed" run jumping straight to epoch 3 sees the same batches
    assert all(torch.equal(a, other[i]) for i, a in enumerate(epoch3))
    reseeded = D.ImageFolder(tmp_path, size=16, augment=True, crop_from=20, seed=8)
    assert not all(torch.equal(a, reseeded[i]) for i, a in enumerate(forward))


def test_set_epoch_reaches_persistent_workers(tmp_path):
    for i in range(4):
        write(tmp_path / f"{i}.png", noise(24, 24, i))
    ds = D.ImageFolder(tmp_path, size=16, augment=True, crop_from=20, seed=1)
    expected = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        expected[epoch] = torch.stack([ds[i] for i in range(4)])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        (batch,) = list(loader)
        assert torch.equal(batch, expected[epoch])


def test_train_transform_rejects_crop_smaller_than_size():
    with pytest.raises(ValueError, match=r"crop_from=200 is smaller than size=256"):
        D.train_transform(256, crop_from=200)


# ---------------------------------------------------------------------------------------------- unpaired


def test_unpaired_folders(tmp_path):
    for i in range(5):
        write(tmp_path / "day" / f"{i}.png", np.full((8, 8, 3), i * 10, np.uint8))
    for i in range(2):
        write(tmp_path / "night" / f"{i}.png", np.full((8, 8, 3), 200 + i * 10, np.uint8))
    ds = D.UnpairedFolders(tmp_path / "day", tmp_path / "night", size=8, augment=True, seed=3)
    assert len(ds) == 5
    items = [ds[i] for i in range(5)]
    assert set(items[0]) == {"A", "B"}
    assert [round(float((it["A"][0, 0, 0] + 1) * 127.5)) for it in items] == [0, 10, 20, 30, 40]
    b_values = [round(float((it["B"][0, 0, 0] + 1) * 127.5)) for it in items]
    assert set(b_values) <= {200, 210}
    again = D.UnpairedFolders(tmp_path / "day", tmp_path / "night", size=8, augment=True, seed=3)
    assert [round(float((again[i]["B"][0, 0, 0] + 1) * 127.5)) for i in reversed(range(5))][::-1] == b_values
    draws = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        draws.add(tuple(round(float((ds[i]["B"][0, 0, 0] + 1) * 127.5)) for i in range(5)))
    assert len(draws) > 1  # B is re-drawn each epoch

    with pytest.raises(DataError, match=r"Domain B images not found: .*nope does not exist"):
        D.UnpairedFolders(tmp_path / "day", tmp_path / "nope")


# ---------------------------------------------------------------------------------------------- BDD100K


def make_bdd(root):
    images = root / "bdd100k" / "bdd100k" / "images" / "100k" / "train"
    for name in ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "f.jpg"]:
        write(images / name, noise(8, 16, 0))
    labels = root / "bdd100k_labels_release" / "bdd100k" / "labels"
    labels.mkdir(parents=True)
    records = [
        {"name": "a.jpg", "attributes": {"weather": "clear", "scene": "city street", "timeofday": "daytime"},
         "labels": [{"category": "car", "attributes": {"occluded": False}}]},
        {"name": "b.jpg", "attributes": {"timeofday": "night"}},
        {"name": "c.jpg", "attributes": {"timeofday": "dawn/dusk"}},
        {"name": "d.jpg", "attributes": {"timeofday": "undefined"}},
        {"name": "e.jpg", "attributes": {"timeofday": "night"}},  # labelled but not on disk
        {"name": "f.jpg", "attributes": {"timeofday": "daytime"}},
    ]
    (labels / "bdd100k_labels_images_train.json").write_text(json.dumps(records))
    return images


def test_bdd100k_day_night_split(tmp_path):
    images = make_bdd(tmp_path)
    day, night = D.bdd100k_day_night(tmp_path)
    assert day == [images / "a.jpg", images / "f.jpg"]
    assert night == [images / "b.jpg"]
    ds = D.UnpairedFolders(night, day, size=8, augment=False)  # the CycleGAN night->day pairing
    assert len(ds) == 2 and ds[0]["A"].shape == (3, 8, 8)


def test_bdd100k_labels_are_read_in_the_released_format_and_in_any_key_order(tmp_path):
    images = make_bdd(tmp_path)
    path = next(tmp_path.rglob("bdd100k_labels_images_train.json"))
    records = json.loads(path.read_text())
    path.write_text(json.dumps(records, indent=4))  # the released files are indented
    assert D.bdd100k_day_night(tmp_path) == ([images / "a.jpg", images / "f.jpg"], [images / "b.jpg"])
    # another writer's key order ("attributes" before "name"): the text scan finds nothing, JSON parsing takes over
    path.write_text(json.dumps([{"attributes": r["attributes"], "name": r["name"]} for r in records]))
    assert D.bdd100k_day_night(tmp_path) == ([images / "a.jpg", images / "f.jpg"], [images / "b.jpg"])


def test_bdd100k_errors(tmp_path):
    with pytest.raises(DataError, match=r"BDD100K not found: .*does not exist.*solesensei/solesensei_bdd100k"):
        D.bdd100k_day_night(tmp_path / "missing")
    make_bdd(tmp_path)
    (tmp_path / "bdd100k_labels_release" / "bdd100k" / "labels" / "bdd100k_labels_images_train.json").unlink()
    with pytest.raises(DataError, match=r"BDD100K labels missing: no bdd100k_labels_images_train.json under "):
        D.bdd100k_day_night(tmp_path)
    with pytest.raises(DataError, match=r"BDD100K labels missing: no bdd100k_labels_images_val.json"):
        D.bdd100k_day_night(tmp_path, split="val")
    other = tmp_path / "only_json"
    (other / "labels").mkdir(parents=True)
    (other / "labels" / "bdd100k_labels_images_train.json").write_text("[]")
    with pytest.raises(DataError, match=r"BDD100K images missing: no images/100k/train/ folder under .*only_json\. "
                                        r"Expected layout: "):
        D.bdd100k_day_night(other)


# ---------------------------------------------------------------------------------------------- Cityscapes


def cityscapes_label(h, w):
    """Four vertical bands: road, car, sky, and void black (not a trainId -> 255). Not mirror-symmetric."""
    from ganlib.cityscapes import PALETTE, TRAIN_ID

    label = np.zeros((h, w, 3), np.uint8)
    q = w // 4
    label[:, :q] = PALETTE[TRAIN_ID["road"]]
    label[:, q:2 * q] = PALETTE[TRAIN_ID["car"]]
    label[:, 2 * q:3 * q] = PALETTE[TRAIN_ID["sky"]]
    return label


def test_cityscapes_kaggle_layout_pairs_stay_aligned(tmp_path):
    from ganlib.cityscapes import TRAIN_ID

    root = tmp_path / "cityscape-dataset"
    label = cityscapes_label(32, 64)
    for key in ["aachen_000000_000019", "bochum_000000_000313"]:
        write(root / "train" / "input" / f"{key}_gtFine_color.png", label)   # "input" holds the label maps
        write(root / "train" / "label" / f"{key}_leftImg8bit.png", label)    # "label" holds the photos
    ds = D.CityscapesPairs(root, size=(16, 32), augment=True, crop_from=(32, 64), seed=0)
    assert ds.keys == ["aachen_000000_000019", "bochum_000000_000313"]
    flips = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["label"].shape == item["photo"].shape == (3, 16, 32)
            assert item["ids"].shape == (16, 32) and item["ids"].dtype == torch.int64
            assert torch.equal(item["label"], item["photo"])  # same crop and flip on both
            ids = item["ids"]
            flips.add(int(ids[0, 0]) in (255, TRAIN_ID["sky"]))  # a flipped crop starts on the right bands
            expected = torch.from_numpy(np.array(
                [{(128, 64, 128): 0, (0, 0, 142): 13, (70, 130, 180): 10}.get(tuple(c), 255)
                 for c in ((item["label"].permute(1, 2, 0) + 1) * 127.5).round().reshape(-1, 3).int().tolist()]
            )).reshape(16, 32)
            assert torch.equal(ids, expected)
    assert flips == {True, False}  # both flipped and unflipped crops happened


def test_cityscapes_label_nearest_photo_area(tmp_path):
    # A 1-pixel checkerboard of two palette colours halved in size: NEAREST keeps only those two colours
    # in the label map; area averaging mixes them in the photo.
    from ganlib.cityscapes import PALETTE, TRAIN_ID

    road, car = PALETTE[TRAIN_ID["road"]], PALETTE[TRAIN_ID["car"]]
    board = np.where((np.indices((16, 32)).sum(0) % 2 == 0)[..., None], road, car).astype(np.uint8)
    root = tmp_path / "cs"
    write(root / "val" / "input" / "x_gtFine_color.png", board)
    write(root / "val" / "label" / "x_leftImg8bit.png", board)
    item = D.CityscapesPairs(root, size=(8, 16), split="val")[0]
    label_colors = {tuple(c) for c in ((item["label"].permute(1, 2, 0) + 1) * 127.5).round().reshape(-1, 3).int().tolist()}
    assert label_colors <= {tuple(road.tolist()), tuple(car.tolist())}
    assert set(item["ids"].unique().tolist()) <= {TRAIN_ID["road"], TRAIN_ID["car"]}
    mixed = ((road.astype(int) + car.astype(int)) / 2 / 127.5 - 1).tolist()
    assert torch.allclose(item["photo"][:, 3, 3], torch.tensor(mixed, dtype=torch.float32), atol=1 / 127.5)


def test_cityscapes_official_tree(tmp_path):
    label = cityscapes_label(16, 32)
    for city, key in [("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")]:
        gt = tmp_path / "gtFine" / "train" / city
        write(gt / f"{key}_gtFine_color.png", label)
        write(gt / f"{key}_gtFine_labelIds.png", label[..., 0])  # other gtFine files are ignored
        (gt / f"{key}_gtFine_polygons.json").write_text("{}")
        write(tmp_path / "leftImg8bit" / "train" / city / f"{key}_leftImg8bit.png", label)
    ds = D.CityscapesPairs(tmp_path, size=(16, 32))
    assert len(ds) == 2 and ds.keys[1] == "bremen_000001_000019"
    item = ds[1]
    assert torch.equal(item["label"], item["photo"])
    assert item["ids"][0].tolist() == [0] * 8 + [13] * 8 + [10] * 8 + [255] * 8


def test_cityscapes_errors(tmp_path):
    with pytest.raises(DataError, match=r"Cityscapes not found: .*nope does not exist\. Expected layout: either the "
                                        r"Kaggle copy .*electraawais/cityscape-dataset"):
        D.CityscapesPairs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"Cityscapes split 'train' not found under .*empty\. Expected layout"):
        D.CityscapesPairs(tmp_path / "empty")
    root = tmp_path / "cs"
    label = cityscapes_label(8, 16)
    write(root / "train" / "input" / "aachen_000000_gtFine_color.png", label)
    write(root / "train" / "label" / "aachen_000000_leftImg8bit.png", label)
    write(root / "train" / "input" / "aachen_000001_gtFine_color.png", label)
    with pytest.raises(DataError) as info:
        D.CityscapesPairs(root)
    text = str(info.value)
    assert text.startswith(f"Cityscapes: 1 of 2 files are unpaired: aachen_000001_gtFine_color.png has no "
                           f"aachen_000001_leftImg8bit.png in {root / 'train' / 'label'}.")
    (root / "train" / "input" / "aachen_000001_gtFine_color.png").unlink()
    write(root / "train" / "label" / "zurich_000002_leftImg8bit.png", label)
    with pytest.raises(DataError, match=r"zurich_000002_leftImg8bit.png has no zurich_000002_gtFine_color.png in .*input"):
        D.CityscapesPairs(root)
