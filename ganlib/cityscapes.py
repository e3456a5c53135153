"""The Cityscapes label palette: 19 train classes, their trainIds 0..18 and official colours.

Semantic maps travel in two forms: colour images (what `gtFine_color.png` and our embedded
street scenes store, what a person can look at) and integer trainId maps (what a segmentation
loss or SPADE's one-hot input needs). This module converts between them.

Colours and ids follow the official `cityscapesscripts/helpers/labels.py`; every class whose
trainId is 255 there (unlabeled, ego vehicle, ground, parking, ...) is "ignore" here.
"""
from typing import NamedTuple

import numpy as np
import torch


class CityscapesClass(NamedTuple):
    name: str
    train_id: int
    color: tuple[int, int, int]


CLASSES = [
    CityscapesClass("road", 0, (128, 64, 128)),
    CityscapesClass("sidewalk", 1, (244, 35, 232)),
    CityscapesClass("building", 2, (70, 70, 70)),
    CityscapesClass("wall", 3, (102, 102, 156)),
    CityscapesClass("fence", 4, (190, 153, 153)),
    CityscapesClass("pole", 5, (153, 153, 153)),
    CityscapesClass("traffic light", 6, (250, 170, 30)),
    CityscapesClass("traffic sign", 7, (220, 220, 0)),
    CityscapesClass("vegetation", 8, (107, 142, 35)),
    CityscapesClass("terrain", 9, (152, 251, 152)),
    CityscapesClass("sky", 10, (70, 130, 180)),
    CityscapesClass("person", 11, (220, 20, 60)),
    CityscapesClass("rider", 12, (255, 0, 0)),
    CityscapesClass("car", 13, (0, 0, 142)),
    CityscapesClass("truck", 14, (0, 0, 70)),
    CityscapesClass("bus", 15, (0, 60, 100)),
    CityscapesClass("train", 16, (0, 80, 100)),
    CityscapesClass("motorcycle", 17, (0, 0, 230)),
    CityscapesClass("bicycle", 18, (119, 11, 32)),
]

NUM_CLASSES = 19
IGNORE_INDEX = 255
CLASS_NAMES = [c.name for c in CLASSES]
PALETTE = np.array([c.color for c in CLASSES], dtype=np.uint8)  # row i is the colour of trainId i
TRAIN_ID = {c.name: c.train_id for c in CLASSES}  # "car" -> 13


def _pack(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) -> one int32 per pixel, so a colour compares as a single number."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


# Sorted packed palette for a binary-search lookup (19 entries: no 16M-entry table needed).
_PACKED = _pack(PALETTE)
_ORDER = np.argsort(_PACKED)
_PACKED_SORTED = _PACKED[_ORDER]
_IDS_SORTED = np.arange(NUM_CLASSES, dtype=np.uint8)[_ORDER]


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(
            f"colors_to_ids expects an HxWx3 RGB image, got shape {rgb.shape}; "
            "drop an alpha channel with rgb[..., :3] or convert a CHW tensor with "
            ".permute(1, 2, 0).numpy()"
        )
    if rgb.dtype != np.uint8:
        raise ValueError(
            f"colors_to_ids expects uint8 colours, got dtype {rgb.dtype}; a tensor in [-1, 1] "
            "converts with ((x + 1) * 127.5).round().clamp(0, 255).byte()"
        )
    return rgb


def colors_to_ids(rgb: np.ndarray, ignore_index: int = IGNORE_INDEX, nearest: bool = False) -> np.ndarray:
    """Map a colour label image (HxWx3 uint8) to trainIds (HxW uint8).

    nearest=False (exact): a pixel whose colour is one of the 19 palette colours gets that
    class's trainId; ANY other colour -> `ignore_index`. That covers the official void classes
    in gtFine_color (unlabeled / ego vehicle (0, 0, 0), ground (81, 0, 81), parking, ...) and
    also every pixel changed by JPEG noise or antialiased resizing, so use this on lossless,
    nearest-neighbour-resized maps.

    nearest=True: every pixel gets the trainId of the palette colour nearest in RGB
    (Euclidean); nothing is ignored, so black void pixels become the class whose colour is
    closest to black (truck). Use it for maps that went through bilinear resizing or lossy
    compression, or a generator's output.
    """
    rgb = _check_rgb(rgb)
    if not 0 <= ignore_index <= 255 or ignore_index < NUM_CLASSES:
        raise ValueError(
            f"ignore_index={ignore_index} collides with a trainId or does not fit uint8; "
            "use a value in 19..255 (255 is the Cityscapes convention)"
        )
    packed = _pack(rgb)
    if nearest:
        # Distances only for the distinct colours: a full-HD map has few of them.
        colors, inverse = np.unique(packed.ravel(), return_inverse=True)
        unique_rgb = np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255], axis=1)
        dist = ((unique_rgb[:, None, :] - PALETTE[None, :, :].astype(np.int32)) ** 2).sum(-1)
        return dist.argmin(1).astype(np.uint8)[inverse].reshape(packed.shape)
    pos = np.searchsorted(_PACKED_SORTED, packed).clip(max=NUM_CLASSES - 1)
    found = _PACKED_SORTED[pos] == packed
    return np.where(found, _IDS_SORTED[pos], np.uint8(ignore_index)).astype(np.uint8)


def ids_to_colors(ids) -> np.ndarray:
    """Map trainIds (HxW numpy array or tensor, any integer dtype) to palette colours HxWx3 uint8.

    Any value outside 0..18 (255 = ignore, in particular) is drawn black, like the
    "unlabeled" colour of gtFine_color.
    """
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    ids = np.asarray(ids)
    valid = (ids >= 0) & (ids < NUM_CLASSES)
    rgb = PALETTE[np.where(valid, ids, 0)]
    rgb[~valid] = 0
    return rgb


def one_hot(ids: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """trainIds (NxHxW, or HxW) long -> one-hot float (NxCxHxW, or CxHxW), SPADE's input.

    Ignore pixels (any id outside 0..num_classes-1, e.g. 255) become an all-zero vector, so
    the generator sees "no class" there rather than a wrong one.
    """
    if ids.dim() not in (2, 3):
        raise ValueError(f"one_hot expects ids shaped NxHxW or HxW, got {tuple(ids.shape)}")
    ids = ids.long()
    valid = (ids >= 0) & (ids < num_classes)
    hot = torch.nn.functional.one_hot(torch.where(valid, ids, 0), num_classes)  # ...xHxWxC
    hot = hot * valid.unsqueeze(-1)
    return hot.movedim(-1, -3).float()
