"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks" (ICCV 2017), with the ResNet generator of Johnson et al. (2016) and the 70x70
PatchGAN discriminator of pix2pix (Isola et al. 2017).

Two generators, G: A -> B and F: B -> A (here A = night, B = day), and two discriminators, D_B
(is this a real day photo?) and D_A (a real night photo?). Nothing pairs an A image with a B image;
what keeps G from mapping every night scene to the same plausible day scene is cycle consistency:
F(G(a)) must give a back, and G(F(b)) must give b back.

The 256 px configuration is the official one (junyanz/pytorch-CycleGAN-and-pix2pix, `--netG
resnet_9blocks --netD basic --norm instance`): instance normalisation without affine parameters,
so every convolution keeps its bias. That gives

    ResnetGenerator(ngf=64, n_blocks=9):       11,378,179 parameters
    PatchDiscriminator(ndf=64, n_layers=3):     2,764,737 parameters

(tests/test_cyclegan.py writes both sums out layer by layer). The seed (a Keras notebook) uses
GroupNormalization(groups=-1), which is instance normalisation WITH a learned scale and shift per
channel; the official code uses InstanceNorm2d(affine=False). We follow the official code.

What the official implementation adds and the seed lacks, all here or in the notebook's step:
* weights drawn from N(0, 0.02) (`init_weights`);
* D sees fakes from a 50-image history pool (`ganlib.training.ImagePool`);
* D's loss is halved, so D learns at half G's rate;
* the learning rate decays linearly to 0 over the second half of training (`training.linear_decay`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.errors import DataError, GanlibError

# The seed's hyperparameters (ResNet model), with the official code's additions.
PAPER = dict(
    lr=2e-4, betas=(0.5, 0.999),  # Adam, as in the paper (section 7.1)
    batch_size=1, image_size=256, load_size=720,  # seed: resize to 720, random 256 crop, flip
    epochs=100, decay_from_epoch=50,  # seed: 100 epochs; official: linear decay over the second half
    lambda_cycle=10.0, lambda_identity=0.5,  # identity weight is lambda_identity * lambda_cycle = 5
    pool_size=50, ngf=64, ndf=64, n_blocks=9, n_layers=3,
)


# ----------------------------------------------------------------------------------------------
# Generator


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), 3x3 convs with reflection padding (no zero borders whose
    statistics differ from the image inside, which would show up as frames in the output)."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.block(x)  # the residual: the block only learns a correction to x


class ResnetGenerator(nn.Module):
    """c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3, tanh (the paper's appendix 7.2).

    Fully convolutional: any input whose height and width are multiples of 4 (two stride-2
    downsamplings) comes out at its own size. `translate_any_size` pads other sizes.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 n_downsampling: int = 2):
        super().__init__()
        if n_blocks < 0 or n_downsampling < 0:
            raise GanlibError(f"ResnetGenerator needs n_blocks >= 0 and n_downsampling >= 0, got {n_blocks}, "
                              f"{n_downsampling}.")
        self.multiple = 2 ** n_downsampling
        # Instance norm has no affine parameters here, so the convs keep their bias (official code).
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        width = ngf
        for _ in range(n_downsampling):  # stride-2 3x3: H -> H / 2, width doubles
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(width * 2), nn.ReLU(True)]
            width *= 2
        layers += [ResnetBlock(width) for _ in range(n_blocks)]
        for _ in range(n_downsampling):  # stride-2 transposed 3x3: out = (H - 1) * 2 - 2 + 3 + 1 = 2H
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]  # images in [-1, 1]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        if x.dim() != 4 or x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise GanlibError(
                f"ResnetGenerator got input of shape {tuple(x.shape)}; it needs (N, C, H, W) with H and W "
                f"multiples of {self.multiple}. Resize or crop the image, or use "
                "cyclegan.translate_any_size(G, x), which reflection-pads and crops back.")
        return self.main(x)


def translate_any_size(G: nn.Module, images: torch.Tensor, multiple: int | None = None) -> torch.Tensor:
    """G(images) for images of any height and width: reflection-pad up to a multiple of the
    generator's stride, translate, crop back to the input size."""
    multiple = multiple or getattr(G, "multiple", 4)
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    padded = F.pad(images, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else images
    return G(padded)[..., :h, :w]


# ----------------------------------------------------------------------------------------------
# Discriminator


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: C64-C128-C256-C512 (4x4 convs, LeakyReLU 0.2, no norm on the first),
    then a 4x4 conv to one channel: a map of real/fake scores, each seeing a 70x70 patch.

    For 256 px input: 128 -> 64 -> 32 (stride 2) -> 31 -> 30 (stride 1): a 30x30 score map.
    Receptive field, back from one output: 4, then (4-1)*1 + 4 = 7, (7-1)*2 + 4 = 16, 34, 70.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        if n_layers < 1:
            raise GanlibError(f"PatchDiscriminator needs n_layers >= 1, got {n_layers}.")
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers):  # stride-2 blocks, width doubling up to 8 * ndf
            out = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
            width = out
        out = ndf * min(2 ** n_layers, 8)
        layers += [nn.Conv2d(width, out, 4, stride=1, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(out, 1, 4, stride=1, padding=1)]  # no sigmoid: the LSGAN loss is on raw scores
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The official init ('normal', gain 0.02): conv weights ~ N(0, std), biases 0. Use model.apply."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------
# Losses (LSGAN, Mao et al. 2017: least squares instead of cross-entropy; more stable, and fakes
# far on the right side of the boundary still get a gradient).


def lsgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, halve: bool = True) -> torch.Tensor:
    """L_D = 1/2 [ E (D(y) - 1)^2 + E D(G(x))^2 ]  (the official code halves it; halve=False is the seed)."""
    loss = F.mse_loss(real_scores, torch.ones_like(real_scores)) + F.mse_loss(fake_scores, torch.zeros_like(fake_scores))
    return 0.5 * loss if halve else loss


def lsgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """L_GAN(G) = E (D(G(x)) - 1)^2: G wants its fakes scored as real."""
    return F.mse_loss(fake_scores, torch.ones_like(fake_scores))


def cycle_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """L_cyc = E || F(G(x)) - x ||_1 (one direction; the total adds G(F(y)) vs y)."""
    return F.l1_loss(reconstructed, real)


def identity_loss(real: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """L_idt = E || G(y) - y ||_1: a day photo given to the night->day G should come out unchanged
    (the paper, section 5.2: it keeps the colour composition of the input)."""
    return F.l1_loss(same, real)


def generator_objective(fake_b_scores, fake_a_scores, real_a, rec_a, real_b, rec_b, idt_b=None, idt_a=None,
                        lambda_cycle: float = 10.0, lambda_identity: float = 0.5, lambda_adv: float = 1.0
                        ) -> dict[str, torch.Tensor]:
    """The full objective of G and F together, term by term:

        L = lambda_adv (L_GAN(G, D_B) + L_GAN(F, D_A))
            + lambda_cyc (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
            + lambda_cyc * lambda_idt (|G(b) - b|_1 + |F(a) - a|_1)

    lambda_adv = 1 in the paper. idt_b = G(b), idt_a = F(a); pass None (with lambda_identity 0) to skip the
    identity terms. Returns dict(total, gan_G, gan_F, cycle_A, cycle_B, idt_A, idt_B) (idt_* only when computed).
    """
    out = dict(gan_G=lsgan_g_loss(fake_b_scores), gan_F=lsgan_g_loss(fake_a_scores),
               cycle_A=cycle_loss(real_a, rec_a), cycle_B=cycle_loss(real_b, rec_b))
    total = lambda_adv * (out["gan_G"] + out["gan_F"]) + lambda_cycle * (out["cycle_A"] + out["cycle_B"])
    if lambda_identity > 0:
        if idt_a is None or idt_b is None:
            raise GanlibError("generator_objective: lambda_identity > 0 needs idt_b = G(b) and idt_a = F(a); "
                              "compute them or set lambda_identity=0.")
        out["idt_B"], out["idt_A"] = identity_loss(real_b, idt_b), identity_loss(real_a, idt_a)
        total = total + lambda_cycle * lambda_identity * (out["idt_A"] + out["idt_B"])
    out["total"] = total
    return out


# ----------------------------------------------------------------------------------------------
# Unpaired training data from a paired set


class UnpairedScenes(torch.utils.data.Dataset):
    """Unpaired A/B items from a dataset of dicts that holds both renders of each scene
    (ganlib.embedded.streets.StreetScenes: keys "night" and "day").

    Item i is {"A": scenes[i][key_a], "B": scenes[j][key_b]} with j drawn independently of i from
    (seed, epoch, i), as the official unaligned loader draws B at random, but reproducibly. The
    scene's own B render is never chosen (j != i), so no training pair is a true pair.
    crop: a random crop x crop window of each image (the seed's 720 -> 256 crop, scaled down);
    flip: a random horizontal flip of each; both drawn from (seed, epoch, i) as well.
    """

    def __init__(self, scenes, key_a: str = "night", key_b: str = "day", seed: int = 0,
                 crop: int | None = None, flip: bool = False):
        if len(scenes) < 2:
            raise DataError(f"UnpairedScenes needs at least 2 scenes to draw unpaired items, got {len(scenes)}.")
        first = scenes[0]
        missing = [k for k in (key_a, key_b) if k not in first]
        if missing:
            raise DataError(f"UnpairedScenes: the scenes have no key(s) {missing}; they have {sorted(first)}. "
                            "Pass key_a= and key_b= naming the two domains.")
        h, w = first[key_a].shape[-2:]
        if crop is not None and crop > min(h, w):
            raise DataError(f"UnpairedScenes: crop={crop} is larger than the {h}x{w} scenes; render them at "
                            f"least {crop} pixels high and wide, or lower crop.")
        self.scenes, self.key_a, self.key_b, self.seed = scenes, key_a, key_b, seed
        self.crop, self.flip, self.epoch = crop, flip, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def b_index(self, i: int) -> int:
        n = len(self.scenes)
        offset = int(np.random.default_rng([self.seed, self.epoch, i]).integers(n - 1))
        return (i + 1 + offset) % n  # any scene but i

    def _augment(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.crop is not None:
            h, w = image.shape[-2:]
            top, left = int(rng.integers(h - self.crop + 1)), int(rng.integers(w - self.crop + 1))
            image = image[..., top:top + self.crop, left:left + self.crop]
        if self.flip and rng.random() < 0.5:
            image = image.flip(-1)
        return image

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])
        return {"A": self._augment(self.scenes[i][self.key_a], rng),
                "B": self._augment(self.scenes[self.b_index(i)][self.key_b], rng)}


