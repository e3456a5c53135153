"""Adaptive discriminator augmentation (ADA): Karras, Aittala, Hellsten, Laine, Lehtinen & Aila,
"Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020, arXiv:2006.06676).

Why ADA here rather than DiffAugment (Zhao et al. 2020). With 15.5k watch photos, D memorizes the
training set: its outputs on real images drift towards "certainly real" while generated images stop
improving. Both methods fight this by showing D only augmented images (real and generated alike, in
every D and G pass, differentiably so G's gradients pass through), so D cannot memorize exact pixels.
The difference is the strength:

* DiffAugment applies a fixed set (colour, translation, cutout) with probability 1. How much is needed
  depends on the dataset size and the training length, so it is a hyperparameter to tune per run.
* ADA applies each of a larger set of transforms with probability p and *adjusts p from an overfitting
  heuristic*, r_t = E[sign(D(x_real))] (0 = D unsure, 1 = D certain about every real), towards a
  target of 0.6. No augmentation while D does not overfit, more as it starts to. The paper shows that
  with p below ~0.8 the augmentations do not "leak" into generated images, since each transform is
  applied with p < 1 and so the clean distribution is still identifiable.

ADA is also what produced our hyperparameters (the "auto" config of stylegan2-ada), so the paper
preset is the one that paper validated. p and the sign accumulator are part of `state_dict()`, so a
resumed run continues with the same augmentation strength (on resume the official code starts p again
at 0, and rosinality's train.py saves p but starts from its --augment_p argument).

The pipeline is ADA's "bgc" (blit + geometric + colour), each transform on its own with probability p
per image, in the official order and with the official parameter distributions:

    blit:   x-flip, rotation by multiples of 90 degrees, integer translation (up to 0.125 of the size)
    geom:   isotropic scale (lognormal, std 0.2 log2), rotation (uniform, applied before and after
            anisotropy, each with p_rot = 1 - sqrt(1 - p)), anisotropic scale (std 0.2), fractional
            translation (normal, std 0.125)
    colour: brightness (+N(0, 0.2)), contrast (x lognormal std 0.5 log2), luma flip, hue rotation
            (uniform in [-pi, pi]), saturation (x lognormal std 1 log2)

Geometric transforms compose one 3x3 matrix per image, applied by one bilinear grid_sample at 2x
supersampling against aliasing, as the official code does: reflect-pad, upsample 2x with the sym6
wavelet low-pass, sample, low-pass with the flipped filter and downsample, crop. sym6 is orthogonal,
so upsampling then downsampling is the identity: an image whose transforms were all gated off comes
out unchanged (up to float rounding). Colour transforms compose one 4x4 matrix per image acting on
(r, g, b, 1).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import GanlibError

__all__ = ["augment", "AdaptiveAugment", "warp"]

# Daubechies symlet-6 low-pass taps (pywt's sym6 as listed in stylegan2-ada's augment.py).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
_MARGIN = 6  # extra reflect-padding (pixels): the sym6 filters' reach (ADA: Hz_pad * 2)


# ----------------------------------------------------------------------------------------------
# Batched homogeneous matrices (N, 3, 3) for 2-D and (N, 4, 4) for colour
# ----------------------------------------------------------------------------------------------

def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    """Stack rows of scalars or (N,) tensors into (N, R, C)."""
    n = like.shape[0]
    rows = [[torch.as_tensor(v, dtype=torch.float32, device=like.device).expand(n) for v in row] for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def _translate2d(tx, ty, like):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)


def _scale2d(sx, sy, like):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)


def _rotate2d(theta, like):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], like)


def _translate3d(tx, ty, tz, like):
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], like)


def _scale3d(sx, sy, sz, like):
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], like)


def _rotate3d(axis: torch.Tensor, theta, like):
    """Rotation by theta about a unit axis (Rodrigues), as a (N, 4, 4) homogeneous matrix."""
    vx, vy, vz = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return _matrix([
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1]], like)


def _gate(p: float, value: torch.Tensor, identity: float) -> torch.Tensor:
    """Each image keeps its random `value` with probability p, else the transform's identity."""
    keep = torch.rand(value.shape[0], device=value.device) < p
    return torch.where(keep, value, torch.full_like(value, identity))


# ----------------------------------------------------------------------------------------------
# The augmentation pipeline
# ----------------------------------------------------------------------------------------------

