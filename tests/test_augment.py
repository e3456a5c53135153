import math

import pytest
import torch
import torch.nn.functional as F

from ganlib import augment as ada
from ganlib.errors import GanlibError


def smooth_images(n=2, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, 6, 6, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def test_p_zero_returns_the_images_untouched():
    x = torch.randn(2, 3, 8, 8)
    assert ada.augment(x, 0.0) is x


def test_bad_input_is_named():
    with pytest.raises(GanlibError, match=r"p=1.5 must be in \[0, 1\]"):
        ada.augment(torch.zeros(1, 3, 8, 8), 1.5)
    with pytest.raises(GanlibError, match=r"shape \(N, 3, H, W\), got \(3, 8, 8\)"):
        ada.augment(torch.zeros(3, 8, 8), 0.5)
    with pytest.raises(GanlibError, match="target=1.2 must be in"):
        ada.AdaptiveAugment(batch_size=4, target=1.2)


def test_warp_identity_is_exact_and_a_quarter_turn_is_rot90():
    x = smooth_images()
    identity = torch.eye(3).expand(2, 3, 3)
    assert torch.allclose(ada.warp(x, identity), x, atol=1e-5)  # sym6 up + down is the identity
    quarter = ada._rotate2d(torch.tensor(math.pi / 2), x)
    out = ada.warp(x, quarter)
    assert (out - torch.rot90(x, 1, (2, 3))).abs().max() < 0.15       # resampling error only
    assert (out - torch.rot90(x, -1, (2, 3))).abs().max() > 0.5       # and not the other way round


def test_grey_constant_images_stay_grey_and_constant_under_every_transform():
    # Geometric transforms of a constant image (reflection padding) give the same constant; every colour
    # transform maps the grey axis to itself (brightness, contrast, luma flip, hue rotation about it,
    # saturation). So at p = 1 each output image is one grey level.
    torch.manual_seed(0)
    x = torch.full((16, 3, 16, 16), 0.3)
    out = ada.augment(x, 1.0)
    per_image = out.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-4)
    assert per_image.std(dim=0).mean() > 0.05  # but the grey level differs between images (brightness etc.)


def test_colour_matrix_is_identity_at_p_zero_and_keeps_grey_at_p_one():
    like = torch.zeros(8, 3, 4, 4)
    assert torch.allclose(ada._colour_matrix(8, 0.0, like), torch.eye(4).expand(8, 4, 4))
    torch.manual_seed(0)
    C = ada._colour_matrix(8, 1.0, like)
    grey = torch.tensor([0.2, 0.2, 0.2, 1.0])
    out = C @ grey
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)


def test_augment_is_twice_differentiable_for_r1():
    torch.manual_seed(0)
    x = smooth_images(4, 16).requires_grad_(True)
    conv = torch.nn.Conv2d(3, 1, 3)
    logits = conv(ada.augment(x, 0.8)).mean(dim=(1, 2, 3))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad.pow(2).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_adaptive_p_moves_by_the_official_step_towards_the_target():
    aug = ada.AdaptiveAugment(batch_size=32, target=0.6, interval=4, speed_kimg=500)
    for _ in range(4):  # D certain about every real image: r_t = 1 > 0.6, p goes up
        aug.accumulate(torch.ones(32))
        aug.step()
    step = 32 * 4 / 500_000
    assert aug.p == pytest.approx(step) and aug.last_rt == 1.0
    for _ in range(8):  # D unsure: r_t = 0 < 0.6, p goes down twice and stops at 0
        aug.accumulate(torch.tensor([1.0, -1.0] * 16))
        aug.step()
    assert aug.p == 0.0 and aug.last_rt == 0.0
    fixed = ada.AdaptiveAugment(batch_size=32, p=0.25, adaptive=False)
    for _ in range(4):
        fixed.accumulate(torch.ones(32))
        fixed.step()
    assert fixed.p == 0.25


def test_state_dict_round_trip_resumes_mid_interval():
    a = ada.AdaptiveAugment(batch_size=8, interval=4, speed_kimg=0.1)
    for _ in range(6):
        a.accumulate(torch.ones(8))
        a.step()
    b = ada.AdaptiveAugment(batch_size=8, interval=4, speed_kimg=0.1)
    b.load_state_dict(a.state_dict())
    for aug in (a, b):
        for _ in range(2):
            aug.accumulate(torch.tensor([1.0, -1, -1, -1, -1, -1, -1, -1]))
            aug.step()
    assert a.p == b.p and a.last_rt == b.last_rt
    assert a.last_rt == pytest.approx((16 + 2 * (-6)) / 32)  # 2 all-positive batches + 2 mostly negative
