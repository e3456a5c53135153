"""Embedded wrist watches: product-photo-like renders made by code.

They stand in for the Kaggle dataset "minhquntntht/wrist-watch-128" (luxury wrist watches photographed
straight on, centred on a plain light background, the strap running out of the top and bottom of the frame)
in the DCGAN, WGAN-GP and StyleGAN2 notebooks, so those run with no download.

Every watch is a `Watch`: a small dataclass of random choices (case shape and metal, bezel, dial colour and
texture, indices, hands set to a random time, subdials, date window, crown, strap, background, shadow, glare)
drawn from one numpy Generator. `draw_watch` turns it into pixels at any size: large shapes are painted with
numpy colour fields (metal highlights, dial textures, strap shading) through PIL polygon masks, the fine
details (indices, numerals, hands) are drawn with PIL, everything at `ss` times the target size, then
box-downsampled, which is the antialiasing. The random choices do not depend on the size, so a watch
rendered at 32 px is the 128 px one made smaller.

    img = render_watch(7, size=64)              # uint8 64x64x3 RGB
    ds = WristWatches(60_000, size=64, seed=0)  # ds[i]: float32 3x64x64 in [-1, 1], watch (seed, i)

    python -m ganlib.embedded.watches --out watches.png --n 64 --size 64   # a grid for the README
    python -m ganlib.embedded.watches --bench                              # images/s at 32, 64, 128
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

MIN_SIZE, MAX_SIZE = 16, 512

# name: (base RGB, shine). Shine scales the specular highlight: black PVD coating is matte.
METALS = {
    "steel": ((200, 203, 208), 1.0),
    "gold": ((222, 182, 96), 1.0),
    "rose gold": ((226, 164, 140), 1.0),
    "black PVD": ((62, 62, 66), 0.45),
    "titanium": ((160, 162, 166), 0.7),
    "bronze": ((178, 134, 84), 0.8),
}
METAL_WEIGHTS = [0.45, 0.2, 0.12, 0.1, 0.08, 0.05]

DIAL_COLOURS = {
    "black": (20, 20, 23), "white": (241, 239, 233), "silver": (196, 199, 203), "navy": (26, 40, 86),
    "blue": (36, 78, 160), "green": (28, 80, 54), "champagne": (214, 190, 138), "grey": (104, 107, 112),
    "salmon": (226, 158, 128), "brown": (92, 60, 38), "burgundy": (106, 26, 38), "turquoise": (42, 156, 168),
    "cream": (236, 226, 198),
}
DIAL_TEXTURES = ("plain", "sunburst", "fume", "guilloche", "clous", "grain")

LEATHER_COLOURS = [(70, 42, 26), (112, 68, 38), (164, 110, 60), (148, 82, 38), (28, 26, 26), (32, 38, 62),
                   (96, 96, 98), (78, 82, 50)]
RUBBER_COLOURS = [(30, 30, 32), (30, 30, 32), (28, 40, 82), (232, 232, 228), (222, 100, 30), (38, 88, 58)]
NATO_COLOURS = [(24, 32, 70), (140, 26, 32), (70, 78, 50), (40, 40, 42), (150, 150, 150), (190, 160, 110)]

SECOND_HAND_COLOURS = [(205, 30, 30), (232, 110, 20), (236, 200, 40), (40, 90, 190)]
BRAND_LETTERS = "ABCDEFGHIJKLMNOPRSTUVWXZ"

# Fixed resolutions of the soft fields, so they too are the same watch at every size.
SHADOW_RES = 32
NOISE_RES = 64


@dataclass
class Watch:
    """Every random choice behind one watch. Lengths are in canvas units: the image is the unit square,
    x to the right, y down. Angles of hands and indices are clockwise from 12 o'clock, in radians."""

    cx: float
    cy: float
    shape: str               # round, cushion, tonneau, square, rectangular
    half_w: float            # case half width (crown not included)
    half_h: float
    roundness: float         # superellipse exponent: 2 is an ellipse, 8 a rounded rectangle
    bulge: float             # tonneau: how much narrower the case is at its ends
    metal: str
    metal_rgb: tuple
    shine: float
    light: float             # direction the highlights come from (radians, image coordinates)
    lugs: bool
    crown_len: float
    crown_h: float
    pushers: bool
    bezel: str               # thin, polished, fluted, insert
    bezel_width: float       # as a fraction of the case half width
    insert_rgb: tuple
    insert_rgb2: tuple | None  # a second colour for half the insert (GMT "pepsi" style)
    bezel_marks: str         # none, ticks, numbers
    dial: str                # name in DIAL_COLOURS
    dial_rgb: tuple
    dial_texture: str
    texture_angle: float
    indices: str             # sticks, dots, roman, numerals, wedges
    index_rgb: tuple
    minute_track: bool
    hands: str               # baton, sword, dauphine
    hand_rgb: tuple
    second_rgb: tuple
    hour: float
    minute: float
    second: float
    subdials: tuple          # centres, in dial radii from the dial centre
    subdial_rgb: tuple
    date: bool
    brand: str
    strap: str               # leather, bracelet, rubber, nato
    strap_rgb: tuple
    strap_rgb2: tuple        # stitching (leather), stripe (nato), centre links (bracelet)
    strap_width: float       # full width where the strap meets the case
    taper: float             # width at the frame edge / width at the case
    strap_period: float      # link length (bracelet) or groove spacing (rubber)
    link_columns: int
    background_top: tuple
    background_bottom: tuple
    vignette: float
    shadow: tuple | None     # (dx, dy, blur, strength)
    glare: float
    glare_angle: float
    texture_seed: int


# ----------------------------------------------------------------------------------------------------
# Sampling: all randomness is here, drawn in a fixed order, so a watch does not depend on the size.


def _pick(rng: np.random.Generator, options, p=None):
    """One of `options`, uniformly or with probabilities p (rng.choice with p is ten times slower)."""
    if p is None:
        return options[int(rng.integers(len(options)))]
    u, total = rng.random(), 0.0
    for option, weight in zip(options, p):
        total += weight
        if u < total:
            return option
    return options[-1]


