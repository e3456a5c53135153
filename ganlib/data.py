"""Real-data loaders: image folders, CelebA(-HQ), Bitmoji, wrist watches, BDD100K day/night, Cityscapes pairs.

Every dataset checks its folder when it is built (exists, has images, every header readable) and
raises DataError with the expected layout and the fetch command, so nothing fails later inside a
DataLoader worker. Items are float32 CHW tensors in [-1, 1].

Augmentation is albumentations; the random choices for item i in epoch e are a function of
(seed, e, i) only, so a resumed run sees exactly the same augmented batches, in any worker.
Call `dataset.set_epoch(e)` before iterating epoch e (StepLoader does it for you); the epoch lives
in shared memory, so persistent DataLoader workers see the change too.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

# albumentations checks PyPI for a newer version on import; a library must not phone home.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from ganlib.errors import DataError  # noqa: E402
from ganlib.kaggle_data import fetch_hint  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

Size = int | tuple[int, int]


# ----------------------------------------------------------------------------------------------
# Files


def find_images(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files (jpg/jpeg/png/bmp/webp, any case) under root, sorted. Hidden files are skipped."""
    root = Path(root)
    pattern = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in pattern
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def check_images(paths: Sequence[Path], name: str, show: int = 5) -> None:
    """Open every file's header (fast: PIL reads only the header) and raise DataError naming the unreadable ones."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as im:
                im.size  # noqa: B018  (the header parse is the check)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
            bad.append((Path(path), err))
    if bad:
        listed = ", ".join(f"{p.name} ({_short_reason(e)})" for p, e in bad[:show])
        more = f" and {len(bad) - show} more" if len(bad) > show else ""
        raise DataError(f"{len(bad)} of {len(paths)} images in {name} are unreadable: {listed}{more}. "
                        "Delete or replace them (a re-download usually fixes a cut-short copy).")


def _short_reason(err: Exception) -> str:
    text = str(err)
    if isinstance(err, UnidentifiedImageError) or text.startswith("cannot identify image file"):
        return "cannot identify image file"
    return text.split(":")[0][:80] or type(err).__name__


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 HxWx3 RGB. Transparency (RGBA, LA, PA, P or RGB with a tRNS key)
    is composited on WHITE, so transparent Bitmoji backgrounds become white, not black."""
    try:
        with Image.open(path) as im:
            if "A" in im.getbands() or "transparency" in im.info:
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return np.array(Image.alpha_composite(white, rgba).convert("RGB"))
            return np.array(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"Cannot read image {path}: {err}. Delete or replace this file.") from err


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [-1, 1] (x / 127.5 - 1)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def center_crop_fraction(image: np.ndarray, fraction: float) -> np.ndarray:
    """The central square whose side is `fraction` of the shorter side (CelebA: 140/178 of 178 -> 140)."""
    h, w = image.shape[:2]
    side = max(1, round(min(h, w) * fraction))
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


# ----------------------------------------------------------------------------------------------
# Augmentation


def _hw(size: Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _cover(hw: tuple[int, int]) -> A.BasicTransform:
    # Scale so the image covers hw, keeping its aspect ratio: INTER_AREA when shrinking photos,
    # bilinear when enlarging; masks (label maps) always NEAREST so no new colours appear.
    return A.SmallestMaxSize(max_size_hw=hw, interpolation=cv2.INTER_LINEAR,
                             mask_interpolation=cv2.INTER_NEAREST, area_for_downscale="image")


def eval_transform(size: Size) -> A.Compose:
    """Deterministic: scale to cover `size` (aspect kept), centre crop to `size`."""
    h, w = _hw(size)
    return A.Compose([_cover((h, w)), A.CenterCrop(h, w)])


def train_transform(size: Size, crop_from: Size | None = None, flip: bool = True) -> A.Compose:
    """Training augmentation. crop_from=None: scale to cover `size`, centre crop, maybe flip.
    crop_from=286 with size=256 (CycleGAN): scale to cover 286, random 256 crop, maybe flip.

    Call it with image=photo, and mask=label_map for a pair: the same crop and flip hit both,
    and the mask is resized with NEAREST.
    """
    h, w = _hw(size)
    if crop_from is None:
        steps = [_cover((h, w)), A.CenterCrop(h, w)]
    else:
        ch, cw = _hw(crop_from)
        if ch < h or cw < w:
            raise ValueError(f"crop_from={crop_from} is smaller than size={size}; use crop_from >= size "
                             "(CycleGAN: size=256, crop_from=286)")
        steps = [_cover((ch, cw)), A.RandomCrop(h, w)]
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps)


