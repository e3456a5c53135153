import math

import numpy as np
import pytest
import torch
from torch import nn

from ganlib import colorization as C
from ganlib.errors import DataError, GanlibError


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Lab


def test_lab_scaling_of_white_black_and_red():
    # sRGB white: L* = 100, a* = b* = 0; black: L* = 0; pure red (D65): L* 53.24, a* 80.09, b* 67.20.
    rgb = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, -1.0, -1.0]]).T.reshape(1, 3, 1, 3)
    L, ab = C.rgb_to_lab(rgb)
    assert L.shape == (1, 1, 1, 3) and ab.shape == (1, 2, 1, 3)
    assert L[0, 0, 0].tolist() == pytest.approx([1.0, -1.0, 53.24 / 50 - 1], abs=1e-3)
    assert ab[0, :, 0, 0].abs().max() < 1e-3
    assert ab[0, :, 0, 2].tolist() == pytest.approx([80.09 / 110, 67.20 / 110], abs=1e-3)


def test_lab_round_trip_and_single_images():
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 8, 8) * 2 - 1
    L, ab = C.rgb_to_lab(rgb)
    assert torch.allclose(C.lab_to_rgb(L, ab), rgb, atol=1e-4)
    L1, ab1 = C.rgb_to_lab(rgb[0])
    assert L1.shape == (1, 8, 8) and ab1.shape == (2, 8, 8)
    assert torch.equal(L1, L[0])
    grey = C.grey_rgb(L)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-4) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-4)


def test_lab_errors_name_the_expected_shapes():
    with pytest.raises(GanlibError, match=r"\(N, 3, H, W\)"):
        C.rgb_to_lab(torch.zeros(1, 1, 8, 8))
    with pytest.raises(GanlibError, match=r"L \(N, 1, H, W\) and ab \(N, 2, H, W\)"):
        C.lab_to_rgb(torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 4, 4))


# ----------------------------------------------------------------------------------------------
# Data


def test_shipped_photos_are_real_colour_photos():
    photos = C.shipped_photos()
    assert {"astronaut", "coffee", "chelsea", "rocket", "motorcycle", "china", "flower"} <= set(photos)
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 300


