"""Embedded digits for the Domain Transfer Network (Taigman et al. 2017): SVHN -> MNIST, made offline.

Source domain, `PrintedDigits` (SVHN-like, labelled): a printed digit 0-9 in the centre of a small colour
crop, drawn with one of the TrueType fonts matplotlib ships, at a random size, slight rotation and offset,
on a gradient + texture + noise background, with parts of neighbouring digits visible at the left and right
edges (SVHN crops come from house-number strips), light-on-dark or dark-on-light, sometimes blurred.

Target domain, `HandwrittenDigits` (MNIST-like): scikit-learn's 1797 real handwritten 8x8 digits (shipped
inside the package), upscaled bicubically into a 32x32 (any size) frame as white strokes on black, with a
fixed stratified 80/20 train/test split and optional small shift/scale/rotation per (seed, index).

Both return CHW float32 tensors in [-1, 1] and an int label. Everything is deterministic: item i of a dataset
with seed s is the same image whatever order items are asked for, in any DataLoader worker.

    python -m ganlib.embedded.digits --out /tmp/digits_grid.png    # source rows on top, target rows below
    python -m ganlib.embedded.digits --bench 2000                  # printed digits per second, one core
"""
from __future__ import annotations

import argparse
import math
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from torch.utils.data import Dataset

from ganlib.errors import DataError

# ---------------------------------------------------------------------------------------------------------
# Fonts
# ---------------------------------------------------------------------------------------------------------

DIGITS = "0123456789"
# Glyph-check settings: fonts are measured at this pixel size and compared on a small normalised patch.
_CHECK_PX = 48
_PATCH = 20
# A font must have 10 distinct inked digit glyphs and at least this many of them must be recognised by
# their nearest DejaVu Sans / DejaVu Serif glyph. This rejects symbol fonts that map '0'-'9' to other
# shapes (cmex10, cmsy10), fonts without digits (STIXSize*, STIXNonUni*, *Display) and the LastResort font,
# which draws the same box for every character.
_MIN_RECOGNISED = 7


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _ink_patch(font: ImageFont.FreeTypeFont, char: str) -> np.ndarray | None:
    """The glyph's ink as a normalised patch (see _normalised_patch); None if the glyph has no ink."""
    canvas = Image.new("L", (4 * _CHECK_PX, 4 * _CHECK_PX))
    ImageDraw.Draw(canvas).text((_CHECK_PX, _CHECK_PX), char, font=font, fill=255)
    return _normalised_patch(canvas)