def item_seed(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """A 32-bit seed that depends only on (seed, epoch, index, stream): SeedSequence hashes them."""
    return int(np.random.SeedSequence([seed, epoch, index, stream]).generate_state(1)[0])


def apply_transform(transform: A.Compose, seed: int, image: np.ndarray, mask: np.ndarray | None = None):
    """Run `transform` with its random state reset to `seed`; returns the image, or (image, mask)."""
    transform.set_random_seed(seed)
    if mask is None:
        return transform(image=image)["image"]
    out = transform(image=image, mask=mask)
    return out["image"], out["mask"]


class _EpochMixin:
    """`seed`, and an epoch kept in a shared-memory tensor so DataLoader workers (even persistent ones) see set_epoch."""

    def _init_epoch(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())


# ----------------------------------------------------------------------------------------------
# Single-folder datasets


def _require_images(root: str | os.PathLike, what: str, layout: str, slug: str | None,
                    recursive: bool = True, check: bool = True, data_dir: Path | None = None) -> list[Path]:
    """find_images + checks, with errors that show the expected layout and how to fetch the data
    (into data_dir, by default the folder holding root)."""
    root = Path(root)
    hint = f" {fetch_hint(slug, data_dir or root.parent)}" if slug else ""
    if not root.is_dir():
        raise DataError(f"{what} not found: {root} does not exist (or is not a folder). "
                        f"Expected layout: {layout}.{hint}")
    paths = find_images(root, recursive)
    if not paths:
        where = "under" if recursive else "directly in"
        raise DataError(f"{what}: no images (.jpg/.jpeg/.png/.bmp/.webp) {where} {root}. "
                        f"Expected layout: {layout}.{hint}")
    if check:
        check_images(paths, str(root))
    return paths


class ImageFolder(_EpochMixin, Dataset):
    """Every image under `root` (any nesting), as float32 3xHxW in [-1, 1].

    size: int or (h, w); images are scaled to cover it (aspect kept) and centre cropped.
    augment: random horizontal flip, plus a random `size` crop out of `crop_from` when given.
    crop_fraction: first take the central square of this fraction of the shorter side (CelebA recipe).
    check: open every header up front (set False to skip on a huge, known-good folder).
    """

    def __init__(self, root: str | os.PathLike, size: Size = 64, augment: bool = False,
                 crop_from: Size | None = None, crop_fraction: float | None = None, seed: int = 0,
                 check: bool = True, paths: Sequence[Path] | None = None,
                 what: str = "Images", layout: str = "<root>/**/*.jpg|png", slug: str | None = None):
        self.root = Path(root)
        self.paths = list(paths) if paths is not None else _require_images(root, what, layout, slug, check=check)
        self.size = _hw(size)
        self.crop_fraction = crop_fraction
        self.transform = train_transform(size, crop_from) if augment else eval_transform(size)
        self._init_epoch(seed)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        """Item `index` before augmentation: uint8 HxWx3, cropped by crop_fraction if set."""
        image = load_rgb(self.paths[index])
        return center_crop_fraction(image, self.crop_fraction) if self.crop_fraction else image

    def __getitem__(self, index: int) -> torch.Tensor:
        image = apply_transform(self.transform, item_seed(self.seed, self.epoch, index), self.load(index))
        return to_tensor(image)


def _deepest_dir_named(root: Path, name: str) -> Path | None:
    """The deepest folder called `name` under root (Kaggle zips often nest a folder in a same-named folder)."""
    found = [p for p in root.rglob(name) if p.is_dir()] if root.is_dir() else []
    return max(found, key=lambda p: len(p.parts)) if found else None


CELEBA_LAYOUT = "<root>/img_align_celeba/img_align_celeba/000001.jpg ... (178x218 JPEGs)"


def celeba(root: str | os.PathLike = "data/celeba-dataset", size: Size = 64, crop_fraction: float = 140 / 178,
           **kwargs) -> ImageFolder:
    """CelebA aligned faces (Kaggle jessicali9530/celeba-dataset). DCGAN recipe: the central
    140x140 of the 178x218 photo (face only, less background), resized to 64."""
    root = Path(root)
    folder = _deepest_dir_named(root, "img_align_celeba") or root
    paths = _require_images(folder, "CelebA images", CELEBA_LAYOUT, "jessicali9530/celeba-dataset",
                            check=kwargs.pop("check", True), data_dir=root.parent)
    return ImageFolder(folder, size, crop_fraction=crop_fraction, paths=paths, **kwargs)


def celeba_hq(root: str | os.PathLike = "data/celebahq-resized-256x256", size: Size = 256, **kwargs) -> ImageFolder:
    """CelebA-HQ at 256x256 (Kaggle badasstechie/celebahq-resized-256x256), images found at any nesting."""
    return ImageFolder(root, size, what="CelebA-HQ images", layout="<root>/**/*.jpg (256x256 faces)",
                       slug="badasstechie/celebahq-resized-256x256", **kwargs)


def bitmoji(root: str | os.PathLike = "data/bitmojis", size: Size = 128, **kwargs) -> ImageFolder:
    """Bitmoji avatars (Kaggle romaingraux/bitmojis): RGBA PNGs, transparency composited on white."""
    return ImageFolder(root, size, what="Bitmoji images", layout="<root>/**/*.png (RGBA avatars)",
                       slug="romaingraux/bitmojis", **kwargs)


def wrist_watches(root: str | os.PathLike = "data/wrist-watch-128", size: Size = 128, **kwargs) -> ImageFolder:
    """Wrist-watch photos at 128x128 (Kaggle minhquntntht/wrist-watch-128), found recursively."""
    return ImageFolder(root, size, what="Wrist-watch images", layout="<root>/**/*.jpg|png (128x128 watches)",
                       slug="minhquntntht/wrist-watch-128", **kwargs)


# ----------------------------------------------------------------------------------------------
# Unpaired folders (CycleGAN)


class UnpairedFolders(_EpochMixin, Dataset):
    """Two image sets without correspondence: item i -> {"A": A[i mod |A|], "B": a random B}.

    The B index is drawn from a generator seeded by (seed, epoch, i), as CycleGAN's loader draws
    B at random, but reproducibly. Length is max(|A|, |B|). dir_a/dir_b may be folders or lists of paths.
    """

    def __init__(self, dir_a: str | os.PathLike | Sequence[Path], dir_b: str | os.PathLike | Sequence[Path],
                 size: Size = 256, augment: bool = True, crop_from: Size | None = None, seed: int = 0,
                 check: bool = True):
        self.paths_a = self._paths(dir_a, "A", check)
        self.paths_b = self._paths(dir_b, "B", check)
        self.transform = train_transform(size, crop_from) if augment else eval_transform(size)
        self._init_epoch(seed)

    @staticmethod
    def _paths(source, side: str, check: bool) -> list[Path]:
        if isinstance(source, (str, os.PathLike)):
            return _require_images(source, f"Domain {side} images", "<dir>/**/*.jpg|png", None, check=check)
        paths = [Path(p) for p in source]
        if not paths:
            raise DataError(f"Domain {side} got an empty list of images; pass a folder or a non-empty list of paths.")
        if check:
            check_images(paths, f"domain {side}")
        return paths

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        epoch = self.epoch
        b_index = int(np.random.default_rng([self.seed, epoch, index, 2]).integers(len(self.paths_b)))
        image_a = load_rgb(self.paths_a[index % len(self.paths_a)])
        image_b = load_rgb(self.paths_b[b_index])
        a = apply_transform(self.transform, item_seed(self.seed, epoch, index, 0), image_a)
        b = apply_transform(self.transform, item_seed(self.seed, epoch, index, 1), image_b)
        return {"A": to_tensor(a), "B": to_tensor(b)}


BDD_LAYOUT = ("<root>/**/bdd100k_labels_images_<split>.json (a JSON list of {\"name\": \"xxx.jpg\", "
              "\"attributes\": {\"timeofday\": \"daytime\"|\"night\"|...}}) and <root>/**/images/100k/<split>/*.jpg")


# In the released label files each record starts {"name": ..., "attributes": {... "timeofday": ...}, "labels": [...]}.
_BDD_RECORD = re.compile(r'"name"\s*:\s*"([^"]+)"\s*,\s*"attributes"\s*:\s*\{([^{}]*)\}')
_BDD_TIMEOFDAY = re.compile(r'"timeofday"\s*:\s*"([^"]*)"')


def _bdd100k_timeofday(json_path: Path) -> dict[str, str]:
    """name -> attributes.timeofday. The train file is about a gigabyte of box labels that we do not need:
    json.load would build several GB of Python objects, so scan the text for the two fields instead, and
    parse the JSON only when the scan finds nothing (a file written with another key order)."""
    try:
        text = json_path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"Cannot read {json_path}: {err}. Re-download the BDD100K labels.") from err
    found = {}
    for match in _BDD_RECORD.finditer(text):
        when = _BDD_TIMEOFDAY.search(match.group(2))
        found[match.group(1)] = when.group(1) if when else None
    if found:
        return found
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"Cannot read {json_path}: {err}. Re-download the BDD100K labels.") from err
    return {r.get("name", ""): (r.get("attributes") or {}).get("timeofday") for r in records if isinstance(r, dict)}


