import math

import pytest
import torch
from torch import nn

from ganlib import dcgan
from ganlib.dcgan import Discriminator, Generator, d_loss, flip_labels, g_loss, init_weights


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_and_discriminator_shapes(size):
    torch.manual_seed(0)
    G = Generator(z_dim=8, channels=3, features=4, image_size=size)
    D = Discriminator(channels=3, features=4, image_size=size)
    images = G(torch.randn(2, 8))
    assert images.shape == (2, 3, size, size)
    assert images.abs().max() <= 1.0  # tanh output
    assert D(images).shape == (2,)


def test_generator_accepts_flat_and_4d_noise_alike():
    torch.manual_seed(0)
    G = Generator(z_dim=8, features=4, image_size=32).eval()
    z = torch.randn(3, 8)
    assert torch.equal(G(z), G(z[:, :, None, None]))


def test_depth_follows_image_size():
    # One stride-2 block per doubling from 4x4 (32 px -> 3, 64 -> 4, 128 -> 5) plus the 4x4 <-> 1x1 conv.
    for size, n_convs in [(32, 4), (64, 5), (128, 6)]:
        G = Generator(features=4, image_size=size)
        assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == n_convs
        D = Discriminator(features=4, image_size=size)
        assert sum(isinstance(m, nn.Conv2d) for m in D.modules()) == n_convs


def test_reference_64px_generator_parameter_count():
    # pytorch/examples dcgan, nz=100, ngf=64, nc=3; all convs bias-free, BatchNorm has 2 params per channel:
    #   ConvT 100->512 4x4: 100*512*16 =   819,200   BN 512: 1,024
    #   ConvT 512->256:     512*256*16 = 2,097,152   BN 256:   512
    #   ConvT 256->128:     256*128*16 =   524,288   BN 128:   256
    #   ConvT 128->64:      128*64*16  =   131,072   BN 64:    128
    #   ConvT 64->3:        64*3*16    =     3,072
    #   total 3,574,784 + 1,920 = 3,576,704
    assert n_params(Generator(z_dim=100, channels=3, features=64, image_size=64)) == 3_576_704


def test_reference_64px_discriminator_parameter_count():
    # pytorch/examples dcgan, ndf=64, nc=3:
    #   Conv 3->64 4x4:   3*64*16    =     3,072   (no BN)
    #   Conv 64->128:     64*128*16  =   131,072   BN 128: 256
    #   Conv 128->256:    128*256*16 =   524,288   BN 256: 512
    #   Conv 256->512:    256*512*16 = 2,097,152   BN 512: 1,024
    #   Conv 512->1 4x4:  512*16     =     8,192
    #   total 2,763,776 + 1,792 = 2,765,568
    assert n_params(Discriminator(channels=3, features=64, image_size=64)) == 2_765_568


def test_reference_64px_layer_widths():
    G = Generator(image_size=64)
    widths = [m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [512, 256, 128, 64, 3]
    D = Discriminator(image_size=64)
    widths = [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1]
    # No BatchNorm on D's input layer: the first BatchNorm follows the second conv.
    first_bn = next(i for i, m in enumerate(D.main) if isinstance(m, nn.BatchNorm2d))
    assert sum(isinstance(m, nn.Conv2d) for m in D.main[:first_bn]) == 2


def test_discriminator_without_norm_has_no_batchnorm():
    D = Discriminator(features=4, image_size=32, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert D(torch.randn(2, 3, 32, 32)).shape == (2,)


def test_init_weights_statistics():
    torch.manual_seed(0)
    G = Generator(image_size=64)
    D = Discriminator(image_size=64)
    G.apply(init_weights)
    D.apply(init_weights)
    conv_w = torch.cat([m.weight.flatten() for m in [*G.modules(), *D.modules()]
                        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert conv_w.mean().abs() < 1e-3
    assert conv_w.std().item() == pytest.approx(0.02, rel=0.01)
    bn = [m for m in [*G.modules(), *D.modules()] if isinstance(m, nn.BatchNorm2d)]
    bn_w = torch.cat([m.weight for m in bn])
    assert bn_w.mean().item() == pytest.approx(1.0, abs=0.005)
    assert bn_w.std().item() == pytest.approx(0.02, rel=0.1)
    assert all(torch.count_nonzero(m.bias) == 0 for m in bn)


def test_init_weights_zeroes_conv_bias():
    torch.manual_seed(0)
    D = Discriminator(features=4, image_size=32, norm="none")
    D.apply(init_weights)
    biases = [m.bias for m in D.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_losses_at_zero_logits():
    # D(x) = sigmoid(0) = 1/2 everywhere: -log(1/2) = log 2 per term.
    zeros = torch.zeros(5)
    assert d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g_loss(zeros).item() == pytest.approx(math.log(2))


def test_losses_against_hand_computed_values():
    real = torch.tensor([2.0, -1.0])
    fake = torch.tensor([-3.0, 0.5])

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    # -E[log D(x)] - E[log(1 - D(G(z)))]
    expected_d = (-(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0))) / 2
                  - (math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.5))) / 2)
    assert d_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    # Non-saturating: -E[log D(G(z))]
    expected_g = -(math.log(sigmoid(-3.0)) + math.log(sigmoid(0.5))) / 2
    assert g_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)


