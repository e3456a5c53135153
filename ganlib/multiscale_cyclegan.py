"""The seed's multi-scale CycleGAN (a Keras notebook, night -> day on BDD100K), in PyTorch.

The cycle-consistent game is CycleGAN's (Zhu et al. 2017, see ganlib.cyclegan); what changes is
the architecture and the training recipe:

* Generator: a U-Net whose blocks are "inception modules" (three 5x5 convolutions, each followed
  by an activation and GroupNorm, plus a 1x1 convolution of the block's input added back as a
  residual path), 16-32-64-128-256 filters with 2x2 max-pooling; at the bottom a DENSE bottleneck
  (flatten, Dense 128, Dense back, reshape) with an L2 penalty of 1e-3 on both kernels; a decoder
  of upsample + skip + inception module; a multi-scale fusion that paints the first (coarsest)
  decoder block straight up to full resolution with a stride-16 transposed convolution and
  concatenates it before the output; a sigmoid output, images in [0, 1].
* Discriminator: the same encoder, with three 5x5 conv heads on the pooled maps of the last three
  blocks: 8x8 (coarse: the whole scene, far objects), 16x16 and 32x32 (fine: near objects) for a
  256 px input, an LSGAN loss at each scale.
* Loss weights 1 per scale, cycle 10, identity 0.5 (absolute, not times the cycle weight as in
  the ResNet model); Adam with lr 1e-4 for D and 5e-5 for G, Keras' default betas (0.9, 0.999)
  and epsilon 1e-7, weight decay 6e-8 (Keras 3 applies it decoupled: torch's AdamW); batch 4;
  30,000 iterations (the seed's "epochs" are single batches drawn at random).

Where the seed is silent we choose, and say so: the activation inside the inception module is
LeakyReLU(0.2); GroupNorm has one group per channel (instance norm with affine parameters, what
Keras' GroupNormalization(groups=-1) computes, epsilon 1e-3); the dense layers are linear (Keras'
default); upsampling is nearest-neighbour (Keras' UpSampling2D default); the fusion's transposed
conv has a 16x16 kernel at stride 16 (a 5x5 kernel at stride 16 would leave 11 of every 16 rows
and columns holding only the bias); weights start from Keras' defaults (Glorot uniform, zero bias).

The seed's recipe does not survive a short CPU run at 64 px (measured on the embedded street scenes):
Keras' Glorot init gives the discriminators scores in the tens (D loss 30-40 at step 0), the
adversarial terms swamp cycle and identity within ~20 steps, and a Glorot-initialised G with a
sigmoid output starts saturated and learns to hide the night image in high-contrast noise (cycle
low, SSIM 0.03). So the notebook's demo preset adds the official CycleGAN's stabilisers, each a
switch here or in the notebook (the paper preset keeps the seed): N(0, 0.02) init of all four
networks (ganlib.cyclegan.init_weights), the halved D loss (`halve=True`), a 50-image history pool,
beta1 0.5, a larger identity weight and an adversarial weight of 0.5 with larger learning rates.

Unlike the ResNet generator this one is NOT fully convolutional: the dense bottleneck fixes the
input size (`image_size`); `translate_any_size` resizes to it and back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlib.errors import GanlibError

PAPER = dict(
    image_size=256, base=16, depth=5, latent=128, kernel=5, l2=1e-3,
    lr_D=1e-4, lr_G=5e-5, betas=(0.9, 0.999), eps=1e-7, weight_decay=6e-8,  # Keras Adam defaults + the seed's
    batch_size=4, steps=30_000, image_every=1000, checkpoint_every=2000,
    lambda_adv=1.0, lambda_cycle=10.0, lambda_identity=0.5,
)
SCALES = ("coarse", "medium", "fine")  # D's outputs, 8x8, 16x16, 32x32 at 256 px


class InceptionModule(nn.Module):
    """x -> [conv5x5 -> LeakyReLU -> GroupNorm] x 3  +  conv1x1(x).

    The three stacked 5x5 convs see a 13x13 neighbourhood; the 1x1 path lets the block pass its
    input through (projected to `filters` channels) when the stack has nothing useful to add.
    """

    def __init__(self, in_channels: int, filters: int, kernel: int = 5, slope: float = 0.2):
        super().__init__()
        layers, width = [], in_channels
        for _ in range(3):
            layers += [nn.Conv2d(width, filters, kernel, padding=kernel // 2), nn.LeakyReLU(slope),
                       nn.GroupNorm(filters, filters, eps=1e-3)]  # groups = channels: instance norm, affine
            width = filters
        self.convs = nn.Sequential(*layers)
        self.residual = nn.Conv2d(in_channels, filters, 1)

    def forward(self, x):
        return self.convs(x) + self.residual(x)


def inception_encoder(in_channels: int, widths: list[int], kernel: int) -> nn.ModuleList:
    """The encoder G and D share: one InceptionModule per width (each followed by a 2x max-pool in forward)."""
    blocks, width = nn.ModuleList(), in_channels
    for w in widths:
        blocks.append(InceptionModule(width, w, kernel))
        width = w
    return blocks


class MultiScaleGenerator(nn.Module):
    """Inception U-Net with a dense bottleneck and multi-scale fusion; input and output in [0, 1].

    Shapes at the paper config (256 px, base 16, depth 5):
        encoder  (16, 256) (32, 128) (64, 64) (128, 32) (256, 16)  -- skips, before each max-pool
        bottom   (256, 8x8) -> flatten 16384 -> Dense 128 -> Dense 16384 -> (256, 8x8)
        decoder  (256, 16) (128, 32) (64, 64) (32, 128) (16, 256)
        fusion   decoder block 1 (256, 16x16) -> ConvTranspose 16x16 stride 16 -> (16, 256x256)
        output   concat (32, 256x256) -> ConvTranspose 5x5 stride 1 -> (3, 256x256) -> sigmoid
    """

    def __init__(self, image_size: int = 256, in_channels: int = 3, out_channels: int = 3, base: int = 16,
                 depth: int = 5, latent: int = 128, kernel: int = 5):
        super().__init__()
        factor = 2 ** depth
        if depth < 1 or image_size < factor or image_size % factor:
            raise GanlibError(f"MultiScaleGenerator: image_size={image_size} must be a multiple of 2**depth = "
                              f"{factor} (depth={depth} max-pools); e.g. image_size=256 with depth=5.")
        self.image_size, self.depth = image_size, depth
        widths = [base * 2 ** k for k in range(depth)]
        self.encoder = inception_encoder(in_channels, widths, kernel)
        width = widths[-1]
        self.bottom = (width, image_size // factor, image_size // factor)
        flat = width * (image_size // factor) ** 2
        # The bottleneck: every pixel of the bottom map talks to every other through 128 numbers.
        self.to_latent = nn.Linear(flat, latent)
        self.from_latent = nn.Linear(latent, flat)
        self.decoder = nn.ModuleList()
        for w in reversed(widths):  # upsampled map (width) + the skip of the same size (w) -> w
            self.decoder.append(InceptionModule(width + w, w, kernel))
            width = w
        up = 2 ** (depth - 1)  # from the first decoder block's size up to the full size
        self.fusion = nn.ConvTranspose2d(widths[-1], base, kernel_size=up, stride=up)
        self.to_image = nn.ConvTranspose2d(widths[0] + base, out_channels, kernel, padding=kernel // 2)

    def forward(self, x):
        size = self.image_size
        if x.dim() != 4 or tuple(x.shape[-2:]) != (size, size):
            raise GanlibError(
                f"MultiScaleGenerator was built for {size}x{size} inputs (its dense bottleneck fixes the size) and "
                f"got shape {tuple(x.shape)}. Resize to {size}x{size} first, e.g. "
                "multiscale_cyclegan.translate_any_size(G, x), or build it with image_size=H.")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        z = self.to_latent(x.flatten(1))  # Dense(128), linear
        x = self.from_latent(z).view(-1, *self.bottom)  # Dense back, reshape
        first = None
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], dim=1))
            if first is None:
                first = x  # decoder block 1: the coarsest decoded features
        fused = torch.cat([x, self.fusion(first)], dim=1)  # fine + coarse painted up to full size
        return torch.sigmoid(self.to_image(fused))

    def l2_penalty(self, weight: float = 1e-3) -> torch.Tensor:
        """Keras' kernel_regularizer=l2(weight) on both dense layers: weight * sum(W^2) (kernels, not biases)."""
        return weight * (self.to_latent.weight.square().sum() + self.from_latent.weight.square().sum())