def bdd100k_day_night(root: str | os.PathLike = "data/solesensei_bdd100k", split: str = "train"
                      ) -> tuple[list[Path], list[Path]]:
    """BDD100K (Kaggle solesensei/solesensei_bdd100k) split by the label JSON's attributes.timeofday:
    returns (daytime paths, night paths), sorted; dawn/dusk and undefined are left out.
    The JSON and the images/100k/<split> folder are found under root whatever the nesting.
    """
    root = Path(root)
    hint = fetch_hint("solesensei/solesensei_bdd100k", root.parent)
    if not root.is_dir():
        raise DataError(f"BDD100K not found: {root} does not exist. Expected layout: {BDD_LAYOUT}. {hint}")
    json_name = f"bdd100k_labels_images_{split}.json"
    json_path, image_dir = None, None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        if json_path is None and json_name in filenames:
            json_path = here / json_name
        if image_dir is None and here.name == split and here.parent.name == "100k" and here.parent.parent.name == "images":
            image_dir = here
            dirnames[:] = []  # do not walk 70k image names again below it
    if json_path is None:
        raise DataError(f"BDD100K labels missing: no {json_name} under {root}. Expected layout: {BDD_LAYOUT}. "
                        "The Kaggle copy has it in bdd100k_labels_release/bdd100k/labels/. " + hint)
    if image_dir is None:
        raise DataError(f"BDD100K images missing: no images/100k/{split}/ folder under {root}. "
                        f"Expected layout: {BDD_LAYOUT}. {hint}")
    timeofday = _bdd100k_timeofday(json_path)
    on_disk = {p.name: p for p in find_images(image_dir, recursive=False)}
    day, night = [], []
    for name, when in timeofday.items():
        path = on_disk.get(name)
        if path is not None and when == "daytime":
            day.append(path)
        elif path is not None and when == "night":
            night.append(path)
    if not day or not night:
        raise DataError(f"BDD100K: {len(day)} daytime and {len(night)} night images matched between {json_path.name} "
                        f"and {image_dir} ({len(on_disk)} images on disk, {len(timeofday)} labels); both must be > 0. "
                        "Check that the JSON and the images are the same split.")
    return sorted(day), sorted(night)