def test_photo_crops_are_a_function_of_seed_and_index():
    photos = [np.random.default_rng(i).integers(0, 256, (90, 120, 3), dtype=np.uint8) for i in range(2)]
    crops = C.PhotoCrops(photos, 6, 32, seed=0)
    assert len(crops) == 6
    x = crops[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert torch.equal(x, C.PhotoCrops(photos, 6, 32, seed=0)[3])
    assert not torch.equal(x, C.PhotoCrops(photos, 6, 32, seed=1)[3])
    with pytest.raises(IndexError):
        crops[6]
    with pytest.raises(DataError, match="no photos"):
        C.PhotoCrops([], 4, 32)
    with pytest.raises(DataError, match="uint8 HxWx3"):
        C.PhotoCrops([np.zeros((40, 40), np.uint8)], 4, 32)


def test_lab_images_wraps_dict_and_plain_datasets():
    class Days(torch.utils.data.Dataset):
        epoch = None

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return dict(day=torch.zeros(3, 16, 16) + 0.1 * i, night=torch.zeros(3, 16, 16))

        def set_epoch(self, e):
            self.epoch = e

    days = Days()
    item = C.LabImages(days, key="day")[1]
    assert set(item) == {"L", "ab"} and item["L"].shape == (1, 16, 16) and item["ab"].shape == (2, 16, 16)
    C.LabImages(days, key="day").set_epoch(3)
    assert days.epoch == 3
    with pytest.raises(DataError, match="key="):
        C.LabImages(days)[0]
    plain = C.LabImages([torch.zeros(3, 8, 8)])
    assert plain[0]["L"].shape == (1, 8, 8)


# ----------------------------------------------------------------------------------------------
# Generators


def test_resnet_unet_parameter_count_at_the_seeds_config():
    # Encoder: torchvision resnet18 11,689,512 - fc (512*1000 + 1000) - conv1 3->64 7x7 (9,408) + 1->64 (3,136)
    #   = 11,170,240.
    # Decoder (fastai DynamicUnet(resnet18, 2, (256, 256)), norm_type=None: convs with bias, no BN but the listed):
    #   middle  BN 512 (1,024) + conv 512->1024 (4,719,616) + conv 1024->512 (4,719,104)     = 9,439,744
    #   up4     1x1 512->1024 (525,312) + BN 256 (512) + 2 convs 512->512 (2 x 2,359,808)   = 5,245,440
    #   up3     1x1 512->1024 (525,312) + BN 128 (256) + 2 convs 384->384 (2 x 1,327,488)   = 3,180,544
    #   up2     1x1 384->768 (295,680) + BN 64 (128) + 2 convs 256->256 (2 x 590,080)       = 1,475,968
    #   up1     1x1 256->512 (131,584) + BN 64 (128) + conv 192->96 (165,984) + 96->96 (83,040) = 380,736
    #   up0     1x1 96->384 (37,248); res block 2 convs 97->97 (2 x 84,778 = 169,556); head 97->2 (196)
    G = C.ResNetUNet(pretrained=False)
    assert n_params(G.encoder) == 11_170_240
    assert n_params(G.middle) == 9_439_744
    assert [n_params(b) for b in (G.up4, G.up3, G.up2, G.up1)] == [5_245_440, 3_180_544, 1_475_968, 380_736]
    assert n_params(G) == 31_099_672
    assert G.encoder.conv1.in_channels == 1 and G.encoder_weights.startswith("random init")


def test_resnet_unet_shapes_and_size_check():
    torch.manual_seed(0)
    G = C.ResNetUNet(decoder_scale=0.25).eval()
    with torch.no_grad():
        assert G(torch.zeros(2, 1, 64, 96)).shape == (2, 2, 64, 96)
    with pytest.raises(GanlibError, match="divisible by 32, got 50x64.*colorization.colorize"):
        G(torch.zeros(1, 1, 50, 64))
    with pytest.raises(GanlibError, match=r"\(N, 1, H, W\)"):
        G(torch.zeros(1, 3, 64, 64))


def test_pretrained_encoder_sums_the_imagenet_filters_when_the_file_is_cached(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    missing, used = C.resnet18_encoder(pretrained=True)
    assert used.startswith("random init: ImageNet weights not found at") and C.RESNET18_FILE in used

    torch.manual_seed(1)
    reference = resnet18(weights=None).state_dict()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference, tmp_path / "checkpoints" / C.RESNET18_FILE)
    net, used = C.resnet18_encoder(pretrained=True)
    assert used.startswith("ImageNet")
    assert torch.allclose(net.conv1.weight, reference["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(net.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])


def test_pixel_shuffle_starts_as_nearest_neighbour_upsampling():
    torch.manual_seed(0)
    up = C.PixelShuffleUp(8, 4)
    y = up(torch.randn(1, 8, 3, 3))
    assert y.shape == (1, 4, 6, 6)
    for dy, dx in [(0, 1), (1, 0), (1, 1)]:
        assert torch.allclose(y[..., dy::2, dx::2], y[..., ::2, ::2], atol=1e-6)


def test_pix2pix_unet_parameter_count_and_layout():
    # 1 -> 2 channels, ngf 64, 8 levels (4x4 convs, BN-following convs bias-free):
    #   outermost  down 1->64 (1,024)               up 128->2 + bias (4,098)
    #   64/128     down 131,072 + BN 256            up 256->64 262,144 + BN 128       = 393,600
    #   128/256    down 524,288 + BN 512            up 512->128 1,048,576 + BN 256    = 1,573,632
    #   256/512    down 2,097,152 + BN 1,024        up 1024->256 4,194,304 + BN 512   = 6,292,992
    #   3 x 512/512 with dropout: 4,194,304 + 1,024 + 8,388,608 + 1,024              = 3 x 12,584,960
    #   innermost  down 4,194,304 (no BN)           up 512->512 4,194,304 + BN 1,024  = 8,389,632
    U = C.UNetGenerator(in_channels=1, out_channels=2, n_down=8, features=64)
    assert n_params(U) == 54_409_858
    assert sum(isinstance(m, nn.Dropout) for m in U.modules()) == 3
    small = C.UNetGenerator(n_down=5, features=8).eval()
    with torch.no_grad():
        out = small(torch.zeros(2, 1, 32, 64))
    assert out.shape == (2, 2, 32, 64) and out.abs().max() <= 1
    with pytest.raises(GanlibError, match="divisible by 32"):
        small(torch.zeros(1, 1, 48, 48))
    with pytest.raises(GanlibError, match="n_down >= 5"):
        C.UNetGenerator(n_down=4)


# ----------------------------------------------------------------------------------------------
# Discriminator


def test_patch_discriminator_paper_config():
    # Conv 3->64 + bias (3,136); 64->128 (131,072) + BN (256); 128->256 (524,288) + BN (512);
    # 256->512 stride 1 (2,097,152) + BN (1,024); 512->1 + bias (8,193): 2,765,633.
    D = C.PatchDiscriminator(in_channels=3, features=64, n_down=3)
    assert n_params(D) == 2_765_633
    assert C.receptive_field(D) == 70
    with torch.no_grad():
        assert D(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    # No normalisation in the first and last blocks, no activation after the last conv.
    layers = list(D.model)
    assert not isinstance(layers[1], nn.BatchNorm2d) and isinstance(layers[3], nn.BatchNorm2d)
    assert layers[-1] is convs[-1]
    with pytest.raises(GanlibError, match=r"torch.cat\(\[L, ab\], dim=1\)"):
        D(torch.zeros(1, 2, 64, 64))


def test_init_weights_is_normal_0_002():
    torch.manual_seed(0)
    D = C.PatchDiscriminator()
    D.apply(C.init_weights)
    big = D.model[5]  # the 128 -> 256 conv
    assert big.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert abs(big.weight.mean().item()) < 1e-3
    bn = D.model[6]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01) and torch.all(bn.bias == 0)
    assert torch.all(D.model[0].bias == 0)


# ----------------------------------------------------------------------------------------------
# Losses and metrics


def test_losses_against_hand_computed_values():
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -1.0)
    # 0.5 * (softplus(-2) + softplus(-1)) = 0.5 * (0.126928 + 0.313262)
    assert C.d_loss(real, fake).item() == pytest.approx(0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))))
    zero = torch.zeros(2, 1, 3, 3)
    assert C.d_loss(zero, zero).item() == pytest.approx(math.log(2))
    total, gan, l1 = C.g_loss(zero, torch.full((1, 2, 4, 4), 0.3), torch.full((1, 2, 4, 4), 0.2), lambda_l1=100.0)
    assert gan.item() == pytest.approx(math.log(2))
    assert l1.item() == pytest.approx(0.1)
    assert total.item() == pytest.approx(math.log(2) + 10.0, rel=1e-6)