class MultiScaleDiscriminator(nn.Module):
    """The generator's encoder with three heads: LSGAN scores at 1/32, 1/16 and 1/8 of the input size.

    Returns a tuple (coarse, medium, fine): (N, 1, 8, 8), (N, 1, 16, 16), (N, 1, 32, 32) at 256 px.
    Fully convolutional: any size that is a multiple of 2**depth.
    """

    def __init__(self, in_channels: int = 3, base: int = 16, depth: int = 5, kernel: int = 5, n_outputs: int = 3):
        super().__init__()
        if not 1 <= n_outputs <= depth:
            raise GanlibError(f"MultiScaleDiscriminator: n_outputs={n_outputs} must be between 1 and depth={depth}.")
        self.depth, self.n_outputs = depth, n_outputs
        widths = [base * 2 ** k for k in range(depth)]
        self.encoder = inception_encoder(in_channels, widths, kernel)  # the seed: "the same encoder" as G
        # Heads on the pooled maps of the last n_outputs blocks, deepest (coarsest) first.
        self.heads = nn.ModuleList(nn.Conv2d(w, 1, kernel, padding=kernel // 2) for w in reversed(widths[-n_outputs:]))

    def forward(self, x):
        factor = 2 ** self.depth
        if x.dim() != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
            raise GanlibError(f"MultiScaleDiscriminator got shape {tuple(x.shape)}; H and W must be multiples of "
                              f"{factor} (depth={self.depth} max-pools). Resize the images.")
        pooled = []
        for block in self.encoder:
            x = F.max_pool2d(block(x), 2)
            pooled.append(x)
        return tuple(head(p) for head, p in zip(self.heads, reversed(pooled[-self.n_outputs:])))


def keras_init(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases (GroupNorm: 1 and 0)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def translate_any_size(G: MultiScaleGenerator, images01: torch.Tensor) -> torch.Tensor:
    """G on images of any size: resize (bilinear, antialiased) to G.image_size, translate, resize back."""
    h, w = images01.shape[-2:]
    s = G.image_size
    x = F.interpolate(images01, size=(s, s), mode="bilinear", antialias=True, align_corners=False) if (h, w) != (s, s) else images01
    y = G(x.clamp(0, 1))
    return F.interpolate(y, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1) if (h, w) != (s, s) else y


# ----------------------------------------------------------------------------------------------
# Losses: LSGAN at every scale, summed (weight 1 each, as the seed's loss_weights).


def multiscale_d_loss(real_scores, fake_scores, halve: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_D = sum_s [ E (D_s(y) - 1)^2 + E D_s(G(x))^2 ]  over the scales s (not halved: the seed).
    halve=True multiplies by 1/2, as the official CycleGAN does (D learns at half G's rate).
    Returns (total, {scale: that scale's two terms, halved too when halve=True})."""
    if len(real_scores) != len(fake_scores):
        raise GanlibError(f"multiscale_d_loss: {len(real_scores)} real and {len(fake_scores)} fake score maps.")
    factor = 0.5 if halve else 1.0
    per_scale = {name: factor * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f)))
                 for name, r, f in zip(SCALES, real_scores, fake_scores)}
    return sum(per_scale.values()), per_scale


def multiscale_g_loss(fake_scores) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_GAN(G) = sum_s E (D_s(G(x)) - 1)^2. Returns (total, per-scale dict)."""
    per_scale = {name: F.mse_loss(f, torch.ones_like(f)) for name, f in zip(SCALES, fake_scores)}
    return sum(per_scale.values()), per_scale


def generator_objective(fake_b_scores, fake_a_scores, real_a, rec_a, real_b, rec_b, idt_b, idt_a,
                        lambda_adv: float = 1.0, lambda_cycle: float = 10.0, lambda_identity: float = 0.5
                        ) -> dict[str, torch.Tensor]:
    """The seed's weighted sum of ten outputs (3 + 3 adversarial, 2 cycle, 2 identity):

        L = lambda_adv sum_s [(D_B,s(G(a)) - 1)^2 + (D_A,s(F(b)) - 1)^2]
            + lambda_cyc (|F(G(a)) - a|_1 + |G(F(b)) - b|_1) + lambda_idt (|G(b) - b|_1 + |F(a) - a|_1)

    (the L2 penalty of the dense bottlenecks is added by the caller: G.l2_penalty() + F.l2_penalty()).
    Returns total and every term, the per-scale ones as gan_G_coarse, ..., gan_F_fine.
    """
    gan_g, g_scales = multiscale_g_loss(fake_b_scores)
    gan_f, f_scales = multiscale_g_loss(fake_a_scores)
    out = {"gan_G": gan_g, "gan_F": gan_f,
           **{f"gan_G_{k}": v for k, v in g_scales.items()}, **{f"gan_F_{k}": v for k, v in f_scales.items()},
           "cycle_A": F.l1_loss(rec_a, real_a), "cycle_B": F.l1_loss(rec_b, real_b),
           "idt_A": F.l1_loss(idt_a, real_a), "idt_B": F.l1_loss(idt_b, real_b)}
    out["total"] = (lambda_adv * (gan_g + gan_f) + lambda_cycle * (out["cycle_A"] + out["cycle_B"])
                    + lambda_identity * (out["idt_A"] + out["idt_B"]))
    return out


def make_optimizer(params, lr: float, beta1: float = PAPER["betas"][0]) -> torch.optim.Optimizer:
    """Keras 3 Adam(learning_rate=lr, weight_decay=6e-8): decoupled weight decay, betas (0.9, 0.999), eps 1e-7.
    beta1=0.5 is the official CycleGAN's choice (less momentum: steadier against a moving D)."""
    return torch.optim.AdamW(params, lr=lr, betas=(beta1, PAPER["betas"][1]), eps=PAPER["eps"],
                             weight_decay=PAPER["weight_decay"])


# ----------------------------------------------------------------------------------------------
# Benchmark: one full step at the paper configuration


def bench_setup(size, batch, dev, autocast, memory_format):
    """For `python -m ganlib bench multiscale_cyclegan`: one step of both G's, then both D's."""
    from ganlib.bench import BenchSetup

    size, batch = size or PAPER["image_size"], batch or PAPER["batch_size"]
    G, Fm = MultiScaleGenerator(image_size=size), MultiScaleGenerator(image_size=size)
    D_A, D_B = MultiScaleDiscriminator(), MultiScaleDiscriminator()
    for m in (G, Fm, D_A, D_B):
        m.apply(keras_init).to(dev, memory_format=memory_format)
    opt_G = make_optimizer(list(G.parameters()) + list(Fm.parameters()), PAPER["lr_G"])
    opt_D = make_optimizer(list(D_A.parameters()) + list(D_B.parameters()), PAPER["lr_D"])
    a = torch.rand(batch, 3, size, size, device=dev).contiguous(memory_format=memory_format)
    b = torch.rand(batch, 3, size, size, device=dev).contiguous(memory_format=memory_format)

    def step():
        with autocast():
            fake_b, fake_a = G(a), Fm(b)
            losses = generator_objective(D_B(fake_b), D_A(fake_a), a, Fm(fake_b), b, G(fake_a), G(b), Fm(a))
            total = losses["total"] + G.l2_penalty() + Fm.l2_penalty()
        opt_G.zero_grad(set_to_none=True)
        total.backward()
        opt_G.step()
        with autocast():
            loss_D = (multiscale_d_loss(D_B(b), D_B(fake_b.detach()))[0]
                      + multiscale_d_loss(D_A(a), D_A(fake_a.detach()))[0])
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()

    return BenchSetup(step, [G, Fm, D_A, D_B], size, batch)
