"""Street scenes by code: a Cityscapes-coloured label map, a day photo and a night photo of one scene.

Three notebooks share these triplets: CycleGAN night->day (unpaired night and day images, the
true day kept for evaluation), pix2pix / SPADE label->photo (paired) and colorization.

How a scene is made:

1. Layout, in metres, from the scene's random generator and nothing else: a pinhole camera
   (focal length, horizon row, vanishing point, camera height) looks down a straight street.
   Road, lanes, sidewalks, buildings with windows, walls, fences, trees, lamp posts, traffic
   lights and signs, people and vehicles are boxes and flat shapes in that world.
2. Rasterisation: every shape is projected and drawn far to near (painter's order) into ONE
   integer canvas of "part" indices with PIL. A part knows its class, its base colour, the
   world plane it lies in, its material and the light it emits at night.
3. Shading, vectorised in numpy: from each pixel's part and plane we recover its world
   position, which gives perspective-correct textures (windows, lane marks, paving joints)
   and, at night, the light each street lamp and headlight throws on it.

Because the layout never looks at the image size, one seed at two sizes is the same scene,
and a wider image shows more of the street's sides. Scene `i` of `StreetScenes(seed=s)` draws
from `np.random.default_rng([s, i])`, so items do not depend on access order or worker.
Use seed 0 for training and seed 1 for testing: the two sets share no scene.

    python -m ganlib.embedded.streets --out streets.png --n 8 --size 128
"""
import argparse
import functools
import math
import random
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganlib.cityscapes import PALETTE
from ganlib.errors import GanlibError

# Cityscapes trainIds of the classes drawn here.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN = range(8)
VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS = range(8, 16)

# Materials: how a part is textured after rasterisation.
PLAIN, FACADE, ASPHALT, PAVING, GRASS, FOLIAGE, GLASS, SLATS = range(8)

# The plane a part lies in, for its pixels' world positions: Y = c (ground, roofs), X = c
# (faces along the street) or Z = c (faces towards the camera, and flat people and trees).
PLANE_Y, PLANE_X, PLANE_Z = 1, 2, 3

DARK = (0, 0, 0)
FACADE_COLORS = [
    (205, 190, 165), (228, 218, 195), (150, 82, 62), (118, 66, 52), (150, 150, 150),
    (188, 186, 180), (202, 160, 102), (222, 206, 150), (160, 170, 182), (226, 226, 220),
    (206, 142, 116), (96, 96, 102), (142, 152, 132), (176, 120, 90),
]
CAR_COLORS = [
    (30, 30, 34), (220, 222, 225), (150, 152, 158), (90, 92, 98), (160, 20, 25), (20, 45, 120),
    (30, 80, 50), (200, 200, 205), (110, 20, 30), (60, 110, 170), (235, 190, 40), (20, 20, 20),
]
BUS_COLORS = [(200, 30, 35), (230, 190, 30), (235, 235, 235), (40, 110, 60), (30, 90, 170)]
CLOTHES = [
    (30, 30, 35), (40, 50, 90), (150, 30, 40), (200, 200, 195), (90, 90, 95), (120, 90, 60),
    (60, 100, 60), (200, 160, 60), (70, 120, 180), (170, 70, 120),
]
SKIN = [(235, 195, 165), (200, 150, 110), (150, 100, 70), (95, 65, 45)]
GLASS_COLOR = (50, 58, 72)
HEADLIGHT, TAIL_LIGHT = (255, 255, 235), (255, 35, 20)
LAMP_LIGHTS = [(2.0, 1.45, 0.75), (1.9, 1.6, 1.2), (1.6, 1.7, 1.85)]  # sodium, warm, LED


@dataclass
class StreetScene:
    label: np.ndarray  # HxWx3 uint8, official Cityscapes colours
    ids: np.ndarray  # HxW uint8 trainIds
    day: np.ndarray  # HxWx3 uint8
    night: np.ndarray  # HxWx3 uint8


@dataclass
class Camera:
    focal: float  # focal length, in image heights
    horizon: float  # image row of the horizon, in image heights from the top
    vp_x: float  # the vanishing point's offset from the image centre, in image heights
    height: float  # metres above the road


@dataclass
class Light:
    """A night light: a point light, or a beam along +Z or -Z (headlights)."""

    pos: tuple[float, float, float]
    color: tuple[float, float, float]  # per-channel strength; lights of one colour share a pass
    radius: float  # metres at which the light has fallen to about a third
    beam: int = 0  # 0: all directions; +1 / -1: a beam along +Z / -Z


class Facade(NamedTuple):
    """The window grid of one building face, in the face's own metres (a tuple of numbers,
    so a scene's facades stack straight into one numpy table)."""

    s0: float  # where the first window column starts along the face
    s_sign: float  # the along-face coordinate is s_sign * Z (faces along the street) or * X
    col_w: float  # column pitch
    n_cols: int
    win_w: float  # window width, as a share of the pitch
    floor_h: float
    win_h: float  # window height, as a share of a floor
    ground_h: float  # ground floor height: shop windows there, or none
    n_floors: int
    shop: bool
    lit: float  # chance that a window is lit at night
    key: int  # the building's identity in the window hash
    glass: float  # grey level of the window glass (tinted blue when shaded)


class Painter:
    """Projects world shapes into a canvas of part indices and keeps each part's properties."""

    def __init__(self, cam: Camera, height: int, width: int):
        self.h, self.w = height, width
        self.fh = cam.focal * height  # focal length in pixels
        self.cx = width / 2 + cam.vp_x * height  # the vanishing point, in pixels
        self.cy = cam.horizon * height
        self.cam_h = cam.height
        self.canvas = Image.new("I", (width, height), 0)
        self.draw = ImageDraw.Draw(self.canvas)
        # (class, colour, emitted colour, plane kind, plane value, material, facade); part 0
        # is the sky, what every pixel shows until something is drawn over it.
        self.parts = [(SKY, DARK, DARK, 0, 0.0, PLAIN, None)]
        self.lights: list[Light] = []

    def part(self, cls, color, plane, material=PLAIN, emit=DARK, facade=None) -> int:
        self.parts.append((cls, color, emit, plane[0], plane[1], material, facade))
        return len(self.parts) - 1

    def polygon(self, points, part):
        cx, cy, fh, eye = self.cx, self.cy, self.fh, self.cam_h
        self.draw.polygon([(cx + fh * x / z, cy + fh * (eye - y) / z) for x, y, z in points], fill=part)

    def face_z(self, x0, x1, y0, y1, z, part, min_px=0.0):
        """Rectangle in the plane Z = z; at least `min_px` wide so thin poles never vanish."""
        k = self.fh / z
        u0, u1 = self.cx + k * x0, self.cx + k * x1
        if u1 - u0 < min_px:
            mid = (u0 + u1) / 2
            u0, u1 = mid - min_px / 2, mid + min_px / 2
        v0, v1 = self.cy + k * (self.cam_h - y1), self.cy + k * (self.cam_h - y0)
        self.draw.polygon([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], fill=part)

    def face_x(self, x, y0, y1, z0, z1, part):
        self.polygon([(x, y0, z0), (x, y1, z0), (x, y1, z1), (x, y0, z1)], part)

    def face_y(self, x0, x1, y, z0, z1, part):
        self.polygon([(x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1)], part)

    def ellipse(self, x, y, z, rx, ry, part):
        k = self.fh / z
        u, v = self.cx + k * x, self.cy + k * (self.cam_h - y)
        a, b = max(k * rx, 0.6), max(k * ry, 0.6)
        self.draw.ellipse([u - a, v - b, u + a, v + b], fill=part)

    def box(self, cls, color, x0, x1, y0, y1, z0, z1, sun=1.0):
        """The visible faces of an axis-aligned box: top (below eye level), the side turned
        towards the camera's line of sight, and the near face. Returns the side's X or None."""
        if y1 < self.cam_h:
            self.face_y(x0, x1, y1, z0, z1, self.part(cls, shade(color, 1.07), (PLANE_Y, y1)))
        side_x = x1 if x1 < 0 else (x0 if x0 > 0 else None)
        if side_x is not None:
            self.face_x(side_x, y0, y1, z0, z1, self.part(cls, shade(color, 0.78 * sun), (PLANE_X, side_x)))
        self.face_z(x0, x1, y0, y1, z0, self.part(cls, color, (PLANE_Z, z0)))
        return side_x


