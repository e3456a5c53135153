import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ganlib import spade
from ganlib.cityscapes import one_hot
from ganlib.errors import GanlibError
from ganlib.spade import (SPADE, MultiscaleDiscriminator, SPADEGenerator, SPADEResBlock, VGGLoss, d_hinge_loss,
                          feature_matching_loss, g_hinge_loss)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def spade_params(norm_nc, label_nc, hidden):
    # shared 3x3 conv label_nc -> hidden, then two 3x3 convs hidden -> norm_nc (gamma, beta); all with bias
    return label_nc * hidden * 9 + hidden + 2 * (hidden * norm_nc * 9 + norm_nc)


def block_params(fin, fout, label_nc, hidden):
    fmid = min(fin, fout)
    n = fin * fmid * 9 + fmid + fmid * fout * 9 + fout
    n += spade_params(fin, label_nc, hidden) + spade_params(fmid, label_nc, hidden)
    if fin != fout:
        n += fin * fout + spade_params(fin, label_nc, hidden)  # 1x1 shortcut without bias, its SPADE
    return n


def generator_params(label_nc, nf, hidden):
    widths = [16, 16, 16, 16, 8, 4, 2, 1]  # fc output, then the seven blocks' outputs
    n = label_nc * 16 * nf * 9 + 16 * nf  # fc
    n += sum(block_params(a * nf, b * nf, label_nc, hidden) for a, b in zip(widths, widths[1:]))
    return n + nf * 3 * 9 + 3  # conv_img


def test_spade_layer_parameter_count():
    assert n_params(SPADE(32, 19, 16)) == spade_params(32, 19, 16)


def test_paper_generator_parameter_count():
    # Cityscapes config with 19 one-hot trainId channels: ngf 64, 128 hidden channels per SPADE
    assert n_params(SPADEGenerator(19, 64, 128)) == generator_params(19, 64, 128) == 92_538_819


def test_small_generator_parameter_count_matches_the_formula():
    assert n_params(SPADEGenerator(5, 4, 8)) == generator_params(5, 4, 8)


def test_discriminator_parameter_count():
    # per scale: conv (19+3)->64 with bias; 64->128, 128->256, 256->512 without bias (instance norm);
    # 512->1 with bias; all 4x4
    one = 22 * 64 * 16 + 64 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 16 + 1
    assert n_params(MultiscaleDiscriminator(19, 64, num_D=2, n_layers=4)) == 2 * one == 5_566_594


def test_spade_with_zero_gamma_and_beta_is_plain_batchnorm():
    torch.manual_seed(0)
    layer = SPADE(8, 5, hidden=4)
    for conv in (layer.mlp_gamma, layer.mlp_beta):
        torch.nn.init.zeros_(conv.weight), torch.nn.init.zeros_(conv.bias)
    x = torch.randn(2, 8, 6, 6) * 3 + 1
    seg = one_hot(torch.randint(0, 5, (2, 12, 12)), 5)
    expected = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True)[...] + 1e-5)
    assert torch.allclose(layer(x, seg), expected, atol=1e-5)


def test_spade_modulation_follows_the_label_map_spatially():
    torch.manual_seed(0)
    layer = SPADE(4, 2, hidden=8).eval()
    x = torch.zeros(1, 4, 16, 16)
    ids = torch.zeros(1, 16, 16, dtype=torch.long)
    ids[:, :, 8:] = 1  # right half is class 1
    out = layer(x, one_hot(ids, 2))
    # x is 0, so the output is beta(m) (two 3x3 convs: 2 px of context): constant inside a region
    # away from borders, different across regions
    assert torch.allclose(out[..., 2:14, 3], out[..., 2:14, 4])
    assert not torch.allclose(out[..., 2:14, 3], out[..., 2:14, 12])


def test_generator_shapes_range_and_full_convolution():
    torch.manual_seed(0)
    G = SPADEGenerator(19, ngf=2, hidden=4).eval()
    for h, w in [(64, 64), (64, 128)]:
        y = G(one_hot(torch.randint(0, 19, (1, h, w))))
        assert y.shape == (1, 3, h, w) and y.abs().max() <= 1
    with pytest.raises(GanlibError, match="multiples of 32"):
        G(torch.zeros(1, 19, 48, 64))
    with pytest.raises(GanlibError, match="one_hot"):
        G(torch.zeros(1, 3, 64, 64))


