"""Embedded digits: the SVHN-like printed source domain and the MNIST-like handwritten target domain."""
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestCentroid
from torch.utils.data import DataLoader

from ganlib.embedded import digits
from ganlib.embedded.digits import (
    HandwrittenDigits,
    PrintedDigits,
    font_paths,
    render_plain_digit,
    render_printed_digit,
)


@pytest.fixture(scope="module")
def printed_train():
    """500 printed digits of the training seed, rendered once for the tests below."""
    dataset = PrintedDigits(500, seed=0)
    return [dataset[i] for i in range(len(dataset))]


# ----------------------------------------------------------------------------------------------- fonts


def test_font_paths_keeps_digit_fonts_and_drops_symbol_and_box_fonts():
    names = {p.name for p in font_paths()}
    assert len(names) >= 10
    assert all(p.is_file() for p in font_paths())
    assert {"DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "cmr10.ttf", "STIXGeneral.ttf"} <= names
    # symbol fonts map '0'-'9' to other shapes; LastResort draws one box for all; the others lack digits
    rejected = {"cmex10.ttf", "cmsy10.ttf", "LastResortHE-Regular.ttf", "DejaVuSansDisplay.ttf"}
    rejected |= {"STIXNonUni.ttf"}
    assert not names & rejected
    assert not any(n.startswith("STIXSiz") for n in names)


# ------------------------------------------------------------------------------------- printed digits


def test_render_printed_digit_shape_dtype_and_determinism():
    image, label = render_printed_digit(7)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert isinstance(label, int) and 0 <= label <= 9
    again, label_again = render_printed_digit(7)
    np.testing.assert_array_equal(image, again)
    assert label == label_again
    assert not np.array_equal(image, render_printed_digit(8)[0])
    big, _ = render_printed_digit(7, size=48)
    assert big.shape == (48, 48, 3)


def test_printed_item_is_render_of_seed_and_index_in_any_order():
    dataset = PrintedDigits(20, seed=3, cache=False)
    forward = [dataset[i] for i in range(20)]
    backward = [dataset[i] for i in reversed(range(20))][::-1]
    for (x, y), (x2, y2) in zip(forward, backward):
        assert torch.equal(x, x2) and y == y2
    image, label = render_printed_digit((3, 11))
    expected = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(forward[11][0], expected) and forward[11][1] == label
    assert torch.equal(dataset[-1][0], forward[19][0])


def test_printed_tensors_are_3_channel_float_in_range(printed_train):
    x, y = printed_train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    stacked = torch.stack([x for x, _ in printed_train[:50]])
    assert stacked.min() >= -1 and stacked.max() <= 1
    assert stacked.min() < -0.5 and stacked.max() > 0.5  # uses the range, not a constant


def test_printed_cache_returns_the_same_item():
    dataset = PrintedDigits(5, seed=0, cache=True)
    first = dataset[2]
    assert 2 in dataset._cache
    assert torch.equal(dataset[2][0], first[0])
    assert torch.equal(PrintedDigits(5, seed=0, cache=False)[2][0], first[0])


def test_printed_seeds_give_disjoint_sets():
    train = PrintedDigits(150, seed=0, cache=False)
    test = PrintedDigits(150, seed=1, cache=False)
    train_bytes = {train[i][0].numpy().tobytes() for i in range(len(train))}
    test_bytes = {test[i][0].numpy().tobytes() for i in range(len(test))}
    assert len(train_bytes) == 150 and len(test_bytes) == 150
    assert not train_bytes & test_bytes


def test_printed_labels_cover_0_to_9_and_are_balanced():
    dataset = PrintedDigits(1000, seed=5, cache=False)
    labels = [dataset[i][1] for i in range(len(dataset))]
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 1000 and len(counts) == 10
    assert counts.min() >= 60 and counts.max() <= 140  # expected 100 each, sd about 9.5


def test_plain_rendering_has_same_label_and_ink_in_the_centre():
    centre_fractions = []
    for seed in range(40):
        plain, label = render_plain_digit(seed)
        assert label == render_printed_digit(seed)[1]  # same draws: the clutter comes on top
        grey = plain.astype(np.float32).mean(2)
        ink = np.abs(grey - grey[0, 0])  # flat background: ink is whatever differs from the corner
        assert ink.sum() > 0
        ys, xs = np.mgrid[:32, :32]
        cy, cx = (ink * ys).sum() / ink.sum(), (ink * xs).sum() / ink.sum()
        assert abs(cy - 15.5) < 5 and abs(cx - 15.5) < 5
        centre_fractions.append(ink[6:26, 6:26].sum() / ink.sum())
    assert np.mean(centre_fractions) > 0.9


def test_plain_rendering_shows_the_label_digit():
    # Template match each uncluttered crop against DejaVu Sans/Serif glyphs of 0-9: a label that does not
    # match the drawn digit (an off-by-one, a wrong glyph) makes this fail, however learnable the labels are.
    font_dir = font_paths()[0].parent
    templates = [digits._digit_patches(font_dir / name) for name in ("DejaVuSans.ttf", "DejaVuSerif.ttf")]
    correct = 0
    for seed in range(100):
        plain, label = render_plain_digit(seed)
        grey = plain.astype(np.float32).mean(2)
        ink = np.abs(grey - grey[0, 0])
        ink = np.where(ink > 0.5 * ink.max(), ink / ink.max(), 0)  # drop blur halos from the ink box
        patch = digits._normalised_patch(Image.fromarray((255 * ink).astype(np.uint8)))
        similarity = np.max([t @ patch for t in templates], axis=0)
        correct += int(similarity.argmax() == label)
    print(f"template match on plain crops: {correct}/100 (about 88 when written; chance 10)")
    assert correct >= 70


def test_printed_digits_have_both_contrast_polarities(printed_train):
    # light-on-dark: centre brighter than the border; dark-on-light: the reverse
    light_on_dark = 0
    for x, _ in printed_train[:200]:
        grey = x.mean(0)
        border = torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]]).median()
        ink = grey[8:24, 8:24]
        light_on_dark += int((ink - border).abs().max() == (ink - border).max())
    assert 40 < light_on_dark < 160


