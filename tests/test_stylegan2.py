import math

import pytest
import torch
import torch.nn.functional as F

from ganlib import stylegan2 as sg
from ganlib.errors import GanlibError


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def tiny_G(resolution=16, **kw):
    kw = dict(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=16) | kw
    return sg.Generator(resolution, **kw)


# ---------------------------------------------------------------------------------------------
# Configuration and parameter counts


def test_channels_follow_the_ada_rule_and_bad_resolutions_are_refused():
    assert sg.channels_for(128, 16384, 512) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128}
    assert sg.channels_for(32, 1024, 128) == {4: 128, 8: 128, 16: 64, 32: 32}
    with pytest.raises(GanlibError, match="resolution=96: StyleGAN2 grows from a 4x4 constant by doublings"):
        sg.channels_for(96)


def test_paper_preset_is_the_ada_auto_config_at_128():
    P = sg.PAPER_128
    res, mb = P["resolution"], P["batch_size"]
    assert mb == min(4096 // res, 32) == 32
    assert P["r1_gamma"] == pytest.approx(0.0002 * res ** 2 / mb)  # 0.1024
    assert P["ema_kimg"] == mb * 10 / 32 and P["mapping_layers"] == 2 and P["mbstd_group"] == 4
    assert (P["g_reg_every"], P["d_reg_every"], P["style_mixing_prob"]) == (4, 16, 0.9)


def _expected_generator_params(ch, z_dim, w_dim, n_map):
    def styled(i, o, k):  # conv weight + affine (w_dim -> in, with bias) + noise strength + bias
        return o * i * k * k + (w_dim * i + i) + 1 + o

    def to_rgb(i):
        return 3 * i + (w_dim * i + i) + 3

    total = sum((z_dim if l == 0 else w_dim) * w_dim + w_dim for l in range(n_map))  # mapping
    total += ch[4] * 16 + styled(ch[4], ch[4], 3) + to_rgb(ch[4])                   # const, 4x4 block
    sizes = sorted(ch)
    for lo, hi in zip(sizes[:-1], sizes[1:]):
        total += styled(ch[lo], ch[hi], 3) + styled(ch[hi], ch[hi], 3) + to_rgb(ch[hi])
    return total


def _expected_discriminator_params(ch, resolution):
    total = 3 * ch[resolution] + ch[resolution]                                      # fromRGB 1x1
    for res in sorted(ch, reverse=True)[:-1]:
        i, o = ch[res], ch[res // 2]
        total += (i * i * 9 + i) + (i * o * 9 + o) + i * o                           # conv, conv down, skip
    c4 = ch[4]
    total += (c4 + 1) * c4 * 9 + c4 + (c4 * 16 * c4 + c4) + (c4 + 1)                # epilogue
    return total


def test_paper_config_parameter_counts():
    P = sg.PAPER_128
    torch.manual_seed(0)
    G = sg.Generator(128, P["z_dim"], P["w_dim"], P["mapping_layers"], P["channel_base"], P["channel_max"])
    D = sg.Discriminator(128, P["channel_base"], P["channel_max"])
    ch = sg.channels_for(128)
    assert n_params(G.mapping_network) == 2 * (512 * 512 + 512) == 525_312
    assert n_params(G) == _expected_generator_params(ch, 512, 512, 2) == 22_949_277
    assert n_params(D) == _expected_discriminator_params(ch, 128) == 23_882_369
    assert G.num_ws == 12


# ---------------------------------------------------------------------------------------------
# Resampling


def test_blur_kernel_is_the_normalized_outer_product_of_1_3_3_1():
    k = sg.make_kernel()
    expected = torch.tensor([1.0, 3, 3, 1])
    assert torch.allclose(k, torch.outer(expected, expected) / 64)


def test_upfirdn2d_matches_hand_computed_1d_case():
    # A 1x2 image [1, 2], up=2: zero insertion gives rows [1, 0, 2, 0] and [0, 0, 0, 0]; pad (1, 0)
    # adds one zero column on the left and one zero row on top: rows 0, [0, 1, 0, 2, 0], 0.
    # The 1x2 filter [1, 1] sums neighbours along the width: (3, 5) -> (3, 4), middle row [1, 1, 2, 2].
    x = torch.tensor([[[[1.0, 2.0]]]])
    k = torch.tensor([[1.0, 1.0]])
    out = sg.upfirdn2d(x, k, up=2, pad=(1, 0))
    assert out.shape == (1, 1, 3, 4)
    assert torch.equal(out[0, 0, 1], torch.tensor([1.0, 1.0, 2.0, 2.0]))
    assert torch.equal(out[0, 0, 0], torch.zeros(4))


def test_a_1d_kernel_is_applied_separably_as_its_outer_product():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9)
    taps = torch.tensor([0.1, -0.3, 0.7, 0.5])  # asymmetric, so a missing flip would show
    for up, down, pad in [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1))]:
        separable = sg.upfirdn2d(x, taps, up=up, down=down, pad=pad)
        full = sg.upfirdn2d(x, torch.outer(taps, taps), up=up, down=down, pad=pad)
        assert torch.allclose(separable, full, atol=1e-5)