def test_residual_blocks_use_spectral_norm_and_learned_shortcuts():
    block = SPADEResBlock(8, 4, label_nc=3, hidden=4)
    assert block.learned_shortcut and parametrize.is_parametrized(block.conv_0, "weight")
    assert not SPADEResBlock(4, 4, 3, 4).learned_shortcut


def test_multiscale_discriminator_outputs_features_per_scale():
    D = MultiscaleDiscriminator(5, ndf=4, num_D=2, n_layers=4)
    seg, img = one_hot(torch.randint(0, 5, (2, 64, 128)), 5), torch.randn(2, 3, 64, 128)
    out = D(seg, img)
    assert len(out) == 2 and all(len(o) == 5 for o in out)
    # kernel 4, padding 2: s2 64x128 -> 33x65 -> 17x33 -> 9x17, s1 -> 10x18 -> 11x19
    assert out[0][-1].shape == (2, 1, 11, 19)
    assert out[1][-1].shape == (2, 1, 7, 11)  # the second scale sees a 32x64 input
    with pytest.raises(GanlibError, match="one size"):
        D(seg, torch.randn(2, 3, 32, 32))


def test_hinge_losses_against_hand_computed_values():
    # D outputs as lists of [feature, logits] per scale
    real = [[torch.zeros(1), torch.tensor([2.0, 0.5])], [torch.zeros(1), torch.tensor([-1.0])]]
    fake = [[torch.zeros(1), torch.tensor([-3.0, 0.0])], [torch.zeros(1), torch.tensor([1.0])]]
    # scale 1: real relu(1-2)=0, relu(1-0.5)=0.5 -> 0.25; fake relu(1-3)=0, relu(1+0)=1 -> 0.5
    # scale 2: real relu(1+1)=2; fake relu(1+1)=2; mean over scales: (0.75 + 4) / 2
    assert d_hinge_loss(real, fake).item() == pytest.approx(2.375)
    # G: -mean fake logits: scale 1 -> 1.5, scale 2 -> -1; averaged: 0.25
    assert g_hinge_loss(fake).item() == pytest.approx(0.25)


def test_feature_matching_against_hand_computed_values():
    real = [[torch.ones(2, 2), torch.zeros(3), torch.tensor([5.0])]]
    fake = [[torch.zeros(2, 2), torch.full((3,), 2.0), torch.tensor([-5.0])]]
    # layers (logits excluded): |1 - 0| = 1, |0 - 2| = 2 -> 3, times 10, one scale
    assert feature_matching_loss(real, fake).item() == pytest.approx(30.0)
    fm = feature_matching_loss([[torch.ones(2), torch.ones(1)]] * 2, [[torch.zeros(2), torch.ones(1)]] * 2, weight=1)
    assert fm.item() == pytest.approx(1.0)  # averaged over the two scales


def test_feature_matching_does_not_push_the_real_features():
    r = torch.ones(3, requires_grad=True)
    f = torch.zeros(3, requires_grad=True)
    feature_matching_loss([[r, r]], [[f, f]]).backward()
    assert r.grad is None and f.grad is not None


def test_vgg_loss_is_zero_for_identical_images_and_positive_otherwise():
    from torchvision.models import vgg19

    torch.manual_seed(0)
    loss = VGGLoss(vgg19(weights=None).features)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0.0
    assert loss(x, -x).item() > 0
    assert not any(p.requires_grad for p in loss.parameters())


def test_vgg_loss_is_optional_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert spade.vgg_loss() is None
    with pytest.raises(GanlibError, match="VGG-19 weights not found"):
        spade.vgg_loss(tmp_path / "missing.pth")


def test_init_reaches_parametrized_weights():
    torch.manual_seed(0)
    block = SPADEResBlock(4, 4, 3, 4)
    block.apply(spade.init_weights)
    assert block.conv_0.parametrizations.weight.original.std().item() < 0.05
    assert torch.all(block.conv_0.bias == 0)