def _ink_features(items):
    """Grey, polarity-free (|pixel - border|), 16x16, unit norm: what a nearest centroid can use."""
    features, labels = [], []
    for x, y in items:
        grey = x.mean(0)
        border = torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]]).median()
        ink = torch.nn.functional.avg_pool2d((grey - border).abs()[None, None], 2).flatten()
        features.append((ink / (ink.norm() + 1e-6)).numpy())
        labels.append(y)
    return np.stack(features), np.array(labels)


def test_printed_labels_are_learnable(printed_train):
    test = PrintedDigits(200, seed=1, cache=False)
    X_train, y_train = _ink_features(printed_train)
    X_test, y_test = _ink_features(test[i] for i in range(len(test)))
    accuracy = (NearestCentroid().fit(X_train, y_train).predict(X_test) == y_test).mean()
    print(f"nearest centroid on 500 printed digits: {accuracy:.2f} on 200 others (chance 0.10)")
    assert accuracy > 0.35


def test_printed_items_identical_in_dataloader_workers():
    dataset = PrintedDigits(16, seed=2, cache=False)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, shuffle=False)
    batches = torch.cat([x for x, _ in loader])
    labels = torch.cat([y for _, y in loader])
    direct = torch.stack([dataset[i][0] for i in range(16)])
    assert torch.equal(batches, direct)
    assert labels.tolist() == [dataset[i][1] for i in range(16)]


def test_printed_bad_arguments_say_what_to_pass():
    with pytest.raises(ValueError, match="positive number of items"):
        PrintedDigits(0)
    with pytest.raises(ValueError, match="int >= 16"):
        PrintedDigits(10, size=8)
    with pytest.raises(IndexError, match="out of range"):
        PrintedDigits(3)[3]


# ---------------------------------------------------------------------------------- handwritten digits


def test_handwritten_split_sizes_disjoint_and_stratified():
    train, test = HandwrittenDigits("train"), HandwrittenDigits("test")
    assert len(train) == 1437 and len(test) == 360
    assert not set(train.indices) & set(test.indices)
    assert sorted(set(train.indices) | set(test.indices)) == list(range(1797))
    # stratified: each digit has 20% (+-1) of its examples in test
    target = load_digits().target
    np.testing.assert_array_equal(train.labels, target[train.indices])
    for digit in range(10):
        total = (target == digit).sum()
        assert abs((test.labels == digit).sum() - 0.2 * total) <= 1
    # the split does not move with the augmentation seed
    np.testing.assert_array_equal(HandwrittenDigits("test", seed=9).indices, test.indices)