def test_mean_ab_error_is_the_distance_in_lab_units():
    fake = torch.zeros(1, 2, 4, 4)
    real = torch.stack([torch.full((4, 4), 0.03), torch.full((4, 4), 0.04)])[None]
    assert C.mean_ab_error(fake, real) == pytest.approx(110 * 0.05, rel=1e-5)


def test_colourfulness_hand_computed():
    grey = torch.zeros(1, 3, 4, 4)
    assert C.colourfulness(grey).item() == pytest.approx(0.0, abs=1e-4)
    # Half pure red, half pure green: rg = +-255 (mean 0, std 255), yb = 127.5 (std 0):
    # M = 255 + 0.3 * 127.5 = 293.25.
    image = -torch.ones(1, 3, 2, 2)
    image[0, 0, 0], image[0, 1, 1] = 1.0, 1.0
    assert C.colourfulness(image).item() == pytest.approx(293.25, rel=1e-5)
    with pytest.raises(GanlibError):
        C.colourfulness(torch.zeros(1, 2, 4, 4))


# ----------------------------------------------------------------------------------------------
# Inference at any size


def test_pad_to_multiple_and_colorize_crop_back():
    x = torch.arange(2 * 50 * 70, dtype=torch.float32).reshape(1, 2, 50, 70)
    padded, (h, w) = C.pad_to_multiple(x, 32)
    assert padded.shape == (1, 2, 64, 96) and (h, w) == (50, 70)
    assert torch.equal(padded[..., :50, :70], x)
    assert C.pad_to_multiple(x[..., :64], 32)[0].shape == (1, 2, 64, 64)

    torch.manual_seed(0)
    G = C.ResNetUNet(decoder_scale=0.25).eval()
    assert C.colorize(G, torch.zeros(1, 1, 50, 70)).shape == (1, 2, 50, 70)
    U = C.UNetGenerator(n_down=5, features=8).eval()
    assert C.size_multiple(U) == 32 and C.size_multiple(G) == 32
    assert C.colorize(U, torch.zeros(1, 1, 20, 33)).shape == (1, 2, 20, 33)


def test_colorize_photo_keeps_size_and_lightness():
    torch.manual_seed(0)
    G = C.ResNetUNet(decoder_scale=0.25)
    G.train()
    grey = np.tile(np.linspace(20, 230, 45, dtype=np.uint8), (30, 1))  # 45 wide, 30 high
    out = C.colorize_photo(G, grey)
    assert out.shape == (30, 45, 3) and out.dtype == np.uint8
    assert G.training  # put back as it was
    assert np.abs(C.grey_photo(out).astype(int) - C.grey_photo(grey).astype(int)).mean() < 3
    with pytest.raises(GanlibError, match="uint8 HxW or HxWx3"):
        C.colorize_photo(G, grey.astype(np.float32))
    with pytest.raises(GanlibError, match="too small"):
        C.colorize_photo(G, grey[:8])


def test_bench_setup_runs_one_training_step():
    torch.manual_seed(0)
    from contextlib import nullcontext

    setup = C.bench_setup(64, 2, torch.device("cpu"), nullcontext, torch.contiguous_format)
    G, D = setup.modules
    before = G.head.weight.clone()
    setup.step()
    assert setup.size == 64 and setup.batch == 2
    assert not torch.equal(before, G.head.weight)


def test_failed_download_falls_back_to_random_init_and_says_why(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    _, used = C.resnet18_encoder(pretrained=True, allow_download=True)
    assert used.startswith("random init: downloading") and "no network" in used
