"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks" (ICLR 2016), with the losses of Goodfellow et al.
"Generative Adversarial Nets" (2014).

The 64 px configuration is exactly the one of the PyTorch reference example (pytorch/examples,
dcgan/main.py): ngf = ndf = 64, nz = 100, nc = 3 gives a 3,576,704 parameter generator and a
2,765,568 parameter discriminator. Other sizes (32, 128, ...) add or remove one stride-2 block
per factor of two, keeping the paper's architecture guidelines:

* no pooling: stride-2 convolutions in D, stride-2 transposed convolutions in G;
* BatchNorm in both networks, except on G's output and D's input layers;
* ReLU in G (tanh on the output, images live in [-1, 1]), LeakyReLU(0.2) in D;
* no fully connected hidden layers.

The discriminator returns logits (no sigmoid): the losses use BCE-with-logits, which computes
log(sigmoid(x)) stably instead of taking the log of a rounded probability.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# The paper's training setup (section 4): Adam with lr 0.0002 and beta1 0.5 (0.9 oscillated and
# was unstable), minibatch 128, z of 100 dimensions drawn from a uniform/normal prior.
PAPER = dict(lr=2e-4, betas=(0.5, 0.999), z_dim=100, batch_size=128, image_size=64)


def _n_stride2_blocks(image_size):
    """How many resolution doublings lie between 4x4 and image_size: log2(image_size) - 2."""
    if not isinstance(image_size, int) or image_size < 16 or image_size & (image_size - 1):
        raise ValueError(
            f"image_size={image_size!r} is not supported: DCGAN doubles resolution from 4x4, so "
            "image_size must be a power of two >= 16 (e.g. 32, 64, 128). Resize your images to one."
        )
    return int(math.log2(image_size)) - 2


