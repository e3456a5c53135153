import math

import pytest
import torch
from torch import nn

from ganlib import pix2pix
from ganlib.errors import GanlibError
from ganlib.pix2pix import Discriminator, Generator, d_loss, g_loss, init_weights


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_seed_generator_parameter_count():
    # The seed's U-Net with in_channels=3, features=64 (it maps 3 channels back to 3).
    assert n_params(Generator(in_channels=3, features=64)) == 54_414_531


def test_seed_discriminator_parameter_count():
    # Conv 6->64 (bias): 6*64*16 + 64 = 6,208
    # Conv 64->128, 128->256, 256->512 without bias, each + BatchNorm (2 per channel):
    #   131,072 + 256 + 524,288 + 512 + 2,097,152 + 1,024
    # Conv 512->1 (bias): 512*16 + 1 = 8,193                         total 2,768,705
    assert n_params(Discriminator(in_channels=3)) == 6_208 + 131_328 + 524_800 + 2_098_176 + 8_193 == 2_768_705


def test_int_features_scale_the_discriminator_like_the_list():
    assert n_params(Discriminator(3, 64)) == n_params(Discriminator(3, (64, 128, 256, 512)))


def test_generator_shapes_and_range_on_square_and_wide_inputs():
    torch.manual_seed(0)
    G = Generator(3, features=4).eval()
    for h, w in [(256, 256), (256, 512)]:
        y = G(torch.randn(1, 3, h, w))
        assert y.shape == (1, 3, h, w)
        assert y.abs().max() <= 1.0


def test_generator_can_map_to_a_different_number_of_channels():
    G = Generator(in_channels=1, features=4, out_channels=3).eval()
    assert G(torch.randn(1, 1, 256, 256)).shape == (1, 3, 256, 256)


def test_generator_rejects_sizes_that_are_not_multiples_of_256():
    G = Generator(3, features=4)
    with pytest.raises(GanlibError, match="multiples of 256"):
        G(torch.randn(1, 3, 128, 128))
    with pytest.raises(GanlibError, match=r"expects \(N, 3, H, W\)"):
        G(torch.randn(3, 256, 256))


def test_patchgan_gives_30x30_logits_at_256_and_sees_70x70_patches():
    D = Discriminator(3, 4).eval()
    x = torch.randn(1, 3, 256, 256)
    assert D(x, x).shape == (1, 1, 30, 30)
    # Receptive field of the 5 conv layers (k=4; strides 2, 2, 2, 1, 1): 1 + 3*(1 + 1 + 2 + 4 + 8) = ... = 70
    rf, jump = 1, 1
    for stride in (2, 2, 2, 1, 1):
        rf += 3 * jump
        jump *= stride
    assert rf == 70
    with pytest.raises(GanlibError, match="of one shape"):
        D(x, torch.randn(1, 3, 128, 128))


def test_dropout_makes_the_generator_stochastic_in_train_mode_only():
    torch.manual_seed(0)
    G = Generator(3, features=4)
    x = torch.randn(2, 3, 256, 256)
    G.train()
    assert not torch.allclose(G(x), G(x))
    G.eval()
    assert torch.equal(G(x), G(x))


def test_losses_against_hand_computed_values():
    zero = torch.zeros(2, 1, 30, 30)
    # logits 0: each BCE term is log 2, D's average of two is log 2
    assert d_loss(zero, zero).item() == pytest.approx(math.log(2))
    fake, real = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.5)
    total, gan, l1 = g_loss(zero, fake, real)
    assert gan.item() == pytest.approx(math.log(2))
    assert l1.item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(math.log(2) + 100 * 0.5)
    # a confident, correct D: BCE(10, 1) = log(1 + e^-10)
    big = torch.full((1, 1, 2, 2), 10.0)
    assert d_loss(big, -big).item() == pytest.approx(math.log1p(math.exp(-10)), rel=1e-2)  # float32


def test_init_weights_follows_the_reference_statistics():
    torch.manual_seed(0)
    G = Generator(3, features=16)
    G.apply(init_weights)
    w = G.down3.conv[0].weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    bn = G.down3.conv[1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and torch.all(bn.bias == 0)


def test_one_training_step_lowers_the_l1_term_on_a_fixed_pair():
    torch.manual_seed(0)
    G, D = Generator(3, 4), Discriminator(3, 4)
    G.apply(init_weights), D.apply(init_weights)
    opt = torch.optim.Adam(G.parameters(), lr=pix2pix.PAPER["lr"], betas=pix2pix.PAPER["betas"])
    x, y = torch.randn(2, 3, 256, 256).clamp(-1, 1), torch.rand(2, 3, 256, 256) * 2 - 1
    G.eval()  # no dropout: the same function before and after
    before = (G(x) - y).abs().mean().item()
    G.train()
    for _ in range(3):
        fake = G(x)
        loss = g_loss(D(x, fake), fake, y)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    G.eval()
    assert (G(x) - y).abs().mean().item() < before


def test_layer_types_follow_the_seed():
    G = Generator(3, 4)
    downs = [m for m in G.modules() if isinstance(m, nn.Conv2d)]
    ups = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(downs) == 8 and len(ups) == 8  # 8 stride-2 convs down (with the bottleneck), 8 up
    assert all(m.stride == (2, 2) for m in downs + ups)
    # dropout 0.5 in the first three decoder blocks only
    assert [b.use_dropout for b in (G.up1, G.up2, G.up3, G.up4, G.up5, G.up6, G.up7)] == [True] * 3 + [False] * 4
    assert not any(b.use_dropout for b in (G.down1, G.down2, G.down3, G.down4, G.down5, G.down6))