def test_up_and_downsampling_halve_and_double_and_keep_a_constant_image_constant():
    x = torch.full((2, 3, 8, 8), 0.7)
    up, down = sg.Upsample()(x), sg.Downsample()(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    # away from the zero-padded border, the gains keep the mean brightness exactly
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7), atol=1e-6)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Layers


def test_equal_linear_scales_weights_at_run_time_with_the_lr_multiplier():
    torch.manual_seed(0)
    layer = sg.EqualLinear(16, 4, bias_init=0.5, lr_mul=0.01)
    x = torch.randn(3, 16)
    expected = x @ (layer.weight * 0.01 / 4).T + 0.5 * 0.01
    assert torch.allclose(layer(x), expected, atol=1e-6)
    # stored as N(0, 1) / lr_mul: the effective weight has std ~ 1 / sqrt(fan_in)
    assert (layer.weight * layer.scale).std().item() == pytest.approx(1 / 4, rel=0.3)


def test_modulated_conv_equals_a_plain_conv_with_each_samples_demodulated_weight():
    torch.manual_seed(0)
    conv = sg.ModulatedConv2d(4, 5, 3, w_dim=6)
    x, w = torch.randn(2, 4, 7, 7), torch.randn(2, 6)
    out = conv(x, w)
    for i in range(2):
        s = conv.modulation(w[i:i + 1])[0]                                # style (4,)
        weight = conv.weight[0] * conv.scale * s[None, :, None, None]     # Eq. 1
        weight = weight / torch.sqrt(weight.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)  # Eq. 3
        assert torch.allclose(out[i], F.conv2d(x[i:i + 1], weight, padding=1)[0], atol=1e-5)


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_fused_and_unfused_modulated_conv_agree(upsample, demodulate):
    torch.manual_seed(0)
    conv = sg.ModulatedConv2d(4, 5, 3, w_dim=6, demodulate=demodulate, upsample=upsample)
    x, w = torch.randn(3, 4, 6, 6), torch.randn(3, 6)
    assert torch.allclose(conv(x, w, fused=True), conv(x, w, fused=False), atol=1e-5)
    assert conv.train()(x, w).shape == conv.eval()(x, w).shape


def test_demodulation_makes_the_output_invariant_to_the_style_scale():
    torch.manual_seed(0)
    conv = sg.ModulatedConv2d(4, 5, 3, w_dim=6)
    x, w = torch.randn(1, 4, 6, 6), torch.randn(1, 6)
    base = conv(x, w)
    with torch.no_grad():
        conv.modulation.weight.mul_(3.0), conv.modulation.bias.mul_(3.0)  # s -> 3 s
    assert torch.allclose(conv(x, w), base, atol=1e-5)


def test_upsampling_modulated_conv_doubles_the_resolution():
    conv = sg.ModulatedConv2d(4, 5, 3, w_dim=6, upsample=True)
    assert conv(torch.randn(2, 4, 6, 6), torch.randn(2, 6)).shape == (2, 5, 12, 12)


def test_minibatch_stddev_matches_a_hand_computation():
    x = torch.arange(2 * 2 * 1 * 1, dtype=torch.float32).reshape(4, 1, 1, 1)  # values 0, 1, 2, 3
    out = sg.MinibatchStdDev(group_size=2)(x)
    # groups pair sample i with sample i + 2: (0, 2) and (1, 3); population std of each pair is 1
    assert out.shape == (4, 2, 1, 1)
    assert torch.allclose(out[:, 1].flatten(), torch.ones(4), atol=1e-4)
    with pytest.raises(GanlibError, match="batch 6 does not split into groups of 4"):
        sg.MinibatchStdDev(group_size=4)(torch.zeros(6, 2, 4, 4))


# ---------------------------------------------------------------------------------------------
# Generator and discriminator


def test_generator_shapes_noise_modes_and_input_errors():
    torch.manual_seed(0)
    G = tiny_G(16)
    assert G.num_ws == 6 and G.num_noise == 5
    z = torch.randn(3, 8)
    assert G(z).shape == (3, 3, 16, 16)
    assert torch.equal(G(z), G(z))  # noise strengths start at 0: no effect yet
    with torch.no_grad():
        for module in G.modules():
            if isinstance(module, sg.NoiseInjection):
                module.weight.fill_(1.0)
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.equal(G(z), G(z))  # fresh noise each call
    assert not torch.equal(G(z, noise_mode="none"), G(z, noise_mode="const"))
    with pytest.raises(GanlibError, match=r"expected \(N, 8\)"):
        G(torch.randn(3, 7))
    with pytest.raises(GanlibError, match=r"expected \(N, 6, 8\): one w per layer"):
        G.synthesis(torch.randn(3, 5, 8))