def _jitter(rgb, rng: np.random.Generator, amount: float) -> tuple:
    return tuple(np.clip(np.asarray(rgb, float) + rng.normal(0, amount, 3), 0, 255).tolist())


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def sample_watch(rng: np.random.Generator) -> Watch:
    """Draw one watch's choices from `rng` (same generator state, same watch)."""
    shape = _pick(rng, ["round", "cushion", "tonneau", "square", "rectangular"], p=[0.62, 0.1, 0.08, 0.08, 0.12])
    half_w = rng.uniform(0.23, 0.31)
    if shape == "round":
        half_h, roundness, bulge = half_w, 2.0, 0.0
    elif shape == "cushion":
        half_h, roundness, bulge = half_w * rng.uniform(1.0, 1.06), rng.uniform(3.2, 4.2), 0.0
    elif shape == "tonneau":
        half_w *= 0.85
        half_h, roundness, bulge = half_w * rng.uniform(1.25, 1.4), rng.uniform(3.5, 5.0), rng.uniform(0.12, 0.2)
    elif shape == "square":
        half_h, roundness, bulge = half_w, rng.uniform(6.0, 10.0), 0.0
    else:
        half_w *= 0.82
        half_h, roundness, bulge = half_w * rng.uniform(1.2, 1.45), rng.uniform(6.0, 10.0), 0.0
    cx = 0.5 + rng.normal(0, 0.015) - 0.015  # a little left: the crown sticks out on the right
    cy = 0.5 + rng.normal(0, 0.015)

    metal = _pick(rng, list(METALS), p=METAL_WEIGHTS)
    metal_rgb, shine = METALS[metal]
    metal_rgb = _jitter(metal_rgb, rng, 5)
    light = rng.uniform(-2.6, -0.6)  # from the upper left to the upper right, like studio lighting

    bezels = ["thin", "polished", "fluted", "insert"] if shape == "round" else ["thin", "polished"]
    bezel = _pick(rng, bezels, p=[0.3, 0.3, 0.1, 0.3] if shape == "round" else None)
    bezel_width = {"thin": 0.06, "polished": 0.11, "fluted": 0.13, "insert": 0.17}[bezel] * rng.uniform(0.85, 1.15)
    insert_rgb = _pick(rng, [(22, 22, 26), (22, 22, 26), (26, 44, 110), (24, 84, 52), (150, 26, 34), (90, 90, 96)])
    insert_rgb2 = _pick(rng, [(150, 26, 34), (26, 44, 110), (22, 22, 26)]) if rng.random() < 0.2 else None
    bezel_marks = _pick(rng, ["none", "ticks", "numbers"], p=[0.2, 0.5, 0.3])

    dial = _pick(rng, list(DIAL_COLOURS))
    dial_rgb = _jitter(DIAL_COLOURS[dial], rng, 6)
    dial_texture = _pick(rng, DIAL_TEXTURES, p=[0.3, 0.25, 0.12, 0.12, 0.08, 0.13])
    dark_dial = _luma(dial_rgb) < 130
    if dial_texture == "fume" and _luma(dial_rgb) > 170:
        dial_texture = "sunburst"  # smoked edges only look right on coloured dials

    indices = _pick(rng, ["sticks", "dots", "roman", "numerals", "wedges"], p=[0.38, 0.17, 0.13, 0.17, 0.15])
    # Applied metal indices, or printed ones that contrast with the dial.
    if rng.random() < 0.5:
        index_rgb = tuple(min(255.0, c * 1.08 + 20) for c in metal_rgb) if metal != "black PVD" else (210, 210, 214)
    else:
        index_rgb = _pick(rng, [(245, 245, 240), (238, 230, 200)] if dark_dial else [(24, 24, 26), (28, 36, 70)])
    if not dark_dial and _luma(index_rgb) > 185:
        index_rgb = tuple(c * 0.55 for c in index_rgb)  # a bright metal index on a light dial: darken to read
    minute_track = bool(rng.random() < 0.5)
    hands = _pick(rng, ["baton", "sword", "dauphine"])
    hand_rgb = index_rgb if rng.random() < 0.75 else _pick(rng, [(240, 240, 236), (22, 22, 24), (40, 70, 150)])
    second_rgb = hand_rgb if rng.random() < 0.35 else _pick(rng, SECOND_HAND_COLOURS)
    hour, minute, second = rng.uniform(0, 12), rng.uniform(0, 60), rng.uniform(0, 60)

    layout = _pick(rng, ["none", "3-9", "12-6", "3-6-9"], p=[0.7, 0.1, 0.1, 0.1])
    subdials = {"none": (), "3-9": ((-0.48, 0.05), (0.48, 0.05)), "12-6": ((0.0, -0.45), (0.0, 0.45)),
                "3-6-9": ((-0.47, 0.0), (0.47, 0.0), (0.0, 0.47))}[layout]
    if rng.random() < 0.5:  # "panda": subdials that contrast with the dial
        subdial_rgb = (30, 30, 34) if not dark_dial else (232, 230, 224)
    else:
        subdial_rgb = tuple(c * 0.8 for c in dial_rgb)
    date = bool(rng.random() < 0.4) and layout in ("none", "12-6")
    brand = "".join(_pick(rng, BRAND_LETTERS) for _ in range(int(rng.integers(4, 8))))

    strap = _pick(rng, ["leather", "bracelet", "rubber", "nato"], p=[0.42, 0.35, 0.13, 0.1])
    if strap == "leather":
        strap_rgb = _jitter(_pick(rng, LEATHER_COLOURS), rng, 6)
        strap_rgb2 = _pick(rng, [(236, 228, 206), strap_rgb, tuple(c * 0.7 for c in strap_rgb)])
    elif strap == "bracelet":
        strap_rgb = metal_rgb if rng.random() < 0.85 else _jitter(METALS["steel"][0], rng, 5)
        strap_rgb2 = METALS["gold"][0] if metal == "steel" and rng.random() < 0.15 else strap_rgb  # two-tone
    elif strap == "rubber":
        strap_rgb, strap_rgb2 = _jitter(_pick(rng, RUBBER_COLOURS), rng, 4), (0, 0, 0)
    else:
        strap_rgb, strap_rgb2 = _pick(rng, NATO_COLOURS), _pick(rng, NATO_COLOURS)
    lugs = shape in ("round", "cushion") or rng.random() < 0.3
    strap_width = 2 * half_w * (rng.uniform(0.5, 0.6) if lugs else rng.uniform(0.72, 0.84))
    if strap == "bracelet":
        strap_width *= 1.06
    taper = rng.uniform(0.8, 0.95)
    strap_period = {"bracelet": rng.uniform(0.045, 0.07), "rubber": rng.uniform(0.025, 0.04)}.get(strap, 0.05)
    link_columns = _pick(rng, [1, 3, 3, 5])

    light_bg = rng.uniform(214, 252)
    tint = rng.normal(0, 3, 3) + _pick(rng, [np.zeros(3), np.array([3.0, 1.0, -3.0]), np.array([-2.0, 0.0, 3.0])])
    background_top = tuple(float(np.clip(c, 0, 255)) for c in light_bg + tint)
    gradient = rng.uniform(-14, 10)
    background_bottom = tuple(float(np.clip(c, 0, 255)) for c in light_bg + tint + gradient)
    vignette = rng.uniform(0.0, 0.18)
    shadow = None
    if rng.random() < 0.6:
        shadow = (rng.uniform(-0.01, 0.03), rng.uniform(0.01, 0.04), rng.uniform(0.04, 0.08), rng.uniform(0.15, 0.35))
    glare = rng.uniform(0.06, 0.2) if rng.random() < 0.6 else 0.0
    glare_angle = rng.uniform(-2.4, -0.8)

    return Watch(
        cx=cx, cy=cy, shape=shape, half_w=half_w, half_h=half_h, roundness=roundness, bulge=bulge,
        metal=metal, metal_rgb=metal_rgb, shine=shine, light=light, lugs=lugs,
        crown_len=rng.uniform(0.025, 0.04), crown_h=rng.uniform(0.05, 0.075),
        pushers=bool(subdials) or rng.random() < 0.1,
        bezel=bezel, bezel_width=bezel_width, insert_rgb=insert_rgb, insert_rgb2=insert_rgb2, bezel_marks=bezel_marks,
        dial=dial, dial_rgb=dial_rgb, dial_texture=dial_texture, texture_angle=rng.uniform(0, np.pi),
        indices=indices, index_rgb=index_rgb, minute_track=minute_track, hands=hands, hand_rgb=hand_rgb,
        second_rgb=second_rgb, hour=hour, minute=minute, second=second, subdials=subdials, subdial_rgb=subdial_rgb,
        date=date, brand=brand, strap=strap, strap_rgb=strap_rgb, strap_rgb2=strap_rgb2, strap_width=strap_width,
        taper=taper, strap_period=strap_period, link_columns=link_columns, background_top=background_top,
        background_bottom=background_bottom, vignette=vignette, shadow=shadow, glare=glare, glare_angle=glare_angle,
        texture_seed=int(rng.integers(2**31)),
    )