def test_non_saturating_generator_gets_gradient_when_losing():
    # D confidently rejects the fake (logit -10): the minimax loss log(1 - D) is flat there,
    # the non-saturating -log D is not.
    logit = torch.tensor([-10.0], requires_grad=True)
    g_loss(logit).backward()
    non_saturating = logit.grad.abs().item()
    logit.grad = None
    torch.log(1 - torch.sigmoid(logit)).sum().backward()
    minimax = logit.grad.abs().item()
    assert non_saturating > 0.99 and minimax < 1e-4


def test_one_sided_label_smoothing():
    real = torch.tensor([2.0])
    fake = torch.tensor([0.0])
    p = 1 / (1 + math.exp(-2.0))
    # BCE with target 0.9: -(0.9 log p + 0.1 log(1 - p)); fakes stay at target 0: -log(1/2).
    expected = -(0.9 * math.log(p) + 0.1 * math.log(1 - p)) + math.log(2)
    assert d_loss(real, fake, real_label=0.9).item() == pytest.approx(expected, rel=1e-6)
    # Smoothing changes the loss (it is not silently ignored).
    assert d_loss(real, fake, real_label=0.9).item() != pytest.approx(d_loss(real, fake).item())


def test_d_loss_accepts_label_tensors():
    real = torch.tensor([1.0, -1.0])
    fake = torch.tensor([0.0, 0.0])
    # Real targets [1, 0] (second one flipped): -log sigmoid(1) and -log(1 - sigmoid(-1)) = -log sigmoid(1).
    expected = -math.log(1 / (1 + math.exp(-1.0))) + math.log(2)
    assert d_loss(real, fake, real_label=torch.tensor([1.0, 0.0])).item() == pytest.approx(expected, rel=1e-6)


def test_flip_labels_extremes_and_smoothed_values():
    labels = torch.tensor([1.0, 0.0, 0.9, 1.0])
    assert torch.equal(flip_labels(labels, 0.0), labels)
    assert torch.allclose(flip_labels(labels, 1.0), torch.tensor([0.0, 1.0, 0.1, 0.0]))


def test_flip_labels_rate_and_determinism():
    labels = torch.ones(10_000)
    a = flip_labels(labels, 0.2, generator=torch.Generator().manual_seed(3))
    b = flip_labels(labels, 0.2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert (a == 0).float().mean().item() == pytest.approx(0.2, abs=0.02)  # binomial sd ~0.004
    assert not torch.equal(a, flip_labels(labels, 0.2, generator=torch.Generator().manual_seed(4)))


def test_flip_labels_rejects_bad_probability():
    with pytest.raises(ValueError, match=r"p=1.5 is not a probability; pass p in \[0, 1\]"):
        flip_labels(torch.ones(3), 1.5)


@pytest.mark.parametrize("size", [48, 8, 224])
def test_unsupported_image_size_is_explained(size):
    with pytest.raises(ValueError, match="image_size must be a power of two >= 16"):
        Generator(image_size=size)
    with pytest.raises(ValueError, match="image_size must be a power of two >= 16"):
        Discriminator(image_size=size)


def test_wrong_noise_shape_is_explained():
    G = Generator(z_dim=8, features=4, image_size=32)
    with pytest.raises(ValueError, match=r"z of shape \(2, 7\); expected \(N, 8\) or \(N, 8, 1, 1\)"):
        G(torch.randn(2, 7))


def test_wrong_image_size_for_discriminator_is_explained():
    D = Discriminator(features=4, image_size=32)
    # A 64 px batch would otherwise give 25 logits per image without complaint.
    with pytest.raises(ValueError, match=r"shape \(2, 3, 64, 64\); expected \(N, 3, 32, 32\)"):
        D(torch.randn(2, 3, 64, 64))


def test_bad_norm_is_explained():
    with pytest.raises(ValueError, match="use 'batch' \\(the paper\\) or 'none'"):
        Discriminator(norm="layer")


def test_paper_hyperparameters():
    assert dcgan.PAPER["lr"] == 2e-4
    assert dcgan.PAPER["betas"] == (0.5, 0.999)
    assert dcgan.PAPER["z_dim"] == 100