# ----------------------------------------------------------------------------------------------
# Cityscapes pairs (pix2pix, SPADE)

CITYSCAPES_LAYOUT = ("either the Kaggle copy <root>/<split>/input/<key>_gtFine_color.png (colour label maps) + "
                     "<root>/<split>/label/<key>_leftImg8bit.png (photos), or the official tree "
                     "<root>/gtFine/<split>/<city>/<key>_gtFine_color.png + "
                     "<root>/leftImg8bit/<split>/<city>/<key>_leftImg8bit.png")

LABEL_SUFFIX, PHOTO_SUFFIX = "_gtFine_color", "_leftImg8bit"


def _find_cityscapes_dirs(root: Path, split: str) -> tuple[Path, Path] | None:
    """(label maps folder, photos folder) for either layout, searching a few levels down."""
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if len(here.relative_to(root).parts) > 3:
            dirnames[:] = []
            continue
        dirnames.sort()
        if here.name == split and (here / "input").is_dir() and (here / "label").is_dir():
            return here / "input", here / "label"
        if (here / "gtFine" / split).is_dir() and (here / "leftImg8bit" / split).is_dir():
            return here / "gtFine" / split, here / "leftImg8bit" / split
    return None


def _keyed(paths: Sequence[Path], suffix: str) -> dict[str, Path]:
    return {p.stem[: -len(suffix)]: p for p in paths if p.stem.endswith(suffix)}