# ----------------------------------------------------------------------------------------------------
# Geometry helpers (canvas units).


def _superellipse(cx, cy, a, b, n, bulge=0.0, points=96) -> np.ndarray:
    """Outline of |x/a|^n + |y/b|^n = 1 as (points, 2); bulge narrows the ends into a barrel (tonneau)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = a * np.sign(c) * np.abs(c) ** (2 / n)
    y = b * np.sign(s) * np.abs(s) ** (2 / n)
    x = x * (1 - bulge * (y / b) ** 2)
    return np.stack([cx + x, cy + y], axis=1)


def _edge_radius(a, b, n, angle) -> float:
    """Distance from the centre to the superellipse outline in the direction `angle` (clockwise from 12)."""
    return (abs(math.sin(angle) / a) ** n + abs(math.cos(angle) / b) ** n) ** (-1 / n)


def _radial(cx, cy, angle, local) -> list:
    """Map (along, across) points of a part pointing at `angle` (clockwise from 12) to canvas points."""
    s, c = math.sin(angle), math.cos(angle)
    return [(cx + along * s + across * c, cy - along * c + across * s) for along, across in local]


# ----------------------------------------------------------------------------------------------------
# Painting: numpy colour fields through PIL masks on a float canvas, S x S x 3 in 0..255.


class _Canvas:
    def __init__(self, size: int, ss: int):
        self.S = size * ss
        self.img = np.empty((self.S, self.S, 3), np.float32)
        # Pixel-centre coordinates in canvas units, as a column (y) and a row (x): fields broadcast.
        self.ys = ((np.arange(self.S, dtype=np.float32) + 0.5) / self.S)[:, None]
        self.xs = ((np.arange(self.S, dtype=np.float32) + 0.5) / self.S)[None, :]

    def mask(self, *polygons, ellipses=()) -> Image.Image:
        m = Image.new("L", (self.S, self.S), 0)
        draw = ImageDraw.Draw(m)
        for poly in polygons:
            draw.polygon((np.asarray(poly) * self.S).ravel().tolist(), fill=255)
        for x0, y0, x1, y1 in ellipses:
            draw.ellipse([x0 * self.S, y0 * self.S, x1 * self.S, y1 * self.S], fill=255)
        return m

    def paint(self, mask: Image.Image, colour: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Where `mask` is set, replace the canvas by colour(x, y) (x a row, y a column of coordinates)."""
        box = mask.getbbox()
        if box is None:
            return
        x0, y0, x1, y1 = box
        inside = np.asarray(mask.crop(box))[..., None] > 127
        region = self.img[y0:y1, x0:x1]
        col = np.broadcast_to(colour(self.xs[:, x0:x1], self.ys[y0:y1]), region.shape)
        np.copyto(region, col, where=inside)