def _geometric_inverse(n: int, h: int, w: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) matrices mapping OUTPUT to INPUT normalized coordinates ([-1, 1], x right, y down).

    Composed right to left as the official pipeline does (G_inv = G_inv @ T_inv for each transform T).
    Translations given as fractions t of the image are 2 t in normalized units.
    """
    dev = like.device
    G_inv = torch.eye(3, device=dev).expand(n, 3, 3)
    # x-flip: x -> -x for half of the gated images
    flip = _gate(p, torch.randint(0, 2, (n,), device=dev).float(), 0.0)
    G_inv = G_inv @ _scale2d(1 - 2 * flip, 1.0, like)
    # rotation by a multiple of 90 degrees
    quarter = _gate(p, torch.randint(0, 4, (n,), device=dev).float(), 0.0)
    G_inv = G_inv @ _rotate2d(quarter * (math.pi / 2), like)  # inverse of rotate(-pi/2 * i)
    # integer translation, up to 0.125 of the image, rounded to whole pixels
    t = (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125
    tx = _gate(p, torch.round(t[:, 0] * w) / w, 0.0)
    ty = _gate(p, torch.round(t[:, 1] * h) / h, 0.0)
    G_inv = G_inv @ _translate2d(-2 * tx, -2 * ty, like)
    # isotropic scale, s = 2^N(0, 0.2^2)
    s = _gate(p, torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
    G_inv = G_inv @ _scale2d(1 / s, 1 / s, like)
    # rotation, applied twice around the anisotropic scale; each with p_rot so P(any) = p
    p_rot = 1 - math.sqrt(max(1 - p, 0.0))
    theta = _gate(p_rot, (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
    G_inv = G_inv @ _rotate2d(theta, like)  # inverse of rotate(-theta)
    # anisotropic scale: stretch x by a, y by 1/a, a = 2^N(0, 0.2^2)
    a = _gate(p, torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
    G_inv = G_inv @ _scale2d(1 / a, a, like)
    theta = _gate(p_rot, (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
    G_inv = G_inv @ _rotate2d(theta, like)
    # fractional translation, N(0, 0.125^2) of the image
    t = torch.randn(n, 2, device=dev) * 0.125
    G_inv = G_inv @ _translate2d(-2 * _gate(p, t[:, 0], 0.0), -2 * _gate(p, t[:, 1], 0.0), like)
    return G_inv


def _colour_matrix(n: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """(N, 4, 4) matrices acting on (r, g, b, 1), composed left to right as C = T @ C."""
    dev = like.device
    C = torch.eye(4, device=dev).expand(n, 4, 4)
    luma = torch.tensor([1.0, 1.0, 1.0], device=dev) / math.sqrt(3)  # the grey axis
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)
    vv = torch.outer(v, v)                                              # projection onto the grey axis
    # brightness: add b ~ N(0, 0.2^2) to every channel
    b = _gate(p, torch.randn(n, device=dev) * 0.2, 0.0)
    C = _translate3d(b, b, b, like) @ C
    # contrast: multiply by 2^N(0, 0.5^2)
    c = _gate(p, torch.exp2(torch.randn(n, device=dev) * 0.5), 1.0)
    C = _scale3d(c, c, c, like) @ C
    # luma flip: mirror the colour along the grey axis, I - 2 v v^T
    i = _gate(p, torch.randint(0, 2, (n,), device=dev).float(), 0.0)
    C = (torch.eye(4, device=dev) - 2 * vv * i[:, None, None]) @ C
    # hue: rotate around the grey axis by U(-pi, pi)
    theta = _gate(p, (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
    C = _rotate3d(luma, theta, like) @ C
    # saturation: scale the off-grey component by 2^N(0, 1)
    s = _gate(p, torch.exp2(torch.randn(n, device=dev) * 1.0), 1.0)
    C = (vv + (torch.eye(4, device=dev) - vv) * s[:, None, None]) @ C
    return C


def warp(images: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """Resample images (N, C, H, W) with (N, 3, 3) output->input matrices in normalized coordinates.

    As the official pipeline: reflect-pad by a margin that covers where the transformed corners land
    (plus the filter's reach), upsample 2x (sym6), bilinear grid_sample, sym6 low-pass + downsample 2x
    (flipped filter: the pair is the identity), crop the margin away.
    """
    from .stylegan2 import upfirdn2d

    n, c, h, w = images.shape
    if min(h, w) < 8:
        raise GanlibError(f"augment needs images of at least 8x8 pixels, got {h}x{w}.")
    # Where do the output image's corners sample the input? |coordinate| > 1 is outside the image.
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]],
                           device=images.device)
    reach = (G_inv[:, :2, :] @ corners.T).abs().amax(dim=(0, 2))              # (x, y) in normalized units
    beyond = ((reach - 1).clamp(min=0) * torch.tensor([w / 2, h / 2], device=images.device)).max().item()
    m = min(math.ceil(beyond) + _MARGIN, min(h, w) - 1)                      # reflect pad < image side
    # 1-D taps normalized to sum 1: upfirdn2d applies them separably (the 2-D filter is their outer product)
    kernel = torch.tensor(SYM6, device=images.device) / sum(SYM6)
    x = F.pad(images, [m, m, m, m], mode="reflect")
    x = upfirdn2d(x, kernel * 2, up=2, pad=(6, 5))                             # (2(H+2m), 2(W+2m))
    # G_inv acts on the unpadded frame; in the padded frame's normalized coordinates u' = u * H / (H + 2m).
    to_inner = _scale2d((w + 2 * m) / w, (h + 2 * m) / h, images)
    to_outer = _scale2d(w / (w + 2 * m), h / (h + 2 * m), images)
    # The 2x image is shifted by half a fine pixel against the original (ADA: translate2d(-0.5, -0.5)
    # around G_inv); half a pixel of a side of W2 pixels is 1 / W2 in normalized units.
    W2, H2 = x.shape[-1], x.shape[-2]
    shift, unshift = _translate2d(-1 / W2, -1 / H2, images), _translate2d(1 / W2, 1 / H2, images)
    theta = (shift @ to_outer @ G_inv @ to_inner @ unshift)[:, :2, :]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = upfirdn2d(x, kernel.flip([0]), down=2, pad=(5, 5))                      # back to (H+2m, W+2m)
    return x[:, :, m:m + h, m:m + w]


def augment(images: torch.Tensor, p: float) -> torch.Tensor:
    """ADA's bgc pipeline on images (N, 3, H, W) in [-1, 1], each transform with probability p.

    Differentiable with respect to `images` (twice, for R1). p = 0 returns `images` itself.
    Random numbers come from the global torch RNG, which checkpoints save.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise GanlibError(f"augment needs images of shape (N, 3, H, W), got {tuple(images.shape)}.")
    if not 0.0 <= p <= 1.0:
        raise GanlibError(f"augment probability p={p} must be in [0, 1].")
    if p == 0:
        return images
    n, _, h, w = images.shape
    dtype = images.dtype
    x = images.float()
    # --- geometric: one resampling, supersampled 2x against aliasing ---
    x = warp(x, _geometric_inverse(n, h, w, p, x))
    # --- colour: one 4x4 matrix per image on (r, g, b, 1) ---
    C = _colour_matrix(n, p, x)
    x = C[:, :3, :3] @ x.reshape(n, 3, h * w) + C[:, :3, 3:]
    return x.reshape(n, 3, h, w).to(dtype)


class AdaptiveAugment:
    """ADA's controller: p starts at 0 and follows the overfitting heuristic r_t = E[sign(D(x_real))].

        aug = AdaptiveAugment(batch_size=32)             # target 0.6, every 4 steps, speed 500 kimg
        logits_real = D(aug(real))
        aug.accumulate(logits_real)                      # each D step
        aug.step()                                       # each training step; updates p every `interval`
        state["ada"] = aug                               # checkpointed: p and the pending signs

    Every `interval` steps: p <- clamp(p + sign(r_t - target) * batch * interval / (speed_kimg * 1000), 0, 1),
    so p can move from 0 to 1 in speed_kimg thousand images (500k in the paper; shorter runs need less).
    """

    def __init__(self, batch_size: int, target: float = 0.6, interval: int = 4, speed_kimg: float = 500,
                 p: float = 0.0, adaptive: bool = True):
        if not 0 < target < 1:
            raise GanlibError(f"ADA target={target} must be in (0, 1); the paper uses 0.6.")
        if interval < 1 or speed_kimg <= 0:
            raise GanlibError(f"ADA interval={interval} and speed_kimg={speed_kimg} must be positive.")
        self.batch_size, self.target, self.interval, self.speed_kimg = batch_size, target, interval, speed_kimg
        self.adaptive = adaptive
        self.p = float(p)
        self.steps = 0             # training steps since the last adjustment
        self.sign_sum = 0.0        # sum of sign(D(x_real)) since the last adjustment
        self.sign_count = 0
        self._pending: list[torch.Tensor] = []  # device tensors, summed at the adjustment (one sync)
        self.last_rt = float("nan")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return augment(images, self.p)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record sign(D(x_real)) of the D step's (augmented) real images."""
        self._pending.append(torch.sign(real_logits.detach().float()).sum())
        self.sign_count += real_logits.numel()

    def _flush(self) -> None:
        if self._pending:
            self.sign_sum += torch.stack(self._pending).sum().item()
            self._pending = []

    def step(self) -> None:
        """Call once per training step; every `interval` steps, move p towards the target r_t."""
        self.steps += 1
        if self.steps < self.interval:
            return
        self._flush()
        if self.sign_count:
            self.last_rt = self.sign_sum / self.sign_count                        # r_t = E[sign(D(x_real))]
            if self.adaptive:
                adjust = math.copysign(1.0, self.last_rt - self.target) if self.last_rt != self.target else 0.0
                self.p = min(max(self.p + adjust * self.batch_size * self.interval / (self.speed_kimg * 1000),
                                 0.0), 1.0)
        self.steps, self.sign_sum, self.sign_count = 0, 0.0, 0

    def state_dict(self) -> dict:
        self._flush()
        return {"p": self.p, "steps": self.steps, "sign_sum": self.sign_sum, "sign_count": self.sign_count,
                "last_rt": self.last_rt, "target": self.target}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.steps = float(state["p"]), int(state["steps"])
        self.sign_sum, self.sign_count = float(state["sign_sum"]), int(state["sign_count"])
        self.last_rt, self._pending = float(state["last_rt"]), []

    def __repr__(self) -> str:
        return (f"AdaptiveAugment(p={self.p:.4f}, target={self.target}, interval={self.interval}, "
                f"speed_kimg={self.speed_kimg}, adaptive={self.adaptive})")