def shade(color, k):
    return (color[0] * k, color[1] * k, color[2] * k)


def jitter(rnd: random.Random, color, amount=14.0):
    return tuple(min(255.0, max(0.0, c + rnd.uniform(-amount, amount))) for c in color)


# ---------------------------------------------------------------------------------------------
# Layout. Everything here draws random numbers from `rnd` only, never looking at image size.


@dataclass
class Street:
    cam: Camera
    road_cx: float  # X of the road's middle (the camera drives in a lane, off-centre)
    road_half: float
    walk: tuple[float, float]  # sidewalk widths, left and right
    verge: tuple[float, float]  # grass strip between sidewalk and building line
    lanes: list[float]  # X of each lane's middle
    lane_dir: list[int]  # -1 oncoming (fronts visible), +1 going away (rears visible)
    end: float  # Z of a cross street closing the view, or inf
    sun: float  # +1 sun from the right, -1 from the left
    lamp_light: tuple
    road_color: tuple
    walk_color: tuple
    grass_color: tuple
    marks: dict

    def curb(self, side):  # X of the road's edge on side -1 (left) or +1 (right)
        return self.road_cx + side * self.road_half

    def building_line(self, side):
        i = (side + 1) // 2
        return self.curb(side) + side * (self.walk[i] + self.verge[i])


def make_street(rnd: random.Random) -> Street:
    cam = Camera(focal=rnd.uniform(0.72, 1.0), horizon=rnd.uniform(0.36, 0.52),
                 vp_x=rnd.uniform(-0.1, 0.1), height=rnd.uniform(1.35, 2.1))
    n_lanes = rnd.choice([2, 2, 2, 3, 4, 4])
    n_oncoming = n_lanes // 2
    lane_w = rnd.uniform(2.9, 3.6)
    road_half = n_lanes * lane_w / 2
    lanes = [-road_half + lane_w * (k + 0.5) for k in range(n_lanes)]
    own = rnd.randrange(n_oncoming, n_lanes)  # we drive in a going-away lane
    road_cx = -lanes[own] + rnd.uniform(-0.4, 0.4)
    lanes = [road_cx + x for x in lanes]
    bounds = [road_cx - road_half + lane_w * k for k in range(1, n_lanes)]
    walk = (rnd.uniform(1.6, 4.5), rnd.uniform(1.6, 4.5))
    verge = tuple(rnd.uniform(0.6, 3.0) if rnd.random() < 0.35 else 0.0 for _ in range(2))
    end = rnd.uniform(70, 160) if rnd.random() < 0.45 else math.inf
    g = rnd.uniform(70, 110)
    road_color = (g + rnd.uniform(-4, 6), g + rnd.uniform(-4, 4), g + rnd.uniform(-2, 8))
    w = rnd.uniform(140, 190)
    walk_color = (w + rnd.uniform(0, 12), w + rnd.uniform(-4, 6), w + rnd.uniform(-10, 4))
    grass_color = (rnd.uniform(70, 120), rnd.uniform(110, 150), rnd.uniform(40, 70))
    marks = dict(
        centre_x=bounds[n_oncoming - 1],
        lane_lines=[b for k, b in enumerate(bounds) if k != n_oncoming - 1],
        centre_double=rnd.random() < 0.35,
        paint=(235, 200, 60) if rnd.random() < 0.3 else (235, 235, 230),
        dash=rnd.uniform(2.5, 4.0), period=rnd.uniform(8.0, 12.0), phase=rnd.uniform(0, 12),
        edge=rnd.random() < 0.6,
        crosswalk=rnd.uniform(9, 30) if rnd.random() < 0.35 else None,
    )
    return Street(cam, road_cx, road_half, walk, verge, lanes, [-1 if k < n_oncoming else 1 for k in range(n_lanes)],
                  end, rnd.choice([-1.0, 1.0]), rnd.choice(LAMP_LIGHTS), road_color, walk_color, grass_color, marks)