def _rgb(colour) -> np.ndarray:
    return np.asarray(colour, np.float32)


def _metal_field(base, shine, t) -> np.ndarray:
    """Polished metal seen under a studio light. t runs from -1 (away from the light) to 1 (towards it):
    colour = base * (0.55 + 0.35 t)                      diffuse ramp
           + shine * max(0, 1 - ((t - 0.45) / 0.5)^2)^2 * (90 + 0.4 base)
    the second term a specular band near the lit side (a cheap stand-in for a Gaussian)."""
    t = t[..., None]
    band = np.maximum(1 - ((t - 0.45) * 2) ** 2, 0)
    return _rgb(base) * (0.55 + 0.35 * t) + (shine * band * band) * (90 + 0.4 * _rgb(base))


def _noise(seed: int, S: int) -> np.ndarray:
    """Smooth noise, std about 1, from a NOISE_RES grid (independent of S), resized to S x S."""
    grid = np.random.default_rng(seed).standard_normal((NOISE_RES, NOISE_RES)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize((S, S), Image.BILINEAR))


@lru_cache(maxsize=64)
def _font(px: int):
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1 has one fixed bitmap font
        return ImageFont.load_default()


def _supersampling(size: int) -> int:
    # The canvas is ss times the output size: 3x for tiny outputs (where hands are a pixel wide), 2x above.
    return 3 if size <= 40 else 2


# ----------------------------------------------------------------------------------------------------