def test_handwritten_shapes_channels_and_range():
    grey = HandwrittenDigits("test", channels=1)
    rgb = HandwrittenDigits("test", channels=3)
    x1, y1 = grey[10]
    x3, y3 = rgb[10]
    assert x1.shape == (1, 32, 32) and x3.shape == (3, 32, 32)
    assert x1.dtype == torch.float32 and y1 == y3 and isinstance(y1, int)
    assert torch.equal(x3, x1.expand(3, -1, -1))
    assert x1.min() == -1 and x1.max() == 1  # black paper, saturated white strokes
    assert (x1[0, :2] == -1).all() and (x1[0, :, :2] == -1).all()  # empty border, like MNIST
    assert HandwrittenDigits("train", size=64, channels=1)[0][0].shape == (1, 64, 64)


def test_handwritten_placement_matches_bicubic_by_hand():
    # An all-ink 8x8 digit fills a 24x24 box (fraction 0.75) centred in the 32x32 frame.
    # Output pixel 4: x_out = (2*4 + 1)/32 - 1 = -0.71875; x_in = x_out / 0.75 = -0.958333,
    # i.e. input pixel -1/3 (align_corners=False). Bicubic (A = -0.75) taps at input pixels 0 and 1 lie
    # at distances 1/3 and 4/3: W(1/3) = 1.25/27 - 2.25/9 + 1 = 0.796296, W(4/3) = -0.111111; the zero
    # padding taps contribute nothing, so the value is 0.685185, stretched: (0.685185 - 0.15)/0.6 = 0.891975.
    frame = digits._place(torch.ones(1, 1, 8, 8), 32)[0, 0]
    assert frame[16, 4].item() == pytest.approx(0.891975, abs=1e-5)
    assert frame[4, 16].item() == pytest.approx(0.891975, abs=1e-5)
    assert (frame[5:27, 5:27] == 1).all()
    assert (frame[:3] == 0).all() and (frame[:, 29:] == 0).all()
    torch.testing.assert_close(frame, frame.flip(0).flip(1))  # centred


def test_handwritten_augmentation_is_deterministic_small_and_seeded():
    plain = HandwrittenDigits("train", channels=1)
    aug = HandwrittenDigits("train", channels=1, augment=True, seed=0)
    items = [aug[i][0] for i in (3, 7, 3)]
    assert torch.equal(items[0], items[2])
    assert torch.equal(HandwrittenDigits("train", channels=1, augment=True, seed=0)[7][0], items[1])
    other_seed = HandwrittenDigits("train", channels=1, augment=True, seed=1)[3][0]
    assert not torch.equal(other_seed, items[0])
    assert not torch.equal(items[0], plain[3][0])
    # small: the augmented digit still overlaps the plain one strongly
    a, b = (items[0].flatten() + 1), (plain[3][0].flatten() + 1)
    assert torch.dot(a, b) / (a.norm() * b.norm()) > 0.6
    assert aug[3][1] == plain[3][1]


def test_handwritten_bad_arguments_say_what_to_pass():
    with pytest.raises(ValueError, match="'train' and a 'test'"):
        HandwrittenDigits("val")
    with pytest.raises(ValueError, match="use 1 .* or 3"):
        HandwrittenDigits(channels=2)
    with pytest.raises(IndexError, match="360 test"):
        HandwrittenDigits("test")[360]


# ---------------------------------------------------------------------------------------------- preview


def test_preview_cli_writes_grid(tmp_path):
    out = tmp_path / "grid.png"
    digits.main(["--out", str(out), "--rows", "1", "--cols", "3", "--zoom", "2"])
    image = np.asarray(Image.open(out))
    # 2 domains x 1 row of (32 + 2 px), top pad 2, gap 6; 3 columns of (32 + 2), pad 2; then x2
    assert image.shape == ((2 * 34 + 2 + 6) * 2, (3 * 34 + 2) * 2, 3)
    bottom_tile = image[(34 + 6 + 2) * 2 : (34 + 6 + 2 + 32) * 2, 4:68]
    assert bottom_tile.min() == 0 and bottom_tile.max() == 255  # target tile: black paper, white ink