def _normalised_patch(canvas: Image.Image) -> np.ndarray | None:
    """Ink (mode L, 0 = none) cropped, fitted into a _PATCH square keeping its aspect, blurred, unit norm."""
    box = canvas.getbbox()
    if box is None:
        return None
    ink = canvas.crop(box)
    scale = _PATCH / max(ink.size)
    ink = ink.resize((max(1, round(ink.width * scale)), max(1, round(ink.height * scale))), Image.BILINEAR)
    patch = Image.new("L", (_PATCH + 4, _PATCH + 4))
    patch.paste(ink, ((patch.width - ink.width) // 2, (patch.height - ink.height) // 2))
    a = np.asarray(patch.filter(ImageFilter.GaussianBlur(1.5)), np.float32).ravel()
    a = a - a.mean()
    return a / (np.linalg.norm(a) + 1e-6)


def _digit_patches(path: Path) -> np.ndarray | None:
    """10 x D patches of the font's digits, or None where a digit has no ink or is not distinct."""
    try:
        font = ImageFont.truetype(str(path), _CHECK_PX)
    except OSError:
        return None
    patches = [_ink_patch(font, d) for d in DIGITS]
    if any(p is None for p in patches) or len({p.tobytes() for p in patches}) < 10:
        return None
    return np.stack(patches)


@lru_cache(maxsize=None)
def _usable_fonts(font_dir: str) -> tuple[Path, ...]:
    paths = sorted(Path(font_dir).glob("*.ttf"))
    references = [_digit_patches(Path(font_dir) / name) for name in ("DejaVuSans.ttf", "DejaVuSerif.ttf")]
    references = [r for r in references if r is not None]
    usable = []
    for path in paths:
        patches = _digit_patches(path)
        if patches is None:
            continue
        if references:
            # cosine similarity of each digit to each reference digit, best over the reference fonts
            similarity = np.max([patches @ r.T for r in references], axis=0)
            if (similarity.argmax(1) == np.arange(10)).sum() < _MIN_RECOGNISED:
                continue
        usable.append(path)
    return tuple(usable)


def font_paths() -> list[Path]:
    """The TrueType fonts shipped with matplotlib that draw all ten digits as real digits (sorted by name)."""
    font_dir = _font_dir()
    fonts = list(_usable_fonts(str(font_dir)))
    if not fonts:
        raise DataError(
            f"No usable digit fonts found in {font_dir}. PrintedDigits draws digits with the TrueType fonts "
            "matplotlib ships; reinstall matplotlib (pip install --force-reinstall matplotlib)."
        )
    return fonts


@lru_cache(maxsize=1)
def _font_files() -> tuple[str, ...]:
    return tuple(str(p) for p in font_paths())  # str keys: hashing a Path in the caches below is slow


@lru_cache(maxsize=None)
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px)


@lru_cache(maxsize=None)
def _glyph(path: str, px: int, digit: int) -> np.ndarray:
    """The digit's ink coverage 0-255, cropped to its ink box (uint8 h x w)."""
    font = _font(path, px)
    canvas = Image.new("L", (3 * px, 3 * px))
    ImageDraw.Draw(canvas).text((px, px), DIGITS[digit], font=font, fill=255)
    return np.asarray(canvas.crop(canvas.getbbox()))


# ---------------------------------------------------------------------------------------------------------
# Source domain: printed digits
# ---------------------------------------------------------------------------------------------------------

def _colour(rng: np.random.Generator, luma: float) -> np.ndarray:
    """A random colour whose luma is about `luma` (in [0, 1]); mostly muted, like paint on house plates."""
    r, g, b = rng.standard_normal(3)
    y = 0.299 * r + 0.587 * g + 0.114 * b  # ITU-R 601 luma; removing it leaves a hue-only tint
    r, g, b = r - y, g - y, b - y
    scale = 0.4 * rng.random() ** 2 / (math.sqrt(r * r + g * g + b * b) + 1e-6)  # saturation, mostly low
    return np.array([min(max(luma + scale * c, 0.0), 1.0) for c in (r, g, b)], np.float32)


def _paste(canvas: np.ndarray, glyph: np.ndarray, top: int, left: int) -> None:
    """canvas = max(canvas, glyph placed at (top, left)), clipped to the canvas."""
    h, w = glyph.shape
    H, W = canvas.shape
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + h, H), min(left + w, W)
    if t0 < t1 and l0 < l1:
        region = canvas[t0:t1, l0:l1]
        np.maximum(region, glyph[t0 - top : t1 - top, l0 - left : l1 - left], out=region)


def _text_mask(rng: np.random.Generator, size: int, label: int, clutter: bool) -> np.ndarray:
    """Ink coverage in [0, 1] (size x size float32) of the centred digit and, with clutter, its neighbours."""
    fonts = _font_files()
    font = fonts[rng.integers(len(fonts))]
    # font size in px: ink height of most digits is about 0.7 of it, so digits fill ~45-75% of the crop
    px = max(6, round(size * rng.uniform(0.62, 1.05)))
    centre = _glyph(font, px, label)
    h, w = centre.shape
    cy = size / 2 + rng.uniform(-0.07, 0.07) * size
    cx = size / 2 + rng.uniform(-0.07, 0.07) * size
    top, left = round(cy - h / 2), round(cx - w / 2)
    mask = np.zeros((size, size), np.uint8)
    _paste(mask, centre, top, left)
    if clutter:
        # house numbers: the neighbours share font, size and baseline; the gap varies with the kerning
        bottom = top + h
        for side in (-1, 1):
            if rng.random() < 0.75:
                neighbour = _glyph(font, px, int(rng.integers(10)))
                nh, nw = neighbour.shape
                gap = round(px * rng.uniform(0.04, 0.2))
                n_left = left - gap - nw if side < 0 else left + w + gap
                _paste(mask, neighbour, bottom - nh, n_left)
    angle = rng.uniform(-12, 12)
    if abs(angle) > 1:
        mask = np.asarray(Image.fromarray(mask).rotate(angle, resample=Image.BILINEAR, center=(cx, cy)))
    if rng.random() < 0.3:  # out of focus or motion: blur the strokes (noise comes later, unblurred)
        radius = rng.uniform(0.4, 1.1) * size / 32
        mask = np.asarray(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(radius)))
    return mask.astype(np.float32) * (1 / 255)