def test_truncation_pulls_w_towards_the_tracked_mean():
    torch.manual_seed(0)
    G = tiny_G(8)
    z = torch.randn(64, 8)
    assert torch.equal(G.w_avg, torch.zeros(8))
    w = G.mapping(z, update_w_avg=True)
    assert torch.allclose(G.w_avg, 0.005 * w.mean(0), atol=1e-6)  # lerp with 1 - beta = 0.005
    w_half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(w_half, G.w_avg + 0.5 * (w - G.w_avg), atol=1e-6)
    assert torch.allclose(G.mapping(z, truncation_psi=0.0), G.w_avg.expand(64, -1))


def test_style_mixing_switches_latents_at_one_cutoff():
    torch.manual_seed(0)
    G = tiny_G(16)
    ws = sg.mixed_ws(G, 4, mixing_prob=1.0, device="cpu")
    changes = [not torch.equal(ws[:, i], ws[:, i + 1]) for i in range(G.num_ws - 1)]
    assert sum(changes) == 1  # exactly one cutoff: a prefix from z1, the rest from z2
    ws = sg.mixed_ws(G, 4, mixing_prob=0.0, device="cpu")
    assert all(torch.equal(ws[:, 0], ws[:, i]) for i in range(G.num_ws))


def test_discriminator_gives_one_logit_per_image_and_names_a_wrong_size():
    torch.manual_seed(0)
    D = sg.Discriminator(16, channel_base=64, channel_max=16, mbstd_group=2)
    assert D(torch.randn(4, 3, 16, 16)).shape == (4,)
    with pytest.raises(GanlibError, match="build the Discriminator with resolution=32"):
        D(torch.randn(4, 3, 32, 32))


# ---------------------------------------------------------------------------------------------
# Losses and regularizers


def test_logistic_losses_at_zero_logits():
    zero = torch.zeros(8)
    assert sg.d_logistic_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert sg.g_nonsaturating_loss(zero).item() == pytest.approx(math.log(2))
    big = torch.full((8,), 20.0)
    assert sg.d_logistic_loss(big, -big).item() == pytest.approx(0.0, abs=1e-8)


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    w = torch.randn(3 * 4 * 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    r1 = sg.r1_penalty(x.flatten(1) @ w, x)
    assert r1.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    r1.backward()  # differentiable in D's weights: d/dw ||w||^2 = 2 w
    assert torch.allclose(w.grad, 2 * w.detach(), atol=1e-5)


def test_path_length_of_a_linear_map_and_the_running_mean():
    # images = ws @ A (per sample): J^T y = y A^T; E||J^T y||^2 = ||A||_F^2 / (H W) with y ~ N(0, I / HW)
    torch.manual_seed(0)
    pl = sg.PathLengthPenalty(decay=0.5)
    ws = torch.randn(4096, 1, 8, requires_grad=True)
    A = torch.randn(8, 3 * 2 * 2)
    images = (ws[:, 0] @ A).reshape(-1, 3, 2, 2)
    penalty, lengths = pl(images, ws)
    expected = A.pow(2).sum().div(4).sqrt()
    assert lengths.mean().item() == pytest.approx(expected.item(), rel=0.05)
    assert pl.mean.item() == pytest.approx(0.5 * lengths.mean().item(), rel=1e-5)  # a <- a + 0.5 (mean - a)
    assert penalty.item() == pytest.approx((lengths - pl.mean).pow(2).mean().item(), rel=1e-5)


def test_lazy_adam_rescales_lr_and_betas():
    opt = sg.lazy_adam([torch.nn.Parameter(torch.zeros(1))], lr=0.0025, betas=(0.0, 0.99), reg_every=16)
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))


def test_one_regularized_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    G = tiny_G(8)
    D = sg.Discriminator(8, channel_base=64, channel_max=16, mbstd_group=2)
    real = torch.randn(4, 3, 8, 8).requires_grad_(True)
    logits = D(real)
    loss_D = sg.d_logistic_loss(logits, D(G(torch.randn(4, 8)).detach())) + sg.r1_penalty(logits, real)
    loss_D.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    ws = sg.mixed_ws(G, 4, 0.9, "cpu")
    images = G.synthesis(ws)
    penalty, _ = sg.PathLengthPenalty()(images, ws)
    (sg.g_nonsaturating_loss(D(images)) + penalty).backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None]
    assert not missing


def test_bench_setup_runs_regularized_steps(monkeypatch):
    for key, value in dict(z_dim=8, w_dim=8, channel_base=64, channel_max=16).items():
        monkeypatch.setitem(sg.PAPER_128, key, value)
    setup = sg.bench_setup(16, 4, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False),
                           torch.contiguous_format)
    G, D = setup.modules
    before = [p.detach().clone() for p in G.parameters()]
    setup.step()  # step 0 runs R1 and path length too
    assert (setup.size, setup.batch) == (16, 4)
    assert all(not torch.equal(a, b) for a, b in zip(before, G.parameters()) if a.numel() > 1)