# ----------------------------------------------------------------------------------------------
# Benchmark: one full CycleGAN step at the paper configuration


def bench_setup(size, batch, dev, autocast, memory_format):
    """For `python -m ganlib bench cyclegan`: one training step of both G's and both D's."""
    from ganlib.bench import BenchSetup
    from ganlib.training import ImagePool

    size, batch = size or PAPER["image_size"], batch or PAPER["batch_size"]
    G, Fm = ResnetGenerator(), ResnetGenerator()
    D_A, D_B = PatchDiscriminator(), PatchDiscriminator()
    for m in (G, Fm, D_A, D_B):
        m.apply(init_weights).to(dev, memory_format=memory_format)
    opt_G = torch.optim.Adam(list(G.parameters()) + list(Fm.parameters()), lr=PAPER["lr"], betas=PAPER["betas"])
    opt_D = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), lr=PAPER["lr"], betas=PAPER["betas"])
    pool_A, pool_B = ImagePool(PAPER["pool_size"]), ImagePool(PAPER["pool_size"])
    a = torch.rand(batch, 3, size, size, device=dev).mul(2).sub(1).contiguous(memory_format=memory_format)
    b = torch.rand(batch, 3, size, size, device=dev).mul(2).sub(1).contiguous(memory_format=memory_format)

    def step():
        with autocast():
            fake_b, fake_a = G(a), Fm(b)
            losses = generator_objective(D_B(fake_b), D_A(fake_a), a, Fm(fake_b), b, G(fake_a), G(b), Fm(a))
        opt_G.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt_G.step()
        with autocast():
            loss_D = (lsgan_d_loss(D_B(b), D_B(pool_B.query(fake_b)))
                      + lsgan_d_loss(D_A(a), D_A(pool_A.query(fake_a))))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()

    return BenchSetup(step, [G, Fm, D_A, D_B], size, batch)