class CityscapesPairs(_EpochMixin, Dataset):
    """Cityscapes (colour label map, photo) pairs: item -> {"label": 3xHxW, "photo": 3xHxW, "ids": HxW long}.

    Both tensors are float32 in [-1, 1]; ids are trainIds (0..18, 255 = ignore) from the label map via
    ganlib.cityscapes.colors_to_ids. The label map is resized with NEAREST (so its colours stay exact),
    the photo with area/bilinear; augment applies the same random crop and flip to both.
    size: int or (h, w), e.g. (256, 512) for the 2:1 frames.
    """

    def __init__(self, root: str | os.PathLike = "data/cityscape-dataset", size: Size = (256, 512),
                 split: str = "train", augment: bool = False, crop_from: Size | None = None, seed: int = 0,
                 check: bool = True, nearest_colors: bool = False):
        root = Path(root)
        hint = fetch_hint("electraawais/cityscape-dataset", root.parent)
        if not root.is_dir():
            raise DataError(f"Cityscapes not found: {root} does not exist. Expected layout: {CITYSCAPES_LAYOUT}. {hint}")
        dirs = _find_cityscapes_dirs(root, split)
        if dirs is None:
            raise DataError(f"Cityscapes split {split!r} not found under {root}. Expected layout: "
                            f"{CITYSCAPES_LAYOUT}. {hint}")
        label_dir, photo_dir = dirs
        labels = _keyed(find_images(label_dir), LABEL_SUFFIX)
        photos = _keyed(find_images(photo_dir), PHOTO_SUFFIX)
        if not labels:
            raise DataError(f"Cityscapes: no *{LABEL_SUFFIX}.png label maps in {label_dir}. "
                            f"Expected layout: {CITYSCAPES_LAYOUT}. {hint}")
        self._check_paired(labels, photos, LABEL_SUFFIX, PHOTO_SUFFIX, photo_dir)
        self._check_paired(photos, labels, PHOTO_SUFFIX, LABEL_SUFFIX, label_dir)
        self.keys = sorted(labels)
        self.label_paths = [labels[k] for k in self.keys]
        self.photo_paths = [photos[k] for k in self.keys]
        if check:
            check_images(self.label_paths, str(label_dir))
            check_images(self.photo_paths, str(photo_dir))
        self.size = _hw(size)
        self.nearest_colors = nearest_colors
        self.transform = train_transform(size, crop_from) if augment else eval_transform(size)
        self._init_epoch(seed)

    @staticmethod
    def _check_paired(have: dict[str, Path], other: dict[str, Path], suffix: str, other_suffix: str,
                      other_dir: Path, show: int = 5) -> None:
        missing = [k for k in sorted(have) if k not in other]
        if missing:
            ext = have[missing[0]].suffix
            listed = ", ".join(f"{k}{suffix}{ext} has no {k}{other_suffix}{ext} in {other_dir}" for k in missing[:show])
            more = f" (and {len(missing) - show} more)" if len(missing) > show else ""
            raise DataError(f"Cityscapes: {len(missing)} of {len(have)} files are unpaired: {listed}{more}. "
                            "Add the missing files or delete the unpaired ones (the pair key is the name before "
                            f"{LABEL_SUFFIX} / {PHOTO_SUFFIX}).")

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ganlib.cityscapes import colors_to_ids  # lazy: keeps this module importable on its own

        label = load_rgb(self.label_paths[index])
        photo = load_rgb(self.photo_paths[index])
        if label.shape[:2] != photo.shape[:2]:
            # Align before augmenting so one crop hits the same pixels in both.
            label = cv2.resize(label, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
        photo, label = apply_transform(self.transform, item_seed(self.seed, self.epoch, index), photo, label)
        ids = colors_to_ids(np.ascontiguousarray(label), nearest=self.nearest_colors)
        return {"label": to_tensor(label), "photo": to_tensor(photo), "ids": torch.from_numpy(ids.astype(np.int64))}


__all__ = ["IMAGE_EXTENSIONS", "find_images", "check_images", "load_rgb", "to_tensor", "center_crop_fraction",
           "eval_transform", "train_transform", "item_seed", "apply_transform", "ImageFolder", "celeba",
           "celeba_hq", "bitmoji", "wrist_watches", "UnpairedFolders", "bdd100k_day_night", "CityscapesPairs"]