def draw_ground(p: Painter, st: Street):
    near = 0.6
    ground = (PLANE_Y, 0.0)
    grass = p.part(TERRAIN, st.grass_color, ground, GRASS)
    p.draw.rectangle([0, int(p.cy), p.w, p.h], fill=grass)
    road = p.part(ROAD, st.road_color, ground, ASPHALT)
    z_far = 2000.0 if math.isinf(st.end) else st.end + 14
    left, right = st.curb(-1), st.curb(1)
    p.polygon([(left, 0, near), (right, 0, near), (right, 0, z_far), (left, 0, z_far)], road)
    for side in (-1, 1):
        walk = p.part(SIDEWALK, st.walk_color, ground, PAVING)
        x0, x1 = st.curb(side), st.curb(side) + side * st.walk[(side + 1) // 2]
        p.polygon([(x0, 0, near), (x1, 0, near), (x1, 0, z_far), (x0, 0, z_far)], walk)
    if not math.isinf(st.end):  # the cross street: road across the view, a sidewalk beyond
        x, z = 400.0, st.end
        p.polygon([(-x, 0, z), (x, 0, z), (x, 0, z + 12), (-x, 0, z + 12)], road)
        walk = p.part(SIDEWALK, st.walk_color, ground, PAVING)
        p.polygon([(-x, 0, z + 12), (x, 0, z + 12), (x, 0, z + 15), (-x, 0, z + 15)], walk)


def building_style(rnd: random.Random):
    tone = rnd.uniform(40, 80)
    return dict(
        col_w=rnd.uniform(2.2, 4.0), win_w=rnd.uniform(0.35, 0.65), floor_h=rnd.uniform(2.9, 3.6),
        win_h=rnd.uniform(0.4, 0.6), ground_h=rnd.uniform(3.2, 4.6), shop=rnd.random() < 0.5,
        lit=rnd.uniform(0.15, 0.6), glass=tone,
    )


def facade(style: dict, key: int, s0: float, s_sign: float, length: float, height: float) -> Facade:
    margin = min(1.0, length * 0.1)
    n_cols = max(0, int((length - 2 * margin) / style["col_w"]))
    n_floors = max(0, int((height - style["ground_h"] - 0.6) / style["floor_h"]))
    return Facade(s0 + (length - n_cols * style["col_w"]) / 2, s_sign, style["col_w"], n_cols, style["win_w"],
                  style["floor_h"], style["win_h"], style["ground_h"], n_floors, style["shop"], style["lit"],
                  key, style["glass"])


def draw_side(p: Painter, st: Street, rnd: random.Random, side: int):
    """Buildings, and walls, fences, hedges and trees in the gaps, along one side, far to near."""
    density = rnd.choice([0.95, 0.85, 0.7, 0.4, 0.0])  # 0: a park side without buildings
    tall = rnd.uniform(0.5, 1.6)
    items = []
    z = rnd.uniform(-6, 4)
    z_stop = min(st.end, 220.0)
    key = 1 + (side + 1) * 500
    while z < z_stop:
        if rnd.random() < density:
            length = rnd.uniform(9, 32)
            items.append(("building", z, length, dict(
                height=rnd.uniform(7, 26) * tall, setback=rnd.uniform(0, 1.2) if rnd.random() < 0.3 else 0.0,
                color=jitter(rnd, rnd.choice(FACADE_COLORS)), style=building_style(rnd), key=key)))
            key += 2
        else:
            length = rnd.uniform(4, 16)
            kind = rnd.choice(["wall", "fence", "hedge", "open", "fence", "wall"])
            items.append((kind, z, length, dict(
                height=rnd.uniform(0.9, 2.2),
                color=jitter(rnd, rnd.choice([(150, 148, 140), (175, 165, 150), (125, 110, 100), (160, 160, 165)])),
                trees=[(rnd.uniform(3, 12), rnd.uniform(0.2, 0.9), rnd.uniform(3, 6), rnd.uniform(2, 4),
                        jitter(rnd, (60, 100, 40), 18), rnd.getrandbits(16)) for _ in range(rnd.randrange(0, 3))])))
        z += length
    xb = st.building_line(side)
    sun = 1.0 if st.sun * side < 0 else 0.72  # the faces turned to the sun are brighter
    for kind, z0, length, prm in reversed(items):
        z1 = z0 + length
        if z1 <= 0.7:
            continue
        zc0 = max(z0, 0.7)
        if kind == "building":
            x, h, color, style = xb + side * prm["setback"], prm["height"], prm["color"], prm["style"]
            if z0 > 0.7:  # the end wall towards the camera, seen across the gap before it
                front = p.part(BUILDING, shade(color, 0.86), (PLANE_Z, z0), FACADE,
                               facade=facade(style, prm["key"] + 1, abs(x), float(side), 14.0, h))
                p.polygon([(x, 0, z0), (x + side * 14, 0, z0), (x + side * 14, h, z0), (x, h, z0)], front)
            face = p.part(BUILDING, shade(color, sun), (PLANE_X, x), FACADE,
                          facade=facade(style, prm["key"], z0, 1.0, length, h))
            p.face_x(x, 0, h, zc0, z1, face)
            continue
        for dz, dx, trunk, crown, green, shape in prm["trees"]:  # trees behind the building line
            tz = z0 + min(dz, length)
            if tz > 1.5:
                draw_tree(p, xb + side * (dx + crown * 0.5), tz, trunk, crown, green, shape)
        height, color = prm["height"], prm["color"]
        if kind == "wall":
            p.face_x(xb, 0, height, zc0, z1, p.part(WALL, shade(color, sun), (PLANE_X, xb)))
            p.face_x(xb, height - 0.12, height, zc0, z1, p.part(WALL, shade(color, sun * 1.15), (PLANE_X, xb)))
        elif kind == "fence":
            p.face_x(xb, 0, height, zc0, z1, p.part(FENCE, shade(color, sun * 0.8), (PLANE_X, xb), SLATS))
        elif kind == "hedge":
            p.face_x(xb, 0, height * 0.9, zc0, z1, p.part(VEGETATION, (55, 95, 40), (PLANE_X, xb), FOLIAGE))


def draw_far(p: Painter, st: Street, rnd: random.Random):
    """What closes the view: a cross street's buildings, or a distant skyline and tree line."""
    if not math.isinf(st.end):
        z, x = st.end + 15, -120.0
        while x < 120:
            w, h = rnd.uniform(8, 26), rnd.uniform(8, 30)
            color = jitter(rnd, rnd.choice(FACADE_COLORS))
            face = p.part(BUILDING, shade(color, 0.9), (PLANE_Z, z), FACADE,
                          facade=facade(building_style(rnd), 900 + int(x), x, 1.0, w, h))
            p.face_z(x, x + w, 0, h, z, face)
            x += w + (rnd.uniform(1, 6) if rnd.random() < 0.3 else 0)
        return
    if rnd.random() < 0.6:  # a skyline silhouette far away
        z, x, tone = 700.0, -1000.0, rnd.uniform(120, 170)
        outline = [(x, 0, z)]
        while x < 1000:
            h = rnd.uniform(15, 90)
            x_next = x + rnd.uniform(20, 80)
            outline += [(x, h, z), (x_next, h, z)]
            x = x_next + rnd.uniform(0, 60)
            outline += [(x_next, 0, z), (x, 0, z)]
        outline.append((x, 0, z))
        p.polygon(outline, p.part(BUILDING, (tone * 0.95, tone, tone * 1.05), (PLANE_Z, z)))
    if rnd.random() < 0.7:  # a tree line with a bumpy top
        z, x = 400.0, -700.0
        outline = [(x, 0, z)]
        while x < 700:
            outline.append((x, rnd.uniform(6, 16), z))
            x += rnd.uniform(6, 16)
        outline.append((x, 0, z))
        p.polygon(outline, p.part(VEGETATION, jitter(rnd, (70, 100, 55), 15), (PLANE_Z, z), FOLIAGE))


def draw_tree(p: Painter, x, z, trunk_h, crown_r, green, shape: int):
    """Trunk and a crown of three overlapping discs; `shape` (random bits) places the discs."""
    trunk = p.part(VEGETATION, (80, 62, 45), (PLANE_Z, z))
    p.face_z(x - 0.15, x + 0.15, 0, trunk_h + crown_r * 0.5, z, trunk, min_px=1.0)
    crown = p.part(VEGETATION, green, (PLANE_Z, z), FOLIAGE)
    cy = trunk_h + crown_r
    for k in range(3):
        bits = (shape >> (5 * k)) & 31
        dx = ((bits & 7) / 7 - 0.5) * crown_r * 0.9
        dy = ((bits >> 3) / 3 - 0.5) * crown_r * 0.6
        r = crown_r * (0.8 - 0.1 * k)
        p.ellipse(x + dx, cy + dy, z, r, r * 0.95, crown)


def draw_lamp(p: Painter, st: Street, x, z, height, arm, side):
    pole = p.part(POLE, (95, 100, 105), (PLANE_Z, z))
    p.face_z(x - 0.09, x + 0.09, 0, height, z, pole, min_px=1.0)
    ax = x - side * arm  # the arm reaches over the road
    p.face_z(min(x, ax), max(x, ax), height - 0.12, height, z, pole, min_px=1.0)
    head = p.part(POLE, (200, 200, 190), (PLANE_Z, z), emit=(255, 235, 190))
    p.face_z(ax - 0.35, ax + 0.35, height - 0.3, height - 0.1, z, head, min_px=1.0)
    p.lights.append(Light((ax, height - 0.3, z), st.lamp_light, radius=height * 0.7))


def draw_traffic_light(p: Painter, x, z, top, state):
    pole = p.part(POLE, (70, 75, 75), (PLANE_Z, z))
    p.face_z(x - 0.08, x + 0.08, 0, top, z, pole, min_px=1.0)
    box = p.part(TRAFFIC_LIGHT, (35, 38, 35), (PLANE_Z, z))
    p.face_z(x - 0.2, x + 0.2, top - 0.05, top + 0.95, z, box)
    colors = [(255, 40, 30), (255, 170, 20), (40, 255, 120)]  # red, amber, green
    on = p.part(TRAFFIC_LIGHT, colors[state], (PLANE_Z, z), emit=colors[state])
    p.ellipse(x, top + 0.78 - state * 0.3, z, 0.11, 0.11, on)


def draw_sign(p: Painter, x, z, y, r, kind, panel_color):
    pole = p.part(POLE, (150, 150, 150), (PLANE_Z, z))
    p.face_z(x - 0.04, x + 0.04, 0, y, z, pole, min_px=1.0)
    plane = (PLANE_Z, z)
    if kind == 0:  # prohibition: red ring, white disc
        p.ellipse(x, y + r, z, r, r, p.part(TRAFFIC_SIGN, (200, 25, 30), plane))
        p.ellipse(x, y + r, z, r * 0.72, r * 0.72, p.part(TRAFFIC_SIGN, (235, 235, 235), plane))
    elif kind == 1:  # warning: red triangle, white inside
        p.polygon([(x - r, y, z), (x + r, y, z), (x, y + 1.7 * r, z)], p.part(TRAFFIC_SIGN, (200, 25, 30), plane))
        p.polygon([(x - r * 0.6, y + 0.18 * r, z), (x + r * 0.6, y + 0.18 * r, z), (x, y + 1.25 * r, z)],
                  p.part(TRAFFIC_SIGN, (235, 235, 225), plane))
    elif kind == 2:  # mandatory: blue disc
        p.ellipse(x, y + r, z, r, r, p.part(TRAFFIC_SIGN, (25, 70, 170), plane))
    else:  # information panel
        p.face_z(x - r * 1.4, x + r * 1.4, y, y + r * 1.5, z, p.part(TRAFFIC_SIGN, panel_color, plane))


def draw_person(p: Painter, x, z, h, trousers, top_color, skin, stride):
    plane = (PLANE_Z, z)
    legs, top = p.part(PERSON, trousers, plane), p.part(PERSON, top_color, plane)
    hw = 0.2 * h / 1.75  # half the shoulder width
    p.polygon([(x - hw * 0.8 - stride, 0, z), (x - 0.02, 0, z), (x, 0.5 * h, z), (x - hw * 0.8, 0.5 * h, z)], legs)
    p.polygon([(x + 0.02, 0, z), (x + hw * 0.8 + stride, 0, z), (x + hw * 0.8, 0.5 * h, z), (x, 0.5 * h, z)], legs)
    p.polygon([(x - hw * 1.25, 0.48 * h, z), (x + hw * 1.25, 0.48 * h, z), (x + hw * 1.1, 0.82 * h, z),
               (x - hw * 1.1, 0.82 * h, z)], top)  # torso with the arms along it
    p.ellipse(x, 0.91 * h, z, 0.095 * h, 0.11 * h, p.part(PERSON, skin, plane))


@dataclass
class Vehicle:
    kind: str  # "car", "truck" or "bus"
    x: float  # middle
    z: float  # near face
    facing: int  # -1: its front faces us (oncoming), +1: we see its rear
    lights_on: bool
    color: tuple
    size: tuple  # width, length, roof height
    cargo: tuple  # a truck's cargo box colour


def make_vehicle(rnd: random.Random, kind, x, z, facing, lights_on) -> Vehicle:
    if kind == "car":
        size, color = (rnd.uniform(1.7, 1.9), rnd.uniform(3.9, 4.8), rnd.uniform(1.4, 1.6)), rnd.choice(CAR_COLORS)
    elif kind == "truck":
        size = (2.4, rnd.uniform(6.5, 9), rnd.uniform(2.9, 3.6))
        color = rnd.choice([(230, 230, 230), (200, 60, 40), (60, 90, 150), (210, 210, 200)])
    else:
        size, color = (2.55, rnd.uniform(11, 13), 3.1), rnd.choice(BUS_COLORS)
    cargo = jitter(rnd, rnd.choice([(220, 220, 220), color]), 10)
    return Vehicle(kind, x, z, facing, lights_on, jitter(rnd, color, 8), size, cargo)


def draw_vehicle(p: Painter, st: Street, v: Vehicle):
    """A car, truck or bus as boxes, far ones with fewer details; lamps on its near face."""
    cls = {"car": CAR, "truck": TRUCK, "bus": BUS}[v.kind]
    w, length, roof = v.size
    x, z, color = v.x, v.z, v.color
    x0, x1, z1 = x - w / 2, x + w / 2, z + length
    detail = z < 45  # wheels, plates and pillars only where they are big enough to see
    sun = 1.0 if st.sun * x > 0 else 0.7
    shadow = p.part(ROAD, shade(st.road_color, 0.45), (PLANE_Y, 0.0), ASPHALT)
    p.face_y(x0 - 0.15, x1 + 0.15, 0.0, z - 0.1, z1 + 0.2, shadow)
    tyre = p.part(cls, (25, 25, 28), (PLANE_Z, z))
    lamp_y = (0.55, 0.78)
    if v.kind == "car":
        side_x = p.box(cls, color, x0, x1, 0.3, 0.95, z, z1, sun)
        hood = 1.1 if v.facing < 0 else 0.8
        cz0, cz1 = z + hood, z1 - (0.8 if v.facing < 0 else 1.1)
        cab_side = p.box(cls, color, x0 + 0.14, x1 - 0.14, 0.95, roof, cz0, cz1, sun)
        glass = p.part(cls, GLASS_COLOR, (PLANE_Z, cz0), GLASS)
        p.face_z(x0 + 0.22, x1 - 0.22, 1.0, roof - 0.07, cz0, glass)
        if detail and cab_side is not None:
            glass = p.part(cls, GLASS_COLOR, (PLANE_X, cab_side), GLASS)
            p.polygon([(cab_side, 1.0, cz0 + 0.2), (cab_side, roof - 0.07, cz0 + 0.45),
                       (cab_side, roof - 0.07, cz1 - 0.35), (cab_side, 1.0, cz1 - 0.1)], glass)
        tyre_h, lamp_y = 0.3, (0.62, 0.8)
    elif v.kind == "truck":
        if v.facing < 0:  # oncoming: the cargo box behind, then the cab in front
            side_x = p.box(cls, v.cargo, x0, x1, 0.9, roof, z + 2.4, z1, sun)
            p.box(cls, color, x0 + 0.05, x1 - 0.05, 0.45, 2.7, z, z + 2.2, sun)
            glass = p.part(cls, GLASS_COLOR, (PLANE_Z, z), GLASS)
            p.face_z(x0 + 0.2, x1 - 0.2, 1.55, 2.5, z, glass)
        else:  # going away: the cargo box's rear doors and a bumper
            side_x = p.box(cls, v.cargo, x0, x1, 0.9, roof, z, z1, sun)
            seam = p.part(cls, shade(v.cargo, 0.6), (PLANE_Z, z))
            p.face_z(x - 0.03, x + 0.03, 1.0, roof - 0.1, z, seam, min_px=1.0)
            p.face_z(x0, x1, 0.45, 0.9, z, p.part(cls, (40, 40, 42), (PLANE_Z, z)))
        tyre_h = 0.45
    else:  # bus
        side_x = p.box(cls, color, x0, x1, 0.3, roof, z, z1, sun)
        interior = (60, 62, 52) if v.lights_on else DARK
        if side_x is not None:
            band = p.part(cls, GLASS_COLOR, (PLANE_X, side_x), GLASS, emit=interior)
            p.face_x(side_x, 1.25, 2.55, z + 0.6, z1 - 0.4, band)
            if detail:
                pillar = p.part(cls, shade(color, 0.7 * sun), (PLANE_X, side_x))
                for k in range(1, 6):
                    pz = z + 0.6 + k * (length - 1.0) / 6
                    p.face_x(side_x, 1.25, 2.55, pz, pz + 0.15, pillar)
        shield = p.part(cls, GLASS_COLOR, (PLANE_Z, z), GLASS, emit=shade(interior, 0.5))
        if v.facing < 0:
            p.face_z(x0 + 0.1, x1 - 0.1, 1.1, roof - 0.25, z, shield)
        else:
            p.face_z(x0 + 0.3, x1 - 0.3, 1.9, roof - 0.3, z, shield)
        sign = p.part(cls, (20, 20, 20), (PLANE_Z, z), emit=(200, 120, 30) if v.lights_on else DARK)
        p.face_z(x0 + 0.4, x1 - 0.4, roof - 0.22, roof - 0.05, z, sign)
        tyre_h = 0.3
    if detail:
        p.face_z(x0 + 0.05, x0 + 0.35, 0.0, tyre_h, z, tyre)
        p.face_z(x1 - 0.35, x1 - 0.05, 0.0, tyre_h, z, tyre)
        if side_x is not None:
            wheel = p.part(cls, (25, 25, 28), (PLANE_X, side_x))
            r = 0.33 if v.kind == "car" else 0.5
            for wz in ((z + 0.85, z1 - 0.85) if v.kind == "car" else (z + 2.4, z1 - 2.6)):
                p.polygon([(side_x, r + r * s, wz + r * c) for s, c in _OCTAGON], wheel)
        plate = p.part(cls, (225, 225, 215), (PLANE_Z, z))
        p.face_z(x - 0.26, x + 0.26, 0.35, 0.47, z, plate)
    # White headlights in front, red tail lights at the rear; lit when the vehicle is moving.
    day, emit = ((225, 225, 215), HEADLIGHT) if v.facing < 0 else ((170, 25, 25), TAIL_LIGHT)
    lamp = p.part(cls, day, (PLANE_Z, z), emit=emit if v.lights_on else DARK)
    lw = 0.3 if v.kind == "car" else 0.25
    p.face_z(x0 + 0.08, x0 + 0.08 + lw, lamp_y[0], lamp_y[1], z, lamp, min_px=1.0)
    p.face_z(x1 - 0.08 - lw, x1 - 0.08, lamp_y[0], lamp_y[1], z, lamp, min_px=1.0)
    if v.lights_on:
        y = sum(lamp_y) / 2
        if v.facing < 0:  # the beams light the road towards us
            p.lights.append(Light((x, y, z - 0.2), (1.0, 0.98, 0.9), radius=8.0, beam=-1))
        else:  # the beams point away from us; a faint red wash behind
            p.lights.append(Light((x, y, z1 + 0.2), (1.0, 0.98, 0.9), radius=8.0, beam=1))
            p.lights.append(Light((x, y, z - 0.2), (0.6, 0.05, 0.03), radius=1.5))


_OCTAGON = [(math.sin(a), math.cos(a)) for a in np.linspace(0, 2 * math.pi, 9)[:-1]]


def street_objects(p: Painter, st: Street, rnd: random.Random):
    """Lamps, trees, signs, traffic lights, people and vehicles, drawn far to near."""
    objects = []  # (depth, draw function, arguments): every random draw happens here, first
    z_max = min(st.end, 120.0)
    for side in (-1, 1):
        i = (side + 1) // 2
        curb_x = st.curb(side) + side * 0.45
        if rnd.random() < 0.85:
            spacing, height, arm = rnd.uniform(16, 32), rnd.uniform(6, 9), rnd.uniform(0.8, 2.2)
            z = rnd.uniform(2, spacing)
            while z < z_max:
                objects.append((z, draw_lamp, (p, st, curb_x, z, height, arm, side)))
                z += spacing
        if rnd.random() < 0.6:
            spacing = rnd.uniform(8, 16)
            tree_x = st.curb(side) + side * (st.walk[i] * rnd.uniform(0.6, 0.85) + st.verge[i] * 0.5)
            green = jitter(rnd, rnd.choice([(60, 105, 40), (75, 115, 45), (50, 90, 45)]), 12)
            z = rnd.uniform(3, spacing)
            while z < min(z_max, 100):
                objects.append((z, draw_tree, (p, tree_x + rnd.uniform(-0.3, 0.3), z, rnd.uniform(1.8, 3.2),
                                               rnd.uniform(1.6, 3.2), jitter(rnd, green, 8), rnd.getrandbits(15))))
                z += spacing * rnd.uniform(0.8, 1.25)
        for _ in range(rnd.choice([0, 1, 1, 2, 3])):
            z = rnd.uniform(5, 45)
            objects.append((z, draw_sign, (p, curb_x + side * rnd.uniform(0, 0.4), z, rnd.uniform(2.0, 2.6),
                                           rnd.uniform(0.3, 0.45), rnd.randrange(4),
                                           rnd.choice([(30, 80, 170), (30, 120, 60)]))))
        for _ in range(rnd.choice([0, 1, 2, 3, 4, 6])):
            x = st.curb(side) + side * rnd.uniform(0.5, st.walk[i] - 0.3)
            z = rnd.uniform(3.5, 55)
            objects.append((z, draw_person, (p, x, z, rnd.uniform(1.55, 1.9), rnd.choice(CLOTHES[:6]),
                                             rnd.choice(CLOTHES), rnd.choice(SKIN), rnd.uniform(0.0, 0.14))))
    if rnd.random() < 0.55:  # traffic lights at a junction ahead
        z = rnd.uniform(12, 45)
        for side in (-1, 1):
            if rnd.random() < 0.8:
                objects.append((z, draw_traffic_light, (p, st.curb(side) + side * 0.6, z,
                                                        rnd.uniform(3.0, 4.2), rnd.randrange(3))))
    # Moving traffic in every lane, lights on; cars in our own lane keep their distance.
    for x, direction in zip(st.lanes, st.lane_dir):
        z = rnd.uniform(9 if abs(x) < 1.5 else 4, 35)
        while z < min(z_max, 110) and rnd.random() < 0.75:
            kind = rnd.choices(["car", "truck", "bus"], [0.74, 0.13, 0.13])[0]
            v = make_vehicle(rnd, kind, x + rnd.uniform(-0.3, 0.3), z, direction, True)
            objects.append((z, draw_vehicle, (p, st, v)))
            z += v.size[1] + rnd.uniform(8, 35)
    for side in (-1, 1):  # cars parked along the curb, lights off
        if rnd.random() < 0.45:
            z = rnd.uniform(4, 20)
            while z < min(z_max, 90):
                v = make_vehicle(rnd, "car", st.curb(side) - side * 1.1, z, rnd.choice([-1, 1]), False)
                objects.append((z, draw_vehicle, (p, st, v)))
                z += v.size[1] + rnd.uniform(1, 10)
    objects.sort(key=lambda o: -o[0])
    for _, draw, args in objects:
        draw(*args)


# ---------------------------------------------------------------------------------------------
# Shading: vectorised work on the canvas of part indices, on flat arrays of pixels.

# A fixed bank of Gaussian noise; each scene reads windows at seeded offsets. Much faster than
# drawing fresh noise for every image, and just as deterministic.
_NOISE_SIZE = 768


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(20240601).standard_normal((_NOISE_SIZE, _NOISE_SIZE, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An HxWx3 window of standard normal noise at a seeded place in the bank."""
    if height > _NOISE_SIZE or width > _NOISE_SIZE:
        return rng.standard_normal((height, width, 3), dtype=np.float32)
    r, c = rng.integers(0, _NOISE_SIZE - height + 1), rng.integers(0, _NOISE_SIZE - width + 1)
    return _noise_bank()[r:r + height, c:c + width]


@functools.lru_cache(maxsize=64)
def _lerp_weights(n_out: int, n_in: int, scale: float):
    """Indices and weights to resample n_in samples (each `scale` output pixels apart) to n_out."""
    pos = np.clip((np.arange(n_out) + 0.5) / scale - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = (pos - i0).astype(np.float32)
    return i0, i1, t


def _upsample(small: np.ndarray, height: int, width: int, scale: float) -> np.ndarray:
    """Bilinear resampling of a coarse grid (h, w[, c]) whose cells are `scale` pixels apart."""
    r0, r1, tr = _lerp_weights(height, small.shape[0], scale)
    c0, c1, tc = _lerp_weights(width, small.shape[1], scale)
    extra = (None,) * (small.ndim - 2)
    rows = small[r0] + (small[r1] - small[r0]) * tr[(slice(None), None) + extra]
    return rows[:, c0] + (rows[:, c1] - rows[:, c0]) * tc[(None, slice(None)) + extra]


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Blotchy noise: one Gaussian value per `cell` pixels, bilinearly interpolated."""
    coarse = rng.standard_normal((int(height / cell) + 2, int(width / cell) + 2), dtype=np.float32)
    return _upsample(coarse, height, width, cell)


def _blur5(a: np.ndarray, axis: int) -> np.ndarray:
    """[1 4 6 4 1] / 16 along an axis, zero outside (light leaving the image is lost)."""
    pad = [(0, 0)] * a.ndim
    pad[axis] = (2, 2)
    a = np.pad(a, pad)
    n = a.shape[axis] - 4
    s = [np.take(a, np.arange(k, k + n), axis=axis) for k in range(5)]
    return (s[0] + s[4] + 4 * (s[1] + s[3]) + 6 * s[2]) / 16


def _glow(emit: np.ndarray, cell: int) -> np.ndarray:
    """Light bleeding around bright emitters: a tight 3x3 halo plus a wide bloom.

    The bloom averages the emitters into cells, blurs that small grid and repeats it back up;
    the 3x3 pass that makes the halo also smooths the bloom's cell edges.
    """
    h, w = emit.shape[:2]
    hp, wp = -(-h // cell) * cell, -(-w // cell) * cell
    padded = np.zeros((hp, wp, 3), np.float32)
    padded[:h, :w] = emit
    small = sum(padded[i::cell, j::cell] for i in range(cell) for j in range(cell)) / cell ** 2
    small = _blur5(_blur5(small, 0), 1)
    glow = 0.8 * emit + 1.1 * small.repeat(cell, axis=0).repeat(cell, axis=1)[:h, :w]
    v = glow.copy()
    v[1:] += glow[:-1]
    v[:-1] += glow[1:]
    out = v.copy()
    out[:, 1:] += v[:, :-1]
    out[:, :-1] += v[:, 1:]
    return out / 9


def _cover(dist, half_width, footprint):
    """The share of a pixel (footprint metres wide) covered by a line `half_width` from its centre."""
    return np.clip((half_width + footprint * 0.5 - dist) / footprint, 0.0, 1.0)


def _hash01(a, b, c) -> np.ndarray:
    """A uniform number in [0, 1) per integer triple (a window's identity), the same at any size."""
    h = np.uint32(2166136261)
    for v in (a, b, c):
        h = (h ^ np.asarray(v).astype(np.uint32)) * np.uint32(16777619)
    h ^= h >> np.uint32(15)
    h *= np.uint32(2246822519)
    h ^= h >> np.uint32(13)
    return (h >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)


def _shade_facades(p: Painter, idx, pid, kind, X, Y, Z, albedo, emit, tone, grain, blotch):
    """Windows on every facade pixel: glass by day, a random warm-lit subset at night."""
    rows = [(i, part[6]) for i, part in enumerate(p.parts) if part[6] is not None]
    table = np.zeros((len(p.parts), len(Facade._fields)), np.float32)
    table[[i for i, _ in rows]] = np.array([f for _, f in rows], np.float32)
    f = table.take(pid[idx], axis=0)
    s0, s_sign, col_w, n_cols, win_w, floor_h, win_h, ground_h, n_floors, shop, lit, key, glass = f.T
    z, y, x = Z[idx], Y[idx], X[idx]
    along_z = kind[idx] == PLANE_X  # faces along the street run in Z, end walls in X
    s = s_sign * np.where(along_z, z, x)
    # Metres per pixel along the face and up it: windows fade into an average tone when tiny.
    ds = np.where(along_z, z * z / (p.fh * np.abs(x) + 1e-6), z / p.fh)
    fade = np.clip((np.minimum(col_w / ds, floor_h * p.fh / z) - 2.5) / 2.5, 0.0, 1.0)

    cs = (s - s0) / col_w
    col = np.floor(cs)
    fc = cs - col
    in_cols = (col >= 0) & (col < n_cols)
    fy = (y - ground_h) / floor_h
    floor = np.floor(fy)
    ff = fy - floor
    in_rows = (floor >= 0) & (floor < n_floors)
    window = in_cols & in_rows & (np.abs(fc - 0.5) < win_w / 2) & (ff > 0.3) & (ff < 0.3 + win_h)
    shop_window = in_cols & (shop > 0) & (y > 0.45) & (y < ground_h - 0.75) & (np.abs(fc - 0.5) < 0.42)
    window |= shop_window
    alpha = window * fade + (1 - fade) * (in_cols & in_rows) * win_w * win_h

    t = 1 + 0.05 * blotch[idx] + 0.03 * grain[idx]
    t *= np.where(y < ground_h, 0.8, 1.0)  # the ground floor is darker and dirtier
    t *= 1 - 0.12 * fade * (ff < 0.06) * in_rows  # a cornice line at every floor
    floor_key = np.where(shop_window, -1, floor).astype(np.int64)
    r1 = _hash01(key.astype(np.int64), col.astype(np.int64), floor_key)
    glint = 0.75 + 0.6 * r1  # reflections differ from window to window
    a = alpha[:, None]
    glass_rgb = (glass * glint)[:, None] * np.float32([0.8, 0.9, 1.1])
    albedo[idx] = albedo[idx] * (t[:, None] * (1 - a)) + glass_rgb * a
    tone[idx] = 1.0

    r2 = _hash01(key.astype(np.int64) + 7, col.astype(np.int64), floor_key)
    on = r2 < np.where(shop_window, 0.5, lit)
    warm = np.where((r1 > 0.9)[:, None], np.float32([170, 190, 255]), np.float32([255, 190, 100]))
    emit[idx] += warm * ((0.35 + 0.5 * r1) * on * alpha)[:, None]


def _shade_road(st: Street, idx, X, Z, fh, albedo, tone, grain, blotch):
    """Asphalt grain, lane marks, edge lines and a crosswalk, anti-aliased by pixel footprint."""
    x, z = X[idx], Z[idx]
    across = z / fh  # metres per pixel across the road
    along = z * z / (fh * st.cam.height)  # metres per pixel along it
    m = st.marks
    dashed = np.where(along > m["period"] / 2, m["dash"] / m["period"], ((z + m["phase"]) % m["period"]) < m["dash"])
    cover = np.zeros_like(x)
    for lx in m["lane_lines"]:
        cover = np.maximum(cover, _cover(np.abs(x - lx), 0.07, across) * dashed)
    if m["centre_double"]:
        cover = np.maximum(cover, _cover(np.abs(np.abs(x - m["centre_x"]) - 0.14), 0.06, across))
    else:
        cover = np.maximum(cover, _cover(np.abs(x - m["centre_x"]), 0.07, across) * dashed)
    if m["edge"]:
        for side in (-1, 1):
            cover = np.maximum(cover, _cover(np.abs(x - (st.curb(side) - side * 0.35)), 0.08, across))
    if m["crosswalk"] is not None:
        zc = m["crosswalk"]
        stripes = _cover(np.abs((x - st.road_cx) % 1.0 - 0.5), 0.25, across)
        cover = np.maximum(cover, stripes * ((z > zc) & (z < zc + 3.5)))
    paint = np.float32(m["paint"]) / np.float32(st.road_color) - 1
    albedo[idx] *= 1 + cover[:, None] * paint
    tone[idx] = 1 + 0.06 * grain[idx] + 0.04 * blotch[idx]


def _shade_paving(st: Street, idx, X, Z, fh, tone, grain, blotch):
    """Paving slab joints and a bright curb stone along the road."""
    x, z = X[idx], Z[idx]
    across, along = z / fh, np.maximum(z / fh, z * z / (fh * st.cam.height))
    joints = np.maximum(_cover(np.abs((x + 0.3) % 0.6 - 0.3), 0.02, across),
                        _cover(np.abs(z % 0.6 - 0.3), 0.02, along))
    curb = np.minimum(np.abs(x - st.curb(-1)), np.abs(x - st.curb(1))) < 0.22
    tone[idx] = (1 + 0.04 * grain[idx] + 0.05 * blotch[idx]) * (1 - 0.15 * joints) * np.where(curb, 1.12, 1.0)


def _night_light(p: Painter, X, Y, Z, step: int) -> np.ndarray:
    """Light from lamps and headlights on every pixel (HxWx3), one pass per light colour.

    Light varies slowly, so it is evaluated on every `step`-th pixel and repeated.
    """
    X, Y, Z = X[::step, ::step], Y[::step, ::step], Z[::step, ::step]
    hs, ws = X.shape
    by_color: dict[tuple, np.ndarray] = {}
    eye = p.cam_h
    for L in p.lights:
        lx, ly, lz = L.pos
        reach = 3.0 * L.radius  # beyond it the light is under 5% and is cut smoothly to zero
        # The screen box that holds every point within `reach` of the light.
        z_lo, z_hi = max(lz - reach, 0.3), lz + reach
        xs = [(lx + d) / zz for d in (-reach, reach) for zz in (z_lo, z_hi)]
        ys = [(eye - ly + d) / zz for d in (-reach, reach) for zz in (z_lo, z_hi)]
        c0, c1 = max(0, int(p.cx + p.fh * min(xs)) // step), min(ws, int(p.cx + p.fh * max(xs)) // step + 2)
        r0, r1 = max(0, int(p.cy + p.fh * min(ys)) // step), min(hs, int(p.cy + p.fh * max(ys)) // step + 2)
        if c0 >= c1 or r0 >= r1:
            continue
        dx, dy, dz = X[r0:r1, c0:c1] - lx, Y[r0:r1, c0:c1] - ly, Z[r0:r1, c0:c1] - lz
        d2 = dx * dx + dy * dy + dz * dz
        t = 1.0 / (1.0 + d2 * (1.0 / L.radius ** 2))
        fall = np.maximum(t - 0.1, 0.0)  # 1 / (1 + d^2/r^2), minus its value at `reach`
        fall *= fall
        if L.beam:
            cos = np.maximum(L.beam * dz, 0.0) ** 2 / (d2 + 1e-6)  # cos^2 of the angle off the beam
            fall *= cos * cos * 2.5
        acc = by_color.setdefault(L.color, np.zeros((hs, ws), np.float32))
        acc[r0:r1, c0:c1] += fall
    light = np.zeros((hs, ws, 3), np.float32)
    for color, acc in by_color.items():
        light += acc[..., None] * np.float32(color)
    if step > 1:
        light = light.repeat(step, axis=0).repeat(step, axis=1)[:p.h, :p.w]
    return light


def _sky(height: int, horizon_px: float, top, bottom) -> np.ndarray:
    t = np.clip((np.arange(height, dtype=np.float32) + 0.5) / max(horizon_px, 1.0), 0, 1) ** 1.6
    return np.float32(top) * (1 - t[:, None]) + np.float32(bottom) * t[:, None]


def render_street(seed, height: int = 128, width: int | None = None) -> StreetScene:
    """Render one street scene: label map, day photo and night photo of the same geometry.

    `seed` is anything `np.random.default_rng` takes: an int, or a sequence such as
    `[dataset_seed, index]` (what `StreetScenes` uses). The layout depends on the seed only, so
    one seed at 128x128 and 256x256 is the same scene; a wider image shows more of the sides.
    """
    width = height if width is None else width
    if height < 16 or width < 16:
        raise GanlibError(f"street scenes need at least 16x16 pixels, got {height}x{width}; "
                          "pass a larger height/width (64 or more reads best)")
    rng = np.random.default_rng(seed)
    rnd = random.Random(int(rng.integers(2 ** 62)))  # fast scalar draws for the layout
    st = make_street(rnd)
    p = Painter(st.cam, height, width)
    draw_ground(p, st)
    draw_far(p, st, rnd)
    draw_side(p, st, rnd, -1)
    draw_side(p, st, rnd, 1)
    street_objects(p, st, rnd)
    weather, exposure, ambient, smog = rnd.random(), rnd.uniform(0.92, 1.06), rnd.uniform(0.75, 1.3), rnd.random()

    # Per-part tables, looked up by every pixel's part index.
    cls_t, color_t, emit_t, kind_t, plane_t, mat_t, _ = zip(*p.parts)
    pid = np.asarray(p.canvas).ravel()
    ids = np.asarray(cls_t, np.uint8).take(pid)
    albedo = np.asarray(color_t, np.float32).take(pid, axis=0)
    emit = np.asarray(emit_t, np.float32).take(pid, axis=0)
    material = np.asarray(mat_t, np.uint8).take(pid)
    kind = np.asarray(kind_t, np.uint8).take(pid).reshape(height, width)
    plane = np.asarray(plane_t, np.float32).take(pid).reshape(height, width)

    # World position of every pixel, from its part's plane and the ray through its centre.
    a = ((np.arange(width, dtype=np.float32) + 0.5 - p.cx) / p.fh)[None, :]  # X / Z
    b = ((np.arange(height, dtype=np.float32) + 0.5 - p.cy) / p.fh)[:, None]  # (eye - Y) / Z
    Z = np.where(kind == PLANE_Y, np.abs(p.cam_h - plane) / np.maximum(np.abs(b), 1e-4),
                 np.where(kind == PLANE_X, np.abs(plane) / np.maximum(np.abs(a), 1e-5), plane))
    Z = np.clip(Z, 0.3, 3000.0)
    X, Y = a * Z, p.cam_h - b * Z
    Xf, Yf, Zf, kind_f = X.ravel(), Y.ravel(), Z.ravel(), kind.ravel()

    grain = _noise(rng, height, width)[..., 0].ravel()
    blotch = _smooth_noise(rng, height, width, height / 12).ravel()
    leaves = _smooth_noise(rng, height, width, max(height / 40, 1.0)).ravel()
    clouds = _smooth_noise(rng, height, width, height / 4).ravel() + 0.4 * blotch

    # Textures: a brightness factor per pixel (tone), plus colour changes where needed.
    tone = np.ones(height * width, np.float32)
    where = {m: np.flatnonzero(material == m) for m in range(SLATS + 1)}
    _shade_road(st, where[ASPHALT], Xf, Zf, p.fh, albedo, tone, grain, blotch)
    _shade_paving(st, where[PAVING], Xf, Zf, p.fh, tone, grain, blotch)
    i = where[GRASS]
    tone[i] = 1 + 0.12 * leaves[i] + 0.1 * grain[i]
    i = where[FOLIAGE]
    tone[i] = np.clip(1 + 0.3 * leaves[i] + 0.12 * grain[i], 0.3, 2.0)
    i = where[GLASS]
    tone[i] = 1 + 0.15 * blotch[i]
    i = where[SLATS]
    s = np.where(kind_f[i] == PLANE_X, Zf[i], Xf[i])
    footprint = np.maximum(Zf[i] ** 2 / (p.fh * np.abs(Xf[i]) + 1e-3), 1e-3)
    tone[i] = 1 - 0.45 * _cover(np.abs(s % 0.18 - 0.09), 0.04, footprint)
    i = where[PLAIN]
    tone[i] = 1 + 0.03 * grain[i]
    if len(where[FACADE]):
        _shade_facades(p, where[FACADE], pid, kind_f, Xf, Yf, Zf, albedo, emit, tone, grain, blotch)
    albedo *= tone[:, None]

    sky = np.flatnonzero(ids == SKY)
    sky_rows = sky // width
    overcast = weather > 0.85
    if weather < 0.6:
        top, bottom = (60, 120, 200), (175, 205, 235)
    elif not overcast:  # hazy
        top, bottom = (120, 160, 205), (205, 215, 225)
    else:
        top, bottom = (150, 155, 165), (200, 202, 205)
    cloud = np.clip((clouds[sky] - 0.5) * 0.8, 0, 1)[:, None] * (0.35 if overcast else 0.9)

    # Day: the textured albedo, auto-exposed like a camera would (dark streets brightened a
    # little), with a little exposure variation and sensor noise.
    day = albedo.copy()
    day[sky] = _sky(height, p.cy, top, bottom)[sky_rows] * (1 - cloud) + 240 * cloud
    mean_luma = float(day.mean(axis=0) @ np.float32([0.299, 0.587, 0.114]))
    gain = exposure * min(max(115.0 / max(mean_luma, 1.0), 0.9), 1.35)
    day *= gain
    day = day.reshape(height, width, 3)
    day += _noise(rng, height, width) * 2.5

    # Night: dim blue ambient light, lamp pools and beams, glowing emitters, a dark noisy sky.
    light = _night_light(p, X, Y, Z, 2 if height >= 96 else 1).reshape(-1, 3)
    light += np.float32([0.08, 0.095, 0.14]) * ambient
    night = albedo * light
    night_sky = _sky(height, p.cy, (3, 5, 13), (14 + 18 * smog, 15 + 10 * smog, 30))
    night[sky] = night_sky[sky_rows] * (1 + 0.6 * cloud)
    emit = emit.reshape(height, width, 3)
    night = night.reshape(height, width, 3) + emit + _glow(emit, max(1, round(height / 40)))
    # Lift the shadows like a phone's night mode (a gentle gamma; 255 stays 255) so the dark
    # street still shows its structure.
    night = 0.7 * night + 0.3 * np.sqrt(np.maximum(night, 0) * 255.0)
    # A night photo stays a night photo: a street crowded with lights is exposed down so its
    # mean brightness never passes 40% of the day photo's.
    night_luma = float(night.reshape(-1, 3).mean(axis=0) @ np.float32([0.299, 0.587, 0.114]))
    day_luma = mean_luma * gain
    if night_luma > 0.4 * day_luma:
        night *= 0.4 * day_luma / night_luma
    night += _noise(rng, height, width)[..., :1] * 4.0  # luminance noise of a high-ISO sensor
    night += _noise(rng, height, width) * 2.0

    return StreetScene(
        label=PALETTE.take(ids, axis=0).reshape(height, width, 3), ids=ids.reshape(height, width),
        day=np.clip(day, 0, 255).astype(np.uint8),
        night=np.clip(night, 0, 255).astype(np.uint8),
    )


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


class StreetScenes(torch.utils.data.Dataset):
    """`length` street scenes as dicts: label, day, night (CHW float in [-1, 1]) and ids (HxW long).

    Item i is `render_street([seed, i], height, width)`, the same in any order and any DataLoader
    worker. Use seed=0 for training and seed=1 for testing (the sets share no scene).
    cache=True keeps rendered items in a plain per-process dict (about 0.6 MB per 128px item).
    """

    def __init__(self, length: int, height: int = 128, width: int | None = None, seed: int = 0, cache: bool = True):
        if length < 1:
            raise GanlibError(f"StreetScenes needs length >= 1, got {length}; pass how many scenes to render")
        self.length, self.height = length, height
        self.width = height if width is None else width
        self.seed, self.cache = seed, cache
        self._items: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if not -self.length <= i < self.length:
            raise IndexError(f"scene {i} is out of range for StreetScenes of length {self.length}")
        i %= self.length
        if i in self._items:
            return self._items[i]
        scene = render_street([self.seed, i], self.height, self.width)
        item = dict(label=_to_tensor(scene.label), ids=torch.from_numpy(scene.ids).long(),
                    day=_to_tensor(scene.day), night=_to_tensor(scene.night))
        if self.cache:
            self._items[i] = item
        return item


def grid(scenes: list[StreetScene], gap: int = 2) -> np.ndarray:
    """Rows of label | day | night with white gaps between, as one uint8 image."""
    h, w = scenes[0].day.shape[:2]
    out = np.full((len(scenes) * (h + gap) - gap, 3 * (w + gap) - gap, 3), 255, np.uint8)
    for r, s in enumerate(scenes):
        for c, img in enumerate((s.label, s.day, s.night)):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Save a grid of street scenes: label | day | night.")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--n", type=int, default=8, help="number of scenes (rows)")
    parser.add_argument("--size", type=int, default=128, help="image height in pixels")
    parser.add_argument("--width", type=int, default=None, help="image width (default: --size)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (0 train, 1 test)")
    args = parser.parse_args(argv)
    scenes = [render_street([args.seed, i], args.size, args.width) for i in range(args.n)]
    Image.fromarray(grid(scenes)).save(args.out)
    print(f"wrote {args.out}: {args.n} scenes at {args.size}x{args.width or args.size}")


if __name__ == "__main__":
    main()