def draw_watch(w: Watch, size: int = 64) -> np.ndarray:
    """Render `w` as an RGB uint8 array of shape (size, size, 3): painted at ss x size, then box-downsampled."""
    _check_size(size)
    ss = _supersampling(size)
    cv = _Canvas(size, ss)
    S = cv.S
    cx, cy, a, b, n = w.cx, w.cy, w.half_w, w.half_h, w.roundness
    noise = None

    # Background and drop shadow are smooth: computed at the output size, then stretched to the canvas.
    pix = (np.arange(size, dtype=np.float32) + 0.5) / size
    top, bottom = _rgb(w.background_top), _rgb(w.background_bottom)
    # A light sweep, top to bottom, darkening slightly away from the centre.
    backdrop = (top + (bottom - top) * pix[:, None, None]) * (
        1 - 2 * w.vignette * ((pix[None, :] - 0.5) ** 2 + (pix[:, None] - 0.5) ** 2)[..., None])
    if w.shadow is not None:
        # The silhouette, offset and blurred at a fixed low resolution (the same at every size).
        dx, dy, blur, strength = w.shadow
        sil = Image.new("L", (SHADOW_RES, SHADOW_RES), 0)
        draw = ImageDraw.Draw(sil)
        outline = _superellipse(cx + dx, cy + dy, a, b, n, w.bulge, points=32) * SHADOW_RES
        draw.polygon(outline.ravel().tolist(), fill=255)
        half = w.strap_width / 2
        draw.rectangle([(cx + dx - half) * SHADOW_RES, 0, (cx + dx + half) * SHADOW_RES, SHADOW_RES], fill=200)
        sil = sil.filter(ImageFilter.GaussianBlur(blur * SHADOW_RES)).resize((size, size), Image.BILINEAR)
        backdrop *= 1 - (strength / 255) * np.asarray(sil, np.float32)[..., None]
    backdrop = Image.fromarray(np.clip(backdrop + 0.5, 0, 255).astype(np.uint8), "RGB")
    cv.img[:] = np.asarray(backdrop.resize((S, S), Image.BILINEAR))

    # Strap: two trapezoids from under the case to the frame edges, narrowing (taper) and darkening as
    # they curve away from the camera.
    half, half_end = w.strap_width / 2, w.strap_width * w.taper / 2
    top_piece = [(cx - half, cy), (cx + half, cy), (cx + half_end, -0.01), (cx - half_end, -0.01)]
    bottom_piece = [(cx - half, cy), (cx + half, cy), (cx + half_end, 1.01), (cx - half_end, 1.01)]
    if w.strap == "leather":
        noise = _noise(w.texture_seed, S)
    strap_colour = _strap_field(w, noise, S)
    cv.paint(cv.mask(top_piece, bottom_piece), strap_colour)

    # Crown (and chronograph pushers) on the right, under the case edge.
    crown_x0 = cx + _edge_radius(a, b, n, math.pi / 2) - 0.01
    parts = [[(crown_x0, cy - w.crown_h / 2), (crown_x0 + w.crown_len, cy - w.crown_h / 2),
              (crown_x0 + w.crown_len, cy + w.crown_h / 2), (crown_x0, cy + w.crown_h / 2)]]
    if w.pushers:
        for angle in (math.radians(58), math.radians(122)):
            r = _edge_radius(a, b, n, angle) - 0.01
            parts.append(_radial(cx, cy, angle, [(r, -0.02), (r + 0.03, -0.017), (r + 0.03, 0.017), (r, 0.02)]))
    # The crown is a cylinder lying along x: brightest along its middle row.
    cv.paint(cv.mask(*parts), lambda x, y: _metal_field(w.metal_rgb, w.shine, 0.6 - 3 * np.abs(y - cy) / w.crown_h))

    # Case and lugs: one polished metal piece, lit from `light`.
    case = _superellipse(cx, cy, a, b, n, w.bulge)
    lugs = []
    if w.lugs:
        lug_w = 0.045
        reach = _edge_radius(a, b, n, 0) + 0.045
        for side in (-1, 1):
            x_in = cx + side * (w.strap_width / 2 + 0.004)
            x_out = x_in + side * lug_w
            for sign in (-1, 1):
                y_end = cy + sign * reach
                # Slightly tapered towards the tip, where the spring bar holds the strap.
                lugs.append([(x_in, cy), (x_out, cy), (x_out, y_end - sign * 0.015),
                             (x_out - side * 0.012, y_end), (x_in, y_end)])
    cos_l, sin_l = math.cos(w.light), math.sin(w.light)
    scale = max(a, b) * 1.1

    def lit(x, y, flip=1.0):
        return flip * ((x - cx) * cos_l + (y - cy) * sin_l) / scale

    cv.paint(cv.mask(case, *lugs), lambda x, y: _metal_field(w.metal_rgb, w.shine, lit(x, y)))

    # Bezel. Inner parts are painted over outer ones: case, bezel ring, (insert), dial.
    k = 1 - w.bezel_width
    if w.bezel in ("polished", "fluted"):
        ring = _superellipse(cx, cy, a * (1 - 0.035), b * (1 - 0.035), n, w.bulge)
        flutes = 60 if w.bezel == "fluted" else 0

        def bezel_field(x, y):
            t = lit(x, y, -0.9)  # a bevel faces the other way from the case side: reversed ramp
            if flutes:
                t = t + 0.45 * np.sin(flutes * np.arctan2(y - cy, x - cx))
            return _metal_field(w.metal_rgb, w.shine, t)

        cv.paint(cv.mask(ring), bezel_field)
    elif w.bezel == "insert":
        ring = _superellipse(cx, cy, a * 0.95, b * 0.95, n)
        insert_hi = _rgb(w.insert_rgb) * 1.25 + 18
        insert_hi2 = None if w.insert_rgb2 is None else _rgb(w.insert_rgb2) * 1.25 + 18

        def insert_field(x, y):
            t = lit(x, y)[..., None]
            col = insert_hi * (0.75 + 0.25 * t)  # ceramic/aluminium: a soft sheen only
            if insert_hi2 is not None:
                col = np.where((y < cy)[..., None], col, insert_hi2 * (0.75 + 0.25 * t))
            return col

        cv.paint(cv.mask(ring), insert_field)
        # A thin polished rehaut between the insert and the dial.
        rehaut = _superellipse(cx, cy, a * (k + 0.03), b * (k + 0.03), n)
        cv.paint(cv.mask(rehaut), lambda x, y: _metal_field(w.metal_rgb, w.shine * 0.6, lit(x, y, -1)) * 0.9)

    # Dial.
    da, db = a * k, b * k
    R = min(da, db)
    dial_mask = cv.mask(_superellipse(cx, cy, da, db, n, w.bulge))
    if w.dial_texture == "grain" and noise is None:
        noise = _noise(w.texture_seed, S)
    cv.paint(dial_mask, _dial_field(w, R, noise))
    for ox, oy in w.subdials:
        sx, sy, sr = cx + ox * R, cy + oy * R, 0.26 * R
        sub = cv.mask(ellipses=[(sx - sr, sy - sr, sx + sr, sy + sr)])
        sub_rgb = _rgb(w.subdial_rgb)

        def subdial_field(x, y, sx=sx, sy=sy, sr=sr):  # snailed: fine concentric grooves
            r = np.sqrt((x - sx) ** 2 + (y - sy) ** 2) / sr
            return sub_rgb * (0.94 + 0.06 * np.sin(r * 40))[..., None] + 6

        cv.paint(sub, subdial_field)

    # Details drawn straight onto the supersampled RGB image.
    im = Image.fromarray(np.clip(cv.img, 0, 255).astype(np.uint8), "RGB")
    _draw_details(ImageDraw.Draw(im), w, S, R, crown_x0)
    out = np.asarray(im.reduce(ss), np.float32)  # box filter: each output pixel averages ss x ss

    # Crystal: a faint diagonal reflection over the dial, added after downsampling (it is smooth).
    if w.glare > 0:
        dial_alpha = np.asarray(dial_mask.reduce(ss), np.float32)[..., None] / 255
        t = ((pix[None, :] - cx) * math.cos(w.glare_angle) + (pix[:, None] - cy) * math.sin(w.glare_angle)) / R
        band = np.exp(-(((t - 0.35) / 0.3) ** 2))[..., None]
        out = out + w.glare * band * dial_alpha * (255 - out)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _strap_field(w: Watch, noise, S: int):
    cx, cy = w.cx, w.cy
    base, second = _rgb(w.strap_rgb), _rgb(w.strap_rgb2)
    half = w.strap_width / 2

    def field(x, y):
        u = (x - cx) / half                  # -1..1 across the strap (ignoring the taper)
        away = np.abs(y - cy) / 0.5          # 0 at the case, 1 at the frame edge
        falloff = (1 - 0.3 * away ** 2)[..., None]
        if w.strap == "leather":
            # Padded leather: rounded edges darker; the grain is smooth noise.
            g = (1 - 0.38 * u ** 2)[..., None] * (1 + 0.05 * noise[_rows(y, S), _cols(x, S)][..., None])
            return base * g * falloff
        if w.strap == "rubber":
            groove = (np.mod(np.abs(y - cy) / w.strap_period, 1.0) < 0.22)
            g = (1 - 0.35 * u ** 2) * np.where(groove, 0.72, 1.0)
            return (base * g[..., None] + 10 * (1 - u ** 2)[..., None]) * falloff
        if w.strap == "nato":
            stripe = (np.abs(u) > 0.18) & (np.abs(u) < 0.42)
            col = np.where(stripe[..., None], second, base)
            weave = 1 + 0.05 * np.sin(np.abs(y - cy) * 900)  # woven nylon ribs
            return col * ((1 - 0.2 * u ** 2) * weave)[..., None] * falloff
        # Bracelet: rows of links with dark gaps between them, each link a short cylinder across the band
        # (bright at mid-length). With 3 or 5 columns the odd ones are polished (brighter, shinier) and the
        # outer ones brushed; 5-column centre links are half as long (jubilee style).
        col_pos = (u + 1) / 2 * w.link_columns
        polished = (np.mod(np.floor(col_pos), 2) == 1) & (w.link_columns > 1)
        period = np.where(polished & (w.link_columns == 5), w.strap_period / 2, w.strap_period)
        phase = np.mod(np.abs(y - cy) / period, 1.0)
        row = np.where(phase < 0.16, 0.35, 0.72 + 0.34 * np.sin(np.pi * (phase - 0.16) / 0.84))
        seam = (np.abs(col_pos - np.round(col_pos)) < 0.06) & (np.abs(u) < 0.97)
        lit = (0.25 - 0.5 * u * math.cos(w.light)) + np.zeros_like(y)
        brushed = _metal_field(base, w.shine * 0.6, lit)
        shiny = _metal_field(second, w.shine, lit + 0.15)
        g = row * np.where(seam, 0.7, 1.0)
        return np.where(polished[..., None], shiny, brushed) * g[..., None] * falloff

    return field


