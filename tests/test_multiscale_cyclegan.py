import pytest
import torch
from torch import nn

from ganlib import multiscale_cyclegan as msc
from ganlib.errors import GanlibError
from ganlib.multiscale_cyclegan import (InceptionModule, MultiScaleDiscriminator, MultiScaleGenerator, generator_objective,
                                        keras_init, multiscale_d_loss, multiscale_g_loss, translate_any_size)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def inception(c_in, f, k=5):
    # three kxk convs, each followed by GroupNorm(f, f) with a scale and a shift per channel, + the 1x1 residual
    return conv(c_in, f, k) + conv(f, f, k) + conv(f, f, k) + 3 * 2 * f + conv(c_in, f, 1)


def test_inception_module_parameter_count_and_shape():
    block = InceptionModule(3, 16)
    assert n_params(block) == inception(3, 16) == 14_208
    assert block(torch.randn(2, 3, 12, 12)).shape == (2, 16, 12, 12)


def test_seed_generator_parameter_count_by_hand():
    widths = [16, 32, 64, 128, 256]
    encoder = inception(3, 16) + sum(inception(c, f) for c, f in zip(widths, widths[1:]))
    dense = (256 * 8 * 8 * 128 + 128) + (128 * 256 * 8 * 8 + 256 * 8 * 8)  # 16384 -> 128 -> 16384
    # decoder k: upsampled map (previous width) + same-size skip -> that skip's width
    decoder = inception(256 + 256, 256) + inception(256 + 128, 128) + inception(128 + 64, 64) \
        + inception(64 + 32, 32) + inception(32 + 16, 16)
    fusion = 256 * 16 * 16 * 16 + 16  # ConvTranspose 256 -> 16, kernel 16, stride 16
    to_image = conv(32, 3, 5)
    expected = encoder + dense + decoder + fusion + to_image
    assert expected == 20_239_251
    with torch.device("meta"):
        assert n_params(MultiScaleGenerator(image_size=256, base=16, depth=5, latent=128)) == expected


def test_seed_discriminator_parameter_count_by_hand():
    widths = [16, 32, 64, 128, 256]
    encoder = inception(3, 16) + sum(inception(c, f) for c, f in zip(widths, widths[1:]))
    heads = conv(256, 1, 5) + conv(128, 1, 5) + conv(64, 1, 5)
    assert encoder + heads == 5_513_731
    with torch.device("meta"):
        assert n_params(MultiScaleDiscriminator(base=16, depth=5)) == 5_513_731


def test_seed_shapes_on_meta_device():
    with torch.device("meta"):
        x = torch.zeros(2, 3, 256, 256)
        assert MultiScaleGenerator()(x).shape == (2, 3, 256, 256)
        outs = MultiScaleDiscriminator()(x)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 8, 8), (2, 1, 16, 16), (2, 1, 32, 32)]  # coarse, medium, fine


def test_generator_output_in_0_1_and_small_config_shapes():
    torch.manual_seed(0)
    G = MultiScaleGenerator(image_size=32, base=2).apply(keras_init)
    y = G(torch.rand(3, 3, 32, 32))
    assert y.shape == (3, 3, 32, 32)
    assert y.min() >= 0 and y.max() <= 1  # sigmoid
    D = MultiScaleDiscriminator(base=2)
    assert [tuple(o.shape) for o in D(y)] == [(3, 1, 1, 1), (3, 1, 2, 2), (3, 1, 4, 4)]


def test_fusion_paints_the_first_decoder_block_to_full_size():
    G = MultiScaleGenerator(image_size=64, base=2, depth=4)
    assert G.fusion.stride == (8, 8) and G.fusion.kernel_size == (8, 8)  # 64 / 2^(depth - 1) = 8x8 -> 64x64
    assert G.fusion.in_channels == 16 and G.to_image.in_channels == 2 + 2