@lru_cache(maxsize=None)
def _coords(size: int) -> np.ndarray:
    """Pixel centres in [-0.5, 0.5]."""
    return (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5


@lru_cache(maxsize=None)
def _upsample_matrix(n: int, size: int) -> np.ndarray:
    """size x n matrix U: U @ field @ U.T resamples an n x n field to size x size (bicubic, via PIL)."""
    # resampling is separable and linear: column j of U is the unit vector e_j resampled to `size`
    return np.asarray(Image.fromarray(np.eye(n, dtype=np.float32)).resize((n, size), Image.BICUBIC))


def _background(rng: np.random.Generator, size: int, luma: float) -> np.ndarray:
    """size x size x 3 float background: two-colour linear gradient, low-frequency shading, maybe an edge."""
    c0, c1 = _colour(rng, luma), _colour(rng, np.clip(luma + rng.uniform(-0.15, 0.15), 0, 1))
    theta = rng.uniform(0, 2 * math.pi)
    coords = _coords(size)
    # t in [0, 1] along direction theta: the gradient colour is c0 + t (c1 - c0)
    t = np.clip(coords[None, :] * math.cos(theta) + coords[:, None] * math.sin(theta) + 0.5, 0, 1)
    bg = c0 + t[..., None] * (c1 - c0)
    # low-frequency texture (stains, lighting): a 4x4 random field, bicubic-upsampled
    field = rng.standard_normal((4, 4), dtype=np.float32) * rng.uniform(0.02, 0.08)
    upsample = _upsample_matrix(4, size)
    shading = upsample @ field @ upsample.T
    bg = bg + shading[..., None]
    if rng.random() < 0.25:  # edge of the number plate or of a wall: one side of a line is shaded
        a = rng.integers(4) * math.pi / 2 + rng.uniform(-0.3, 0.3)  # mostly vertical or horizontal
        side = coords[None, :] * math.cos(a) + coords[:, None] * math.sin(a) > rng.uniform(0.3, 0.45)
        bg = bg + side[..., None] * rng.uniform(-0.3, 0.3)
    return bg


def _render(rng: np.random.Generator, size: int, clutter: bool = True) -> tuple[np.ndarray, int]:
    label = int(rng.integers(10))
    mask = _text_mask(rng, size, label, clutter)
    # contrast polarity: dark digits on a light plate, or light digits on a dark one (about half each)
    contrast = rng.uniform(0.25, 0.8) if clutter else 0.8
    if rng.random() < 0.5:
        bg_luma = rng.uniform(contrast, 1.0)
        fg_luma = bg_luma - contrast
    else:
        bg_luma = rng.uniform(0.0, 1.0 - contrast)
        fg_luma = bg_luma + contrast
    if clutter:
        bg = _background(rng, size, bg_luma)
    else:
        bg = np.full((size, size, 3), bg_luma, np.float32)
    fg = _colour(rng, fg_luma)
    # alpha compositing of the ink over the background: I = (1 - m) B + m C
    image = bg + mask[..., None] * (fg - bg)
    if clutter:
        image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0.0, 0.05)  # sensor noise
    image = np.minimum(np.maximum(image * 255 + 0.5, 0), 255).astype(np.uint8)
    return image, label