def _rows(y, S):
    return np.minimum((y[:, 0] * S).astype(np.int64), S - 1)[:, None]


def _cols(x, S):
    return np.minimum((x[0] * S).astype(np.int64), S - 1)[None, :]


def _dial_field(w: Watch, R: float, noise):
    cx, cy = w.cx, w.cy
    base = _rgb(w.dial_rgb)
    c2, s2 = math.cos(2 * w.texture_angle), math.sin(2 * w.texture_angle)
    S = None if noise is None else noise.shape[0]

    def field(x, y):
        dx, dy = x - cx, y - cy
        r2 = (dx * dx + dy * dy) / (R * R)
        tex = w.dial_texture
        if tex == "sunburst":
            # Brushed radially, so brightness follows the angle: g = 1 + 0.22 cos(2 (theta - phi)),
            # with cos 2theta = (dx^2 - dy^2) / r^2 and sin 2theta = 2 dx dy / r^2 (no arctan needed).
            rr = dx * dx + dy * dy + 1e-9
            g = 1 + 0.22 * (c2 * (dx * dx - dy * dy) + s2 * 2 * dx * dy) / rr
        elif tex == "fume":
            g = np.maximum(1.22 - 0.8 * r2, 0.35)  # smoked: dark towards the edge
        elif tex == "guilloche":
            g = 1 + 0.08 * np.sin(np.sqrt(r2) * 80)
        elif tex == "clous":
            f = 2 * np.pi / (0.09 * R)
            g = 1 + 0.07 * np.sin(dx * f) * np.sin(dy * f)
        elif tex == "grain":
            g = 1 + 0.035 * noise[_rows(y, S), _cols(x, S)]
        else:
            g = 1.04 - 0.08 * r2
        g = g[..., None]
        # Multiplicative for light dials; the additive part makes the texture show on black ones too.
        return base * g + 55 * (g - 1)

    return field