class Generator(nn.Module):
    """z -> image. For 64 px: 100 -> (512, 4x4) -> (256, 8x8) -> (128, 16x16) -> (64, 32x32) -> (3, 64x64).

    The widest layer has features * 2^(n - 1) channels where n = log2(image_size) - 2 is the number
    of doublings, so the last hidden layer always has `features` channels (ngf in the reference).
    """

    def __init__(self, z_dim=100, channels=3, features=64, image_size=64):
        super().__init__()
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        n_doublings = _n_stride2_blocks(image_size)
        width = features * 2 ** (n_doublings - 1)

        # Project z, seen as a 1x1 image, to a 4x4 map (the paper's "project and reshape").
        # No bias: BatchNorm follows and subtracts any constant anyway.
        layers = [nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        # Each stride-2 4x4 transposed conv doubles H and W: out = (in - 1) * 2 - 2 * 1 + 4 = 2 * in.
        for _ in range(n_doublings - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        # Output layer: no BatchNorm (the paper found it caused sample oscillation), tanh to [-1, 1].
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        if z.dim() == 2 and z.shape[1] == self.z_dim:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1:] != (self.z_dim, 1, 1):
            raise ValueError(
                f"Generator got z of shape {tuple(z.shape)}; expected (N, {self.z_dim}) or "
                f"(N, {self.z_dim}, 1, 1). Sample it with torch.randn(N, {self.z_dim})."
            )
        return self.main(z)


class Discriminator(nn.Module):
    """image -> one logit per image. For 64 px: (3, 64x64) -> (64, 32x32) -> (128, 16x16) -> (256, 8x8)
    -> (512, 4x4) -> 4x4 conv -> 1.

    norm="batch" is the paper; norm="none" drops BatchNorm (then the hidden convs get a bias, since
    no norm layer follows to make it redundant).
    """

    def __init__(self, channels=3, features=64, image_size=64, norm="batch"):
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(
                f"Discriminator norm={norm!r} is not supported; use 'batch' (the paper) or 'none'. "
                "For a WGAN-GP critic with layer norm use ganlib.wgan_gp.Critic."
            )
        self.channels, self.image_size = channels, image_size
        n_halvings = _n_stride2_blocks(image_size)

        # Input layer: no BatchNorm (the paper: it caused sample oscillation and instability).
        # Each stride-2 4x4 conv halves H and W: out = (in + 2 * 1 - 4) / 2 + 1 = in / 2.
        layers = [nn.Conv2d(channels, features, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        width = features
        for _ in range(n_halvings - 1):
            layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width *= 2
        # 4x4 map -> 1x1 logit. No sigmoid: see d_loss / g_loss.
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, images):
        expected = (self.channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            # A larger image would silently give several logits per image; refuse it instead.
            raise ValueError(
                f"Discriminator got images of shape {tuple(images.shape)}; expected (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}). Resize the images or build the model with "
                f"image_size={images.shape[-1]} if that is a power of two."
            )
        return self.main(images).flatten()  # (N,)


def init_weights(module):
    """The paper's initialisation, used as `model.apply(init_weights)`: every weight ~ N(0, 0.02);
    BatchNorm scale ~ N(1, 0.02) (so it starts near the identity) and every bias = 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# Losses. Goodfellow et al. play the minimax game
#     min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]
# with D(x) = sigmoid(logit(x)). D maximises V, i.e. minimises the binary cross-entropy of
# labelling real images 1 and generated images 0.
#
# For G, minimising log(1 - D(G(z))) saturates: early on D rejects fakes confidently, D(G(z)) ~ 0
# and the gradient of log(1 - D) vanishes. The non-saturating trick (same paper, section 3) has G
# maximise log D(G(z)) instead: same fixed point, strong gradients when G is losing.


def d_loss(real_logits, fake_logits, real_label=1.0, fake_label=0.0):
    """-V(D, G) = -E[log D(x)] - E[log(1 - D(G(z)))] as two BCE-with-logits terms (summed, as in the
    reference example).

    real_label / fake_label are floats or tensors shaped like the logits:
    * one-sided label smoothing (Salimans et al. 2016): real_label=0.9. Only the real side is
      smoothed; smoothing fakes towards 0.1 would reward D for keeping fakes where they are.
    * label flipping: pass flip_labels(torch.ones_like(real_logits), p) etc. to swap a fraction p.
    """
    real_target = torch.as_tensor(real_label, dtype=real_logits.dtype, device=real_logits.device)
    fake_target = torch.as_tensor(fake_label, dtype=fake_logits.dtype, device=fake_logits.device)
    # BCE(l, y) = -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))]
    # -E[log D(x)]
    loss_real = F.binary_cross_entropy_with_logits(real_logits, real_target.expand_as(real_logits))
    # -E[log(1 - D(G(z)))]
    loss_fake = F.binary_cross_entropy_with_logits(fake_logits, fake_target.expand_as(fake_logits))
    return loss_real + loss_fake


def g_loss(fake_logits):
    """Non-saturating generator loss: -E[log D(G(z))] = BCE(D(G(z)), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def flip_labels(labels, p, generator=None):
    """Label flipping: each label y becomes 1 - y with probability p (real 1 <-> fake 0; a smoothed
    0.9 becomes 0.1). A little noise in D's targets keeps D from becoming over-confident early.
    Pass a torch.Generator to make the flips reproducible."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"flip_labels: p={p} is not a probability; pass p in [0, 1] (e.g. 0.05).")
    # Draw on the generator's device (a CPU generator cannot fill a CUDA tensor), then move.
    device = generator.device if generator is not None else labels.device
    flip = torch.rand(labels.shape, generator=generator, device=device).to(labels.device) < p
    return torch.where(flip, 1.0 - labels, labels)


def bench_setup(size, batch, dev, autocast, memory_format):
    """One DCGAN training step (D then G) at the paper configuration, for `python -m ganlib bench`."""
    from ganlib.bench import BenchSetup

    size, batch = size or 64, batch or 128
    G = Generator(image_size=size).to(dev, memory_format=memory_format)
    D = Discriminator(image_size=size).to(dev, memory_format=memory_format)
    opt_G = torch.optim.Adam(G.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    opt_D = torch.optim.Adam(D.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    real = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=memory_format)

    def step():
        z = torch.randn(batch, 100, device=dev)
        with autocast():
            fake = G(z)
            loss_D = d_loss(D(real), D(fake.detach()))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        with autocast():
            loss_G = g_loss(D(fake))
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()

    return BenchSetup(step, [G, D], size, batch)