def test_generator_is_tied_to_its_size_and_translate_any_size_resizes():
    G = MultiScaleGenerator(image_size=32, base=2).eval()
    with pytest.raises(GanlibError, match="built for 32x32 inputs.*dense bottleneck.*translate_any_size"):
        G(torch.rand(1, 3, 64, 64))
    y = translate_any_size(G, torch.rand(1, 3, 45, 70))
    assert y.shape == (1, 3, 45, 70) and 0 <= y.min() and y.max() <= 1
    with pytest.raises(GanlibError, match="multiple of 2\\*\\*depth = 32"):
        MultiScaleGenerator(image_size=48, depth=5)


def test_discriminator_rejects_sizes_it_cannot_pool():
    with pytest.raises(GanlibError, match="multiples of 32"):
        MultiScaleDiscriminator(base=2)(torch.rand(1, 3, 40, 40))
    with pytest.raises(GanlibError, match="n_outputs=6 must be between 1 and depth=5"):
        MultiScaleDiscriminator(n_outputs=6)


def test_l2_penalty_is_keras_kernel_regularizer():
    G = MultiScaleGenerator(image_size=32, base=2)
    for layer in (G.to_latent, G.from_latent):
        nn.init.constant_(layer.weight, 0.5), nn.init.constant_(layer.bias, 7.0)  # biases are not penalised
    n = G.to_latent.weight.numel() + G.from_latent.weight.numel()
    assert G.l2_penalty(1e-3).item() == pytest.approx(1e-3 * 0.25 * n)


def test_multiscale_losses_against_hand_values():
    real = [torch.full((2, 1, s, s), 0.5) for s in (1, 2, 4)]
    fake = [torch.full((2, 1, s, s), v) for s, v in ((1, 0.0), (2, 1.0), (4, 2.0))]
    total, per = multiscale_d_loss(real, fake)
    # each scale: (0.5 - 1)^2 = 0.25 plus fake^2: 0, 1, 4
    assert [per[k].item() for k in msc.SCALES] == pytest.approx([0.25, 1.25, 4.25])
    assert total.item() == pytest.approx(5.75)
    g_total, g_per = multiscale_g_loss(fake)
    assert [g_per[k].item() for k in msc.SCALES] == pytest.approx([1.0, 0.0, 1.0])
    with pytest.raises(GanlibError, match="3 real and 2 fake"):
        multiscale_d_loss(real, fake[:2])
    halved_total, halved = multiscale_d_loss(real, fake, halve=True)  # the official CycleGAN's 1/2
    assert [halved[k].item() for k in msc.SCALES] == pytest.approx([0.125, 0.625, 2.125])
    assert halved_total.item() == pytest.approx(2.875)


def test_generator_objective_uses_the_seed_weights():
    ones = [torch.ones(1, 1, s, s) for s in (1, 2, 4)]
    zeros = [torch.zeros(1, 1, s, s) for s in (1, 2, 4)]
    a = b = torch.zeros(1, 3, 4, 4)
    out = generator_objective(zeros, ones, a, a + 0.1, b, b + 0.2, b + 0.4, a + 0.6)
    # adversarial: 3 scales * 1 (G's fakes scored 0) + 0 (F's scored 1) = 3; cycle 10 * 0.3 = 3; identity 0.5 * 1.0
    assert out["gan_G"].item() == pytest.approx(3.0) and out["gan_F"].item() == pytest.approx(0.0)
    assert out["gan_G_fine"].item() == pytest.approx(1.0)
    assert out["total"].item() == pytest.approx(3 + 3 + 0.5)


def test_make_optimizer_is_keras_adam_with_decoupled_weight_decay():
    p = nn.Parameter(torch.ones(3))
    opt = msc.make_optimizer([p], 1e-4)
    assert isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-4, (0.9, 0.999), 1e-7, 6e-8)
    assert msc.make_optimizer([p], 5e-4, beta1=0.5).param_groups[0]["betas"] == (0.5, 0.999)


def test_one_bench_step_changes_every_network():
    torch.manual_seed(0)
    setup = msc.bench_setup(32, 1, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False),
                            torch.contiguous_format)
    before = [[p.detach().clone() for p in m.parameters()] for m in setup.modules]
    setup.step()
    for m, old in zip(setup.modules, before):
        assert any(not torch.equal(p, q) for p, q in zip(m.parameters(), old))
