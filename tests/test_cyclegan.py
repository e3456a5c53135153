import pytest
import torch
from torch import nn

from ganlib import cyclegan
from ganlib.cyclegan import (PatchDiscriminator, ResnetGenerator, UnpairedScenes, cycle_loss, generator_objective,
                             identity_loss, init_weights, lsgan_d_loss, lsgan_g_loss, translate_any_size)
from ganlib.errors import DataError, GanlibError


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def conv(c_in, c_out, k):  # weights + bias
    return c_in * c_out * k * k + c_out


def test_official_resnet_9blocks_generator_parameter_count():
    # InstanceNorm2d(affine=False) has no parameters, so every conv keeps its bias (official code):
    expected = (conv(3, 64, 7)  # c7s1-64: 9,472
                + conv(64, 128, 3) + conv(128, 256, 3)  # d128, d256: 73,856 + 295,168
                + 9 * 2 * conv(256, 256, 3)  # R256 x 9: 10,621,440
                + conv(256, 128, 3) + conv(128, 64, 3)  # u128, u64 (transposed): 295,040 + 73,792
                + conv(64, 3, 7))  # c7s1-3: 9,411
    assert expected == 11_378_179
    with torch.device("meta"):
        assert n_params(ResnetGenerator(ngf=64, n_blocks=9)) == 11_378_179


def test_official_70x70_patchgan_parameter_count():
    expected = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 4)
    assert expected == 3_136 + 131_200 + 524_544 + 2_097_664 + 8_193 == 2_764_737
    with torch.device("meta"):
        assert n_params(PatchDiscriminator(ndf=64, n_layers=3)) == 2_764_737


def test_paper_shapes_on_meta_device():
    with torch.device("meta"):
        x = torch.zeros(1, 3, 256, 256)
        assert ResnetGenerator()(x).shape == (1, 3, 256, 256)
        assert PatchDiscriminator()(x).shape == (1, 1, 30, 30)  # 256 -> 128 -> 64 -> 32 -> 31 -> 30


def test_generator_is_fully_convolutional_and_bounded():
    torch.manual_seed(0)
    G = ResnetGenerator(ngf=4, n_blocks=1).apply(init_weights)
    for h, w in [(16, 16), (24, 40)]:
        y = G(torch.randn(2, 3, h, w))
        assert y.shape == (2, 3, h, w)
        assert y.abs().max() <= 1.0  # tanh


def test_generator_refuses_sizes_not_multiple_of_4_and_translate_any_size_pads():
    G = ResnetGenerator(ngf=4, n_blocks=1).eval()
    x = torch.randn(1, 3, 18, 30)
    with pytest.raises(GanlibError, match="multiples of 4.*translate_any_size"):
        G(x)
    y = translate_any_size(G, x)
    assert y.shape == x.shape
    # on a size that needs no padding it is G itself
    x16 = torch.randn(1, 3, 16, 16)
    assert torch.equal(translate_any_size(G, x16), G(x16))


def test_residual_block_is_identity_when_its_convs_are_zero():
    block = cyclegan.ResnetBlock(8)
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight), nn.init.zeros_(m.bias)
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(block(x), x)


def test_init_weights_draws_n_0_002_and_zero_bias():
    torch.manual_seed(0)
    G = ResnetGenerator(ngf=16, n_blocks=2).apply(init_weights)
    weights = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(weights.std().item() - 0.02) < 0.001
    assert abs(weights.mean().item()) < 0.001
    assert all(m.bias.abs().sum() == 0 for m in G.modules() if isinstance(m, nn.Conv2d))


def test_lsgan_losses_against_hand_values():
    real, fake = torch.full((2, 1, 3, 3), 0.5), torch.full((2, 1, 3, 3), 2.0)
    # D: (0.5 - 1)^2 = 0.25, 2^2 = 4 -> halved 2.125, seed 4.25
    assert lsgan_d_loss(real, fake).item() == pytest.approx(2.125)
    assert lsgan_d_loss(real, fake, halve=False).item() == pytest.approx(4.25)
    assert lsgan_g_loss(fake).item() == pytest.approx(1.0)  # (2 - 1)^2
    x = torch.zeros(1, 3, 4, 4)
    assert cycle_loss(x, x + 0.3).item() == pytest.approx(0.3)
    assert identity_loss(x, x - 0.2).item() == pytest.approx(0.2)


