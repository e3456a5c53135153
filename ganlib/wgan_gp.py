"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved Training of Wasserstein
GANs" (NeurIPS 2017), Algorithm 1.

The critic D estimates the Wasserstein-1 distance through the Kantorovich-Rubinstein duality
    W(P_r, P_g) = max_{||D||_L <= 1} E_{x~P_r}[D(x)] - E_{x~P_g}[D(x)].
Instead of clipping weights (WGAN), the 1-Lipschitz constraint is enforced softly: an optimal
critic has gradient norm 1 almost everywhere on lines between real and generated samples, so
    L_D = E[D(x_fake)] - E[D(x_real)] + lambda * E_{x_hat}[(||grad_{x_hat} D(x_hat)||_2 - 1)^2],
    x_hat = eps * x_real + (1 - eps) * x_fake,  eps ~ U[0, 1] per sample,
    L_G = -E[D(G(z))].

The paper's choices, used here (PAPER below):
* lambda = 10: worked across every architecture and dataset in the paper.
* n_critic = 5 critic steps per generator step: the generator's gradient is only as good as the
  critic's estimate of W, so the critic is trained closer to optimality first. (Unlike a standard
  GAN, a strong critic does not starve G of gradient: W stays smooth.)
* Adam(lr=1e-4, betas=(0, 0.9)): beta1 = 0 drops momentum, which lags behind a critic whose target
  moves every generator step; beta2 = 0.9 adapts the step sizes faster than the default 0.999.
* no batch norm in the critic: batch norm makes each sample's score depend on the rest of the
  batch, so the gradient w.r.t. one x_hat is no longer that of a per-sample function and the
  penalty constrains the wrong thing. Layer norm (per-sample) is the paper's suggested drop-in.

The seed notebook deviated: lambda = 50, dropout in the critic, the critic updated only every
fifth batch (the reverse of n_critic = 5) and 224 px images. We use the paper's values instead:
lambda = 50 over-regularises (the critic is pushed to norm-1 gradients at the expense of
estimating W); dropout makes D a random function, so its gradient norm, and the penalty, are
noisy; updating the critic less than G leaves G following a stale, poor estimate of W; and
224 px is not a power of two, so the DCGAN-style stride-2 stacks do not fit it (use 64 or 128).
"""
import torch
from torch import nn

from ganlib.dcgan import Generator, _n_stride2_blocks  # noqa: F401  (G is DCGAN's, as in the paper)

PAPER = dict(lambda_gp=10.0, n_critic=5, lr=1e-4, betas=(0.0, 0.9), batch_size=64)


class Critic(nn.Module):
    """image -> one unbounded score per image (no sigmoid: a critic, not a classifier).

    Same layout as dcgan.Discriminator (stride-2 4x4 convs, LeakyReLU(0.2), 4x4 conv to 1) with
    layer norm or no norm instead of batch norm.
    """

    def __init__(self, channels=3, features=64, image_size=64, norm="layer"):
        super().__init__()
        if norm not in ("layer", "none"):
            raise ValueError(
                f"Critic norm={norm!r} is not supported; use 'layer' (the paper's suggestion) or 'none'. "
                "Batch norm is refused on purpose: it couples the samples of a batch, and the gradient "
                "penalty needs each score to depend on its own image only."
            )
        self.channels, self.image_size = channels, image_size
        n_halvings = _n_stride2_blocks(image_size)

        layers = [nn.Conv2d(channels, features, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        width = features
        for _ in range(n_halvings - 1):
            # A bias is redundant right before a norm layer (it removes the mean); keep it without one.
            layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"))
            if norm == "layer":
                # GroupNorm with one group = layer norm over each sample's (C, H, W), with a per-channel
                # affine. Statistics never mix samples, so the gradient penalty stays per-sample.
                layers.append(nn.GroupNorm(1, width * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0))  # 4x4 map -> one score
        self.main = nn.Sequential(*layers)

    def forward(self, images):
        expected = (self.channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"Critic got images of shape {tuple(images.shape)}; expected (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}). Resize the images or build the critic with "
                f"image_size={images.shape[-1]} if that is a power of two."
            )
        return self.main(images).flatten()  # (N,)


def gradient_penalty(critic, real, fake, generator=None):
    """GP = E_{x_hat}[(||grad_{x_hat} D(x_hat)||_2 - 1)^2] on random interpolates (Algorithm 1, lines 4-7).

    Differentiable w.r.t. the critic's parameters (create_graph=True), so L_D.backward() trains
    through it. real and fake are detached: the penalty only shapes the critic.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape; "
            "pass equal-sized batches (slice the real batch to the fake batch size)."
        )
    n = real.shape[0]
    device = generator.device if generator is not None else real.device
    # eps ~ U[0, 1], one per sample, broadcast over (C, H, W).
    eps = torch.rand(n, generator=generator, device=device).to(real.device, real.dtype)
    eps = eps.view(n, *([1] * (real.dim() - 1)))
    # x_hat = eps x + (1 - eps) x~
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)

    scores = critic(x_hat)
    # Samples are independent, so d(sum of scores)/d x_hat_i = grad of D(x_hat_i) alone.
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    # ||grad||_2 per sample. The 1e-12 keeps sqrt differentiable where a gradient is exactly zero
    # (d sqrt(s)/ds is infinite at 0, which would turn the backward pass into NaN).
    grad_norm = torch.sqrt(grad.flatten(1).pow(2).sum(dim=1) + 1e-12)
    return (grad_norm - 1).pow(2).mean()  # E[(||grad D(x_hat)||_2 - 1)^2]


def critic_loss(real_scores, fake_scores, gp, lambda_gp=PAPER["lambda_gp"]):
    """L_D = E[D(x~)] - E[D(x)] + lambda * GP (Algorithm 1, line 7)."""
    return fake_scores.mean() - real_scores.mean() + lambda_gp * gp


def generator_loss(fake_scores):
    """L_G = -E[D(G(z))] (Algorithm 1, line 11)."""
    return -fake_scores.mean()


def wasserstein_estimate(real_scores, fake_scores):
    """E[D(x)] - E[D(x~)]: the critic's (detached) estimate of W(P_r, P_g), for logging.

    Positive when the critic tells real from fake; it should shrink as G improves.
    """
    return (real_scores.mean() - fake_scores.mean()).detach()


def bench_setup(size, batch, dev, autocast, memory_format):
    """One WGAN-GP generator iteration (n_critic critic updates, then G), for `python -m ganlib bench`."""
    from ganlib.bench import BenchSetup

    size, batch = size or 64, batch or 64
    G = Generator(image_size=size).to(dev, memory_format=memory_format)
    C = Critic(image_size=size).to(dev, memory_format=memory_format)
    opt_G = torch.optim.Adam(G.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    opt_C = torch.optim.Adam(C.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    real = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=memory_format)

    def step():  # one generator iteration of Algorithm 1: n_critic critic updates, then G
        for _ in range(PAPER["n_critic"]):
            with torch.no_grad(), autocast():
                fake = G(torch.randn(batch, 100, device=dev))
            with autocast():
                gp = gradient_penalty(C, real, fake.float())
                loss_C = critic_loss(C(real), C(fake), gp)
            opt_C.zero_grad(set_to_none=True)
            loss_C.backward()
            opt_C.step()
        with autocast():
            loss_G = generator_loss(C(G(torch.randn(batch, 100, device=dev))))
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()

    return BenchSetup(step, [G, C], size, batch)
