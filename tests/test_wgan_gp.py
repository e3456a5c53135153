import pytest
import torch
from torch import nn

from ganlib import dcgan, wgan_gp
from ganlib.wgan_gp import Critic, critic_loss, generator_loss, gradient_penalty, wasserstein_estimate


class LinearCritic(nn.Module):
    """D(x) = w . x: grad_x D = w everywhere, so GP = (||w|| - 1)^2 exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(dim=1)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_critic_shapes(size):
    torch.manual_seed(0)
    D = Critic(channels=3, features=4, image_size=size)
    assert D(torch.randn(2, 3, size, size)).shape == (2,)


def test_generator_is_dcgans():
    assert wgan_gp.Generator is dcgan.Generator


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_critic_has_no_batchnorm(norm):
    D = Critic(image_size=64, norm=norm)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    n_layer_norms = sum(isinstance(m, nn.GroupNorm) for m in D.modules())
    assert n_layer_norms == (3 if norm == "layer" else 0)


def test_critic_scores_are_per_sample():
    # Without batch norm a sample's score must not depend on the rest of the batch (in train mode too).
    torch.manual_seed(0)
    D = Critic(features=4, image_size=32).train()
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(D(x)[:1], D(x[:1]), atol=1e-5)


def test_critic_rejects_batchnorm_with_reason():
    with pytest.raises(ValueError, match="couples the samples of a batch"):
        Critic(norm="batch")


def test_critic_wrong_image_size_is_explained():
    with pytest.raises(ValueError, match=r"shape \(1, 3, 64, 64\); expected \(N, 3, 32, 32\)"):
        Critic(features=4, image_size=32)(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("w_scale, expected", [(1.0, 0.0), (3.0, 4.0), (0.5, 0.25)])
def test_gradient_penalty_of_linear_critic(w_scale, expected):
    # Unit vector w scaled to norm w_scale: GP = (w_scale - 1)^2 whatever eps and the samples are.
    torch.manual_seed(0)
    w = torch.randn(3, 8, 8)
    w = w / w.norm() * w_scale
    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    gp = gradient_penalty(LinearCritic(w), real, fake)
    assert gp.item() == pytest.approx(expected, abs=1e-5)


def test_gradient_penalty_is_differentiable_wrt_critic_params():
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||; with ||w|| = 3 that is (4/3) w.
    torch.manual_seed(0)
    w = torch.randn(3, 8, 8)
    w = w / w.norm() * 3.0
    critic = LinearCritic(w)
    gp = gradient_penalty(critic, torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8))
    gp.backward()
    assert torch.allclose(critic.w.grad, 4 / 3 * w, atol=1e-5)


def test_gradient_penalty_trains_a_conv_critic_and_not_the_inputs():
    torch.manual_seed(0)
    D = Critic(features=4, image_size=32)
    real = torch.randn(3, 3, 32, 32)
    fake = torch.randn(3, 3, 32, 32, requires_grad=True)  # as if straight out of G
    gp = gradient_penalty(D, real, fake)
    assert gp.requires_grad and torch.isfinite(gp)
    gp.backward()
    for name, p in D.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # A constant added to D leaves its gradient unchanged: the output bias gets no gradient from GP.
    assert D.main[-1].bias.grad is None
    assert fake.grad is None  # the penalty shapes the critic only


def test_gradient_penalty_is_deterministic_with_generator():
    torch.manual_seed(0)
    D = Critic(features=4, image_size=32)
    real, fake = torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)
    a = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(1))
    b = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(1))
    c = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(2))
    assert a.item() == b.item() and a.item() != c.item()


def test_gradient_penalty_uses_interpolates():
    # D(x) = 0.5 ||x||^2 has grad x, so GP = mean((||x_hat|| - 1)^2). With real = fake = x the
    # interpolate is x itself whatever eps is: pick ||x_i|| = 2 and 4 -> GP = (1 + 9) / 2 = 5.
    x = torch.zeros(2, 1, 2, 2)
    x[0, 0, 0, 0], x[1, 0, 1, 1] = 2.0, 4.0

    def critic(v):
        return 0.5 * v.flatten(1).pow(2).sum(1)

    assert gradient_penalty(critic, x, x.clone()).item() == pytest.approx(5.0, rel=1e-6)


def test_gradient_penalty_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="differ in shape; pass equal-sized batches"):
        gradient_penalty(LinearCritic(torch.ones(3, 8, 8)), torch.randn(4, 3, 8, 8), torch.randn(2, 3, 8, 8))


def test_gradient_penalty_finite_when_critic_gradient_is_zero():
    # D(x) = w . x with w = 0 has zero input gradient. sqrt(s) has an infinite derivative at s = 0:
    # without care the backward pass gives NaN in w.grad.
    critic = LinearCritic(torch.zeros(2, 4))
    gp = gradient_penalty(critic, torch.randn(3, 2, 4), torch.randn(3, 2, 4))
    assert gp.item() == pytest.approx(1.0, abs=1e-5)  # (0 - 1)^2
    gp.backward()
    assert torch.isfinite(critic.w.grad).all()


def test_critic_and_generator_losses_by_hand():
    real = torch.tensor([3.0, 1.0])  # mean 2
    fake = torch.tensor([-1.0, 0.0])  # mean -0.5
    gp = torch.tensor(0.25)
    # E[D(fake)] - E[D(real)] + lambda GP = -0.5 - 2 + 10 * 0.25 = 0
    assert critic_loss(real, fake, gp).item() == pytest.approx(0.0)
    assert critic_loss(real, fake, gp, lambda_gp=2).item() == pytest.approx(-2.0)
    assert generator_loss(fake).item() == pytest.approx(0.5)  # -E[D(G(z))]


def test_wasserstein_estimate_sign():
    real = torch.tensor([3.0, 1.0], requires_grad=True)
    fake = torch.tensor([-1.0, 0.0])
    w = wasserstein_estimate(real, fake)
    assert w.item() == pytest.approx(2.5)  # positive when the critic scores real above fake
    assert wasserstein_estimate(fake, real).item() == pytest.approx(-2.5)
    assert not w.requires_grad  # a logging quantity


def test_paper_hyperparameters():
    assert wgan_gp.PAPER == dict(lambda_gp=10.0, n_critic=5, lr=1e-4, betas=(0.0, 0.9), batch_size=64)