def test_generator_objective_weights_identity_by_lambda_cycle_times_lambda_identity():
    ones = torch.ones(1, 1, 2, 2)
    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    out = generator_objective(ones * 0, ones * 2, a, a + 0.1, b, b + 0.2, b + 0.3, a + 0.4,
                              lambda_cycle=10.0, lambda_identity=0.5)
    # gan: (0 - 1)^2 + (2 - 1)^2 = 2; cycle: 10 * (0.1 + 0.2) = 3; identity: 10 * 0.5 * (0.4 + 0.3) = 3.5
    assert out["gan_G"].item() == pytest.approx(1.0)
    assert out["total"].item() == pytest.approx(2 + 3 + 3.5)
    no_idt = generator_objective(ones * 0, ones * 2, a, a + 0.1, b, b + 0.2, lambda_identity=0.0)
    assert no_idt["total"].item() == pytest.approx(5.0)
    assert "idt_A" not in no_idt
    with pytest.raises(GanlibError, match="lambda_identity > 0 needs"):
        generator_objective(ones, ones, a, a, b, b, lambda_identity=0.5)
    # lambda_adv scales only the two adversarial terms: 0.25 * 2 + 3 + 3.5; the logged terms stay unweighted
    half = generator_objective(ones * 0, ones * 2, a, a + 0.1, b, b + 0.2, b + 0.3, a + 0.4,
                               lambda_cycle=10.0, lambda_identity=0.5, lambda_adv=0.25)
    assert half["total"].item() == pytest.approx(0.5 + 3 + 3.5)
    assert half["gan_F"].item() == pytest.approx(1.0)


def fake_scenes(n, size=8):
    return [dict(night=torch.full((3, size, size), float(i)), day=torch.full((3, size, size), 100.0 + i)) for i in range(n)]


def test_unpaired_scenes_never_pairs_a_scene_with_its_own_day_and_is_reproducible():
    data = UnpairedScenes(fake_scenes(5), seed=3)
    partners = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        for i in range(5):
            item = data[i]
            assert item["A"][0, 0, 0].item() == i
            j = int(item["B"][0, 0, 0].item()) - 100
            assert j != i
            partners.add((i, j))
            again = UnpairedScenes(fake_scenes(5), seed=3)
            again.set_epoch(epoch)
            assert torch.equal(again[i]["B"], item["B"])  # a function of (seed, epoch, i) only
    assert len(partners) > 5  # the B partner changes with the epoch


def test_unpaired_scenes_crop_and_flip():
    scenes = [dict(night=torch.arange(64.0).view(1, 8, 8).expand(3, 8, 8), day=torch.zeros(3, 8, 8)) for _ in range(3)]
    data = UnpairedScenes(scenes, crop=5, flip=True, seed=0)
    shapes = {tuple(data[i]["A"].shape) for i in range(3)}
    assert shapes == {(3, 5, 5)}
    with pytest.raises(DataError, match="crop=9 is larger than the 8x8"):
        UnpairedScenes(scenes, crop=9)


def test_unpaired_scenes_errors():
    with pytest.raises(DataError, match="at least 2 scenes"):
        UnpairedScenes(fake_scenes(1))
    with pytest.raises(DataError, match=r"no key\(s\) \['dusk'\]"):
        UnpairedScenes(fake_scenes(3), key_b="dusk")


def test_one_training_step_changes_every_network():
    torch.manual_seed(0)
    setup = cyclegan.bench_setup(32, 1, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False),
                                 torch.contiguous_format)
    # the paper configuration (ngf = ndf = 64), on a small 32 px batch (30x30 patches need at least 32 px)
    before = [[p.detach().clone() for p in m.parameters()] for m in setup.modules]
    setup.step()
    for m, old in zip(setup.modules, before):
        assert any(not torch.equal(p, q) for p, q in zip(m.parameters(), old))