def _draw_details(draw: ImageDraw.ImageDraw, w: Watch, S: int, R: float, crown_x0: float) -> None:
    """Flat-coloured parts drawn with PIL on the S x S canvas: R is the dial radius, crown_x0 the crown's
    inner end."""
    cx, cy = w.cx, w.cy
    da, db = w.half_w * (1 - w.bezel_width), w.half_h * (1 - w.bezel_width)
    n = w.roundness

    def px(points):
        return [(x * S, y * S) for x, y in points]

    def line(p0, p1, width, fill):
        draw.line([p0[0] * S, p0[1] * S, p1[0] * S, p1[1] * S], fill=fill, width=max(1, round(width * S)))

    def disc(x, y, r, fill):
        draw.ellipse([(x - r) * S, (y - r) * S, (x + r) * S, (y + r) * S], fill=fill)

    def text(x, y, s, height, fill):
        px_size = round(height * S)
        if px_size >= 4:  # smaller would be a blot either way
            draw.text((x * S, y * S), s, fill=fill, font=_font(px_size), anchor="mm")

    def colour(rgb, gain=1.0):
        return tuple(int(max(0, min(255, c * gain))) for c in rgb)

    # Crown knurling.
    dark_metal = colour(w.metal_rgb, 0.45)
    for i in range(1, 5):
        y = cy - w.crown_h / 2 + i * w.crown_h / 5
        line((crown_x0 + 0.012, y), (crown_x0 + w.crown_len, y), 0.003, dark_metal)

    # Leather: stitching along both edges, from the lug ends out of frame, and a keeper loop below.
    if w.strap == "leather":
        reach = _edge_radius(w.half_w, w.half_h, n, 0) + (0.05 if w.lugs else 0.01)
        stitch = colour(w.strap_rgb2)

        def strap_half_width(y):  # the strap narrows linearly towards the frame edges (taper)
            return w.strap_width / 2 * (1 - (1 - w.taper) * abs(y - cy) / 0.5)

        for sign in (-1, 1):
            y0, y1 = cy + sign * reach, (0.0 if sign < 0 else 1.0)
            steps = int(abs(y1 - y0) / 0.022)
            for i in range(steps):
                ya = y0 + (y1 - y0) * (i + 0.2) / steps
                yb = y0 + (y1 - y0) * (i + 0.75) / steps
                for side in (-1, 1):
                    x = cx + side * strap_half_width(ya) * 0.82
                    line((x, ya), (x, yb), 0.005, stitch)
        y = cy + reach + 0.07
        half = strap_half_width(y) + 0.004
        draw.rectangle(px([(cx - half, y), (cx + half, y + 0.045)]), fill=colour(w.strap_rgb, 0.8))
        line((cx - half, y), (cx + half, y), 0.004, colour(w.strap_rgb, 0.5))

    # Bezel marks on an insert: minute ticks, a triangle at 12, numerals every ten minutes.
    if w.bezel == "insert" and w.bezel_marks != "none":
        r_out, r_in = w.half_w * 0.93, w.half_w * (1 - w.bezel_width + 0.05)
        mark = (236, 236, 230)
        for m in range(60):
            angle = m * math.pi / 30
            if m == 0:
                tri = _radial(cx, cy, 0, [(r_out, -0.022), (r_out, 0.022), (r_in + 0.004, 0)])
                draw.polygon(px(tri), fill=mark)
            elif m % 5 == 0:
                if w.bezel_marks == "numbers" and m % 10 == 0:
                    x, y = _radial(cx, cy, angle, [((r_out + r_in) / 2, 0)])[0]
                    text(x, y, str(m), (r_out - r_in) * 0.8, mark)
                else:
                    line(*_radial(cx, cy, angle, [(r_out, 0), (r_in + 0.006, 0)]), 0.007, mark)
            elif m < 15:
                line(*_radial(cx, cy, angle, [(r_out, 0), (r_out - 0.012, 0)]), 0.003, mark)

    # Minute track around the dial edge.
    ink = colour(w.index_rgb) if _luma(w.index_rgb) < 150 or _luma(w.dial_rgb) < 130 else colour(w.index_rgb, 0.6)
    if w.minute_track:
        for m in range(60):
            angle = m * math.pi / 30
            r = _edge_radius(da, db, n, angle) * 0.97
            line(*_radial(cx, cy, angle, [(r, 0), (r - (0.03 if m % 5 == 0 else 0.015) * R / 0.2, 0)]), 0.0025, ink)

    # Hour indices, skipping where a subdial or the date window sits.
    skip = {_hour_at(ox, oy) for ox, oy in w.subdials} | ({3} if w.date else set())
    idx = colour(w.index_rgb)
    shade = colour(w.dial_rgb, 0.55)
    depth = 0.006 * R / 0.2  # applied indices cast a small shadow down-right
    font_h = 0.16 * R
    roman = {12: "XII", 3: "III", 6: "VI", 9: "IX"}
    for h in range(12):
        hour = 12 if h == 0 else h
        if hour in skip:
            continue
        angle = h * math.pi / 6
        r = _edge_radius(da, db, n, angle) * (0.86 if w.minute_track else 0.92)
        length = 0.17 * R * (1.2 if hour in (12, 3, 6, 9) else 1.0)
        width = 0.055 * R
        if w.indices == "numerals" or (w.indices == "roman" and hour in roman):
            label = roman[hour] if w.indices == "roman" else str(hour)
            x, y = _radial(cx, cy, angle, [(r - font_h * (0.6 if w.indices == "roman" else 0.55), 0)])[0]
            text(x, y, label, font_h * (1.0 if w.indices == "numerals" else 1.15), idx)
            continue
        if w.indices == "dots":
            x, y = _radial(cx, cy, angle, [(r - 0.05 * R, 0)])[0]
            rad = 0.055 * R * (1.3 if hour in (12, 3, 6, 9) else 1.0)
            disc(x + depth, y + depth, rad, shade)
            disc(x, y, rad, idx)
            continue
        if w.indices == "wedges":
            shape = [(r, -width * 1.1), (r, width * 1.1), (r - length * 1.2, 0)]
        elif w.indices == "roman":
            shape = [(r, -width * 0.3), (r, width * 0.3), (r - length, width * 0.3), (r - length, -width * 0.3)]
        else:
            shape = [(r, -width / 2), (r, width / 2), (r - length, width / 2), (r - length, -width / 2)]
        if hour == 12 and w.indices == "sticks":  # a double baton at 12
            for off in (-width * 0.8, width * 0.8):
                poly = [(al, ac + off) for al, ac in shape]
                draw.polygon(px([(x + depth, y + depth) for x, y in _radial(cx, cy, angle, poly)]), fill=shade)
                draw.polygon(px(_radial(cx, cy, angle, poly)), fill=idx)
            continue
        draw.polygon(px([(x + depth, y + depth) for x, y in _radial(cx, cy, angle, shape)]), fill=shade)
        draw.polygon(px(_radial(cx, cy, angle, shape)), fill=idx)

    # Brand under 12 (unless a subdial sits there), a line of small print above 6.
    if not any(oy < -0.3 for _, oy in w.subdials):
        text(cx, cy - 0.45 * R, w.brand, 0.13 * R, ink)
    if not any(oy > 0.3 for _, oy in w.subdials):
        line((cx - 0.18 * R, cy + 0.5 * R), (cx + 0.18 * R, cy + 0.5 * R), 0.004 * R / 0.2, ink)

    # Subdials: a ring, a few ticks and a small hand each.
    for j, (ox, oy) in enumerate(w.subdials):
        sx, sy, sr = cx + ox * R, cy + oy * R, 0.26 * R
        sub_ink = (236, 236, 230) if _luma(w.subdial_rgb) < 130 else (30, 30, 34)
        draw.ellipse(px([(sx - sr, sy - sr), (sx + sr, sy + sr)]), outline=sub_ink, width=max(1, round(0.004 * S)))
        for q in range(4):
            line(*_radial(sx, sy, q * math.pi / 2, [(sr * 0.95, 0), (sr * 0.72, 0)]), 0.0035, sub_ink)
        hand_angle = (w.second * (j + 1) * 7.3 % 60) / 30 * math.pi
        line(*_radial(sx, sy, hand_angle, [(-0.1 * sr, 0), (0.85 * sr, 0)]), 0.004, colour(w.second_rgb))

    # Date window at 3 o'clock.
    if w.date:
        r = _edge_radius(da, db, n, math.pi / 2) * 0.72
        hw, hh = 0.085 * R, 0.07 * R
        x = cx + r
        fw, fh = hw + 0.005, hh + 0.005  # a thin metal frame
        draw.rectangle(px([(x - fw, cy - fh), (x + fw, cy + fh)]), fill=colour(w.metal_rgb))
        draw.rectangle(px([(x - hw, cy - hh), (x + hw, cy + hh)]), fill=(246, 244, 238))
        text(x, cy, str(1 + w.texture_seed % 31), hh * 1.7, (20, 20, 22))

    # Hands at the watch's time, each with a small shadow on the dial.
    hour_angle = (w.hour % 12 + w.minute / 60) / 12 * 2 * math.pi
    minute_angle = (w.minute + w.second / 60) / 60 * 2 * math.pi
    second_angle = w.second / 60 * 2 * math.pi
    hand = colour(w.hand_rgb)
    hand_dark = colour(w.hand_rgb, 0.7)
    for angle, length, width in ((hour_angle, 0.55 * R, 0.085 * R), (minute_angle, 0.85 * R, 0.065 * R)):
        if w.hands == "baton":
            tail = -0.12 * length
            halves = [[(tail, -width / 2), (length, -width / 2), (length, width / 2), (tail, width / 2)]]
        elif w.hands == "sword":
            side = [(-0.1 * length, width * 0.3), (0.12 * length, width * 0.55), (0.78 * length, width * 0.55)]
            halves = [[(al, -ac) for al, ac in side] + [(length, 0)] + side[::-1]]
        else:  # dauphine: two facets, one catching the light
            halves = [[(-0.05 * length, 0), (0.15 * length, -width * 0.7), (length, 0)],
                      [(-0.05 * length, 0), (0.15 * length, width * 0.7), (length, 0)]]
        for facet in halves:
            draw.polygon(px([(x + depth * 1.5, y + depth * 1.5) for x, y in _radial(cx, cy, angle, facet)]), fill=shade)
        for f, facet in enumerate(halves):
            draw.polygon(px(_radial(cx, cy, angle, facet)), fill=hand_dark if f == 1 else hand)
        if w.hands == "baton" and _luma(w.dial_rgb) < 130:  # lume fill
            inner = [(0.2 * length, -width * 0.25), (0.92 * length, -width * 0.25), (0.92 * length, width * 0.25),
                     (0.2 * length, width * 0.25)]
            draw.polygon(px(_radial(cx, cy, angle, inner)), fill=(236, 234, 214))
    sec = colour(w.second_rgb)
    line(*_radial(cx, cy, second_angle, [(-0.22 * R, 0), (0.92 * R, 0)]), 0.012 * R, sec)
    disc(cx, cy, 0.05 * R, hand)
    disc(cx, cy, 0.028 * R, sec)