def _check_size(size: int, minimum: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < minimum:
        raise ValueError(f"size={size!r} is not a usable image size; pass an int >= {minimum} (e.g. 32).")


def render_printed_digit(seed, size: int = 32) -> tuple[np.ndarray, int]:
    """One SVHN-like crop: (size x size x 3 uint8 RGB, label of the centred digit).

    `seed` is anything np.random.default_rng accepts; PrintedDigits item i uses (seed, i).
    """
    _check_size(size, 16)
    return _render(np.random.default_rng(seed), size)


def render_plain_digit(seed, size: int = 32) -> tuple[np.ndarray, int]:
    """The same digit, font, size, offset and rotation as a printed crop but without clutter: no neighbours,
    flat background, fixed contrast, no noise. For sanity checks that the label is the centred digit."""
    _check_size(size, 16)
    return _render(np.random.default_rng(seed), size, clutter=False)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC (or HxW) -> float32 CHW in [-1, 1]."""
    t = torch.from_numpy(image)
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return t.float().div_(127.5).sub_(1.0)


class PrintedDigits(Dataset):
    """SVHN-like printed digits: item i -> (3 x size x size float32 in [-1, 1], label 0-9).

    Item i is render_printed_digit((seed, i), size). Use seed 0 for training and seed 1 for testing: the
    sets are disjoint. With cache=True each rendered crop is kept (3 bytes/pixel; 60k crops at 32 px use
    ~180 MB); with DataLoader workers each worker keeps its own cache.
    """

    def __init__(self, length: int, size: int = 32, seed: int = 0, cache: bool = True):
        if not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(
                f"length={length!r}: PrintedDigits needs a positive number of items, e.g. 10000."
            )
        _check_size(size, 16)
        self.length, self.size, self.seed, self.cache = int(length), int(size), int(seed), cache
        self._cache: dict[int, tuple[np.ndarray, int]] = {}
        font_paths()  # fail here, not inside a DataLoader worker, when there are no fonts

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for PrintedDigits of length {self.length}")
        index = int(index) % self.length
        item = self._cache.get(index)
        if item is None:
            item = render_printed_digit((self.seed, index), self.size)
            if self.cache:
                self._cache[index] = item
        image, label = item
        return _to_tensor(image), label


# ---------------------------------------------------------------------------------------------------------
# Target domain: handwritten digits (scikit-learn's copy of the UCI optical digits)
# ---------------------------------------------------------------------------------------------------------

# The digit's 8x8 box fills this fraction of the frame; MNIST puts a 20x20 digit in a 28x28 frame (0.71).
_DIGIT_FRACTION = 0.75
_SPLIT_SEED = 0  # the train/test split never changes with the dataset seed: the seed drives augmentation


@lru_cache(maxsize=1)
def _handwritten() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images N x 8 x 8 float32 in [0, 1], labels, train indices, test indices), split 80/20 by label."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise DataError(
            "HandwrittenDigits uses scikit-learn's handwritten digits, and scikit-learn is not installed; "
            "pip install scikit-learn (it is in requirements.txt)."
        ) from error
    try:
        digits = load_digits()
    except Exception as error:  # a broken install, not something the caller can retry
        raise DataError(
            f"Could not load scikit-learn's handwritten digits ({error}). They ship inside scikit-learn; "
            "reinstall it (pip install --force-reinstall scikit-learn)."
        ) from error
    images = (digits.images / 16.0).astype(np.float32)  # 0 = paper, 16 = all 16 sub-pixels inked
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=_SPLIT_SEED
    )
    return images, labels, np.sort(train), np.sort(test)


def _place(images: torch.Tensor, size: int, theta: torch.Tensor | None = None) -> torch.Tensor:
    """N x 1 x 8 x 8 -> N x 1 x size x size: bicubic resampling into the frame, then contrast stretch.

    theta (N x 2 x 3) maps output coordinates to input ones, both normalised to [-1, 1]; for a box fraction
    f, scale s, rotation R and shift t:  x_in = R^T (x_out - t) / (f s). None: the plain centred box, 1/f.
    """
    n = images.shape[0]
    if theta is None:
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / _DIGIT_FRACTION
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    out = F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    # bicubic overshoots and 8x8 strokes blur into wide ramps: stretch so the paper is exactly black and
    # stroke cores saturate to white, closer to MNIST's crisp strokes
    return ((out - 0.15) / 0.6).clamp_(0.0, 1.0)


class HandwrittenDigits(Dataset):
    """MNIST-like handwritten digits: item -> (channels x size x size float32 in [-1, 1], label 0-9).

    split: "train" (1437 digits) or "test" (360), a fixed split stratified by label. channels=3 repeats the
    grey channel so one 3-channel classifier takes both domains. augment=True applies a small random shift
    (+-2 px at 32), scale (0.9-1.1) and rotation (+-10 degrees) drawn from (seed, index).
    """

    def __init__(
        self, split: str = "train", size: int = 32, channels: int = 3, augment: bool = False, seed: int = 0
    ):
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r}: HandwrittenDigits has a 'train' and a 'test' split.")
        if channels not in (1, 3):
            raise ValueError(
                f"channels={channels!r}: use 1 (grey, like MNIST) or 3 (grey repeated, like RGB)."
            )
        _check_size(size, 8)
        self.split, self.size, self.channels = split, int(size), channels
        self.augment, self.seed = augment, seed
        images, labels, train, test = _handwritten()
        self.indices = train if split == "train" else test  # rows of sklearn's load_digits()
        self.labels = labels[self.indices]
        self._digits = torch.from_numpy(images[self.indices])[:, None]  # N x 1 x 8 x 8
        # un-augmented frames are computed once, all together
        self._frames = None if augment else _place(self._digits, self.size)

    def __len__(self) -> int:
        return len(self.indices)

    def _augmented(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, index))
        scale = rng.uniform(0.9, 1.1)
        angle = math.radians(rng.uniform(-10, 10))
        shift = rng.uniform(-2, 2, 2) * (2 / 32)  # +-2 px at 32 px, in normalised units (2 / 32 per px)
        c, s = math.cos(angle), math.sin(angle)
        r_t = torch.tensor([[c, s], [-s, c]], dtype=torch.float32)  # R^T
        k = 1.0 / (_DIGIT_FRACTION * scale)
        theta = torch.zeros(1, 2, 3)
        theta[0, :, :2] = k * r_t
        theta[0, :, 2] = -k * (r_t @ torch.tensor(shift, dtype=torch.float32))
        return _place(self._digits[index : index + 1], self.size, theta)[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"index {index} out of range for the {len(self)} {self.split} handwritten digits"
            )
        index = int(index) % len(self)
        frame = self._augmented(index) if self.augment else self._frames[index]
        x = frame * 2.0 - 1.0
        if self.channels == 3:
            x = x.expand(3, -1, -1)
        return x.contiguous(), int(self.labels[index])


# ---------------------------------------------------------------------------------------------------------
# Preview grid and benchmark
# ---------------------------------------------------------------------------------------------------------


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """3 x H x W in [-1, 1] -> H x W x 3 uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def preview_grid(rows: int = 4, cols: int = 12, size: int = 32, pad: int = 2) -> np.ndarray:
    """`rows` rows of PrintedDigits (seed 0) above `rows` rows of augmented HandwrittenDigits (train)."""
    source = PrintedDigits(rows * cols, size=size, seed=0, cache=False)
    target = HandwrittenDigits("train", size=size, channels=3, augment=True, seed=0)
    tiles = [_to_uint8(source[i][0]) for i in range(rows * cols)]
    tiles += [_to_uint8(target[i][0]) for i in range(rows * cols)]
    step = size + pad
    gap = 3 * pad  # a wider band between the two domains
    grid = np.full((2 * rows * step + pad + gap, cols * step + pad, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y = pad + r * step + (gap if r >= rows else 0)
        x = pad + c * step
        grid[y : y + size, x : x + size] = tile
    return grid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="save a preview grid PNG (source rows above target rows)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4, help="rows per domain")
    parser.add_argument("--cols", type=int, default=12)
    parser.add_argument("--zoom", type=int, default=3, help="nearest-neighbour enlargement of the grid")
    parser.add_argument("--bench", type=int, default=0, help="render N printed digits, print images/s")
    args = parser.parse_args(argv)
    if args.out is None and not args.bench:
        parser.error("nothing to do: pass --out PATH.png and/or --bench N")
    if args.out is not None:
        grid = Image.fromarray(preview_grid(args.rows, args.cols, args.size))
        grid = grid.resize((grid.width * args.zoom, grid.height * args.zoom), Image.NEAREST)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.out)
        print(f"saved {args.out}")
    if args.bench:
        torch.set_num_threads(1)
        dataset = PrintedDigits(args.bench, size=args.size, seed=123, cache=False)
        dataset[0]  # font check and first glyphs outside the timing
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(len(dataset)):
            dataset[i]
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        # CPU seconds are the fair figure on a shared machine; wall seconds are what a DataLoader sees
        print(
            f"PrintedDigits {args.size}px, 1 thread: {args.bench / wall:.0f} images/s wall, "
            f"{args.bench / cpu:.0f} images per CPU second "
            f"({len(font_paths())} fonts, glyph cache cold at start)"
        )


if __name__ == "__main__":
    main()