def _hour_at(ox: float, oy: float) -> int:
    """The hour marker a subdial centred at (ox, oy) dial radii from the centre covers."""
    angle = math.atan2(ox, -oy) % (2 * math.pi)
    hour = round(angle / (math.pi / 6)) % 12
    return 12 if hour == 0 else hour


# ----------------------------------------------------------------------------------------------------
# Public API.


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"watch size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}; "
                         f"render at a supported size and resize the result if you need another one")


def render_watch(seed: int | Sequence[int], size: int = 64) -> np.ndarray:
    """One wrist watch as an RGB uint8 array of shape (size, size, 3), for any size from 16 to 512.
    `seed` seeds np.random.default_rng (an int or a sequence of ints); the same seed gives the same watch,
    at every size."""
    _check_size(size)
    return draw_watch(sample_watch(np.random.default_rng(seed)), size)


class WristWatches(torch.utils.data.Dataset):
    """`length` embedded wrist-watch product photos, `size` x `size`; item i is a float32 3 x size x size
    tensor in [-1, 1] (the image only, no label, like torchvision's unconditional GAN datasets).

    Item i is the watch render_watch([seed, i], size): the same whatever order items are asked in and in
    any DataLoader worker; different seeds give different watches (seed=0 for training, another seed for a
    disjoint set). cache=True keeps rendered items in a plain dict, per process (each DataLoader worker has
    its own), as uint8: size*size*3 bytes each, 12 KB at 64 px, so 60 000 items take about 0.7 GB.
    """

    def __init__(self, length: int, size: int = 64, seed: int = 0, cache: bool = True):
        if not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"WristWatches needs length >= 1 (how many watches), got {length!r}")
        _check_size(size)
        self.length, self.size, self.seed, self.cache = int(length), int(size), int(seed), cache
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def image(self, i: int) -> np.ndarray:
        """Item i as the uint8 H x W x 3 RGB array (for plots)."""
        if not -self.length <= i < self.length:
            raise IndexError(f"watch index {i} is out of range for a WristWatches of length {self.length}")
        i = int(i) % self.length
        img = self._cache.get(i)
        if img is None:
            img = render_watch([self.seed, i], self.size)
            if self.cache:
                self._cache[i] = img
        return img

    def __getitem__(self, i: int) -> torch.Tensor:
        img = torch.from_numpy(self.image(i).copy()).permute(2, 0, 1)
        return img.float().div_(127.5).sub_(1.0)


def watch_grid(n: int = 64, size: int = 64, seed: int = 0, pad: int = 2) -> np.ndarray:
    """The first n watches of WristWatches(n, size, seed) tiled in a near-square grid, uint8 RGB."""
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (size + pad) + pad, cols * (size + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (size + pad), pad + c * (size + pad)
        grid[y:y + size, x:x + size] = render_watch([seed, i], size)
    return grid


def benchmark(sizes=(32, 64, 128), count: int = 200) -> dict:
    """Images per CPU-second of render_watch at each size, in this process (numpy renders on one core).
    CPU time rather than wall time, so other work on a shared machine does not skew the figure."""
    rates = {}
    for size in sizes:
        render_watch(0, size)
        start = time.process_time()
        for i in range(count):
            render_watch([12345, i], size)
        rates[size] = count / (time.process_time() - start)
    return rates


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Render embedded wrist watches.")
    parser.add_argument("--out", help="PNG path for a grid of watches")
    parser.add_argument("--n", type=int, default=64, help="how many watches in the grid")
    parser.add_argument("--size", type=int, default=64, help="pixels per watch (16 to 512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bench", action="store_true", help="print images/s at 32, 64 and 128 px")
    args = parser.parse_args(argv)
    if not args.out and not args.bench:
        parser.error("give --out PATH.png, --bench, or both")
    if args.out:
        Image.fromarray(watch_grid(args.n, args.size, args.seed)).save(args.out)
        print(f"saved {args.n} watches at {args.size} px to {args.out}")
    if args.bench:
        for size, rate in benchmark().items():
            print(f"{size:4d} px: {rate:7.1f} images/s")


if __name__ == "__main__":
    main()
