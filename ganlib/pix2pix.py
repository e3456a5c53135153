"""pix2pix: Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
Networks" (CVPR 2017), as the seed project `004` (Seg2Scene) codes it.

* Generator: a U-Net. Eight stride-2 4x4 convolutions take a 256x256 map down to 1x1 (the
  initial conv, six encoder blocks and the bottleneck); eight stride-2 4x4 transposed
  convolutions bring it back up, each decoder block concatenating the encoder map of the same
  size (the skip connections that let fine detail bypass the bottleneck). BatchNorm everywhere
  except the first conv, the bottleneck and the output; LeakyReLU(0.2) going down, ReLU coming
  up, dropout 0.5 in the first three decoder blocks (pix2pix's only source of noise), tanh out.
  With 3 channels and 64 features: 54,414,531 parameters (the seed's count).
* Discriminator: the 70x70 conditional PatchGAN. It sees the label map and a photo
  concatenated (6 channels) and returns a grid of logits, one per overlapping 70x70 patch:
  30x30 at 256x256. With 64 features: 2,768,705 parameters.
* Losses: BCE-with-logits (the GAN loss), plus 100 x L1 to the true photo for G; D's loss is
  halved "to slow down the rate at which D learns relative to G" (the paper, section 3.3).

Both networks are fully convolutional: trained on 256x256 crops, G runs on any input whose
height and width are multiples of 256 (e.g. a full 1024x2048 Cityscapes frame).
"""
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.dcgan import init_weights as dcgan_init_weights
from ganlib.errors import GanlibError

# The seed's training setup: Adam(2e-4, betas (0.5, 0.999)), batch 8, lambda_L1 = 100, 256 px.
PAPER = dict(lr=2e-4, betas=(0.5, 0.999), batch_size=8, l1_lambda=100.0, image_size=256, features=64)
N_DOWN = 8  # stride-2 convolutions between the input and the 1x1 bottleneck
MIN_SIZE = 2 ** N_DOWN  # 256: height and width must be multiples of it


class Block(nn.Module):
    """One U-Net level: 4x4 stride-2 conv (down) or transposed conv (up), BatchNorm, activation.

    Down: (N, in, H, W) -> (N, out, H/2, W/2); up: -> (N, out, 2H, 2W). The conv has no bias
    because BatchNorm subtracts the mean right after.
    """

    def __init__(self, in_channels, out_channels, down=True, act="relu", use_dropout=False):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False, padding_mode="reflect")
            if down
            else nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2),
        )
        self.use_dropout = use_dropout
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = self.conv(x)
        return self.dropout(x) if self.use_dropout else x


class Generator(nn.Module):
    """U-Net G: label map (N, in_channels, H, W) -> photo (N, out_channels, H, W) in [-1, 1].

    Channel widths for features f: down f, 2f, 4f, 8f, 8f, 8f, 8f, bottleneck 8f; up 8f, 8f, 8f,
    8f, 4f, 2f, f, out. Each up block after the first takes twice its width in (the skip).
    """

    def __init__(self, in_channels=3, features=64, out_channels=None):
        super().__init__()
        f = features
        self.in_channels = in_channels
        out_channels = in_channels if out_channels is None else out_channels  # the seed maps 3 -> 3
        # Encoder: C64 (no BatchNorm on the input layer) then C128-C256-C512-C512-C512-C512.
        self.initial_down = nn.Sequential(nn.Conv2d(in_channels, f, 4, 2, 1, padding_mode="reflect"), nn.LeakyReLU(0.2))
        self.down1 = Block(f, f * 2, down=True, act="leaky")
        self.down2 = Block(f * 2, f * 4, down=True, act="leaky")
        self.down3 = Block(f * 4, f * 8, down=True, act="leaky")
        self.down4 = Block(f * 8, f * 8, down=True, act="leaky")
        self.down5 = Block(f * 8, f * 8, down=True, act="leaky")
        self.down6 = Block(f * 8, f * 8, down=True, act="leaky")
        # Bottleneck: 2x2 -> 1x1 at 256 px; zero padding (reflect needs more than one pixel).
        self.bottleneck = nn.Sequential(nn.Conv2d(f * 8, f * 8, 4, 2, 1), nn.ReLU())
        # Decoder: CD512-CD512-CD512 (dropout 0.5) then C512-C256-C128-C64, inputs doubled by the skips.
        self.up1 = Block(f * 8, f * 8, down=False, use_dropout=True)
        self.up2 = Block(f * 8 * 2, f * 8, down=False, use_dropout=True)
        self.up3 = Block(f * 8 * 2, f * 8, down=False, use_dropout=True)
        self.up4 = Block(f * 8 * 2, f * 8, down=False)
        self.up5 = Block(f * 8 * 2, f * 4, down=False)
        self.up6 = Block(f * 4 * 2, f * 2, down=False)
        self.up7 = Block(f * 2 * 2, f, down=False)
        self.final_up = nn.Sequential(nn.ConvTranspose2d(f * 2, out_channels, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        check_input(x, self.in_channels, "Generator")
        d1 = self.initial_down(x)  # H/2
        d2 = self.down1(d1)  # H/4
        d3 = self.down2(d2)  # H/8
        d4 = self.down3(d3)  # H/16
        d5 = self.down4(d4)  # H/32
        d6 = self.down5(d5)  # H/64
        d7 = self.down6(d6)  # H/128
        bottleneck = self.bottleneck(d7)  # H/256: 1x1 at 256 px, 4x8 at 1024x2048
        up1 = self.up1(bottleneck)
        # Skip connections: concatenate the encoder map of the same resolution along channels.
        up2 = self.up2(torch.cat([up1, d7], 1))
        up3 = self.up3(torch.cat([up2, d6], 1))
        up4 = self.up4(torch.cat([up3, d5], 1))
        up5 = self.up5(torch.cat([up4, d4], 1))
        up6 = self.up6(torch.cat([up5, d3], 1))
        up7 = self.up7(torch.cat([up6, d2], 1))
        return self.final_up(torch.cat([up7, d1], 1))


def check_input(x, channels, who):
    """Clear errors for what the U-Net cannot take: wrong rank/channels, sides not multiples of 256."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise GanlibError(f"{who} expects (N, {channels}, H, W) label maps, got shape {tuple(x.shape)}; "
                          "add a batch dimension with x[None] or check the number of channels.")
    h, w = x.shape[-2:]
    if h % MIN_SIZE or w % MIN_SIZE:
        raise GanlibError(
            f"{who}: height and width must be multiples of {MIN_SIZE} (the U-Net halves them {N_DOWN} times "
            f"down to its bottleneck), got {h}x{w}; resize or crop to e.g. 256x256, 256x512 or 1024x2048.")


class CNNBlock(nn.Module):
    """PatchGAN layer: 4x4 conv (reflect padding, no bias), BatchNorm, LeakyReLU(0.2)."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 4, stride, 1, bias=False, padding_mode="reflect"),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x):
        return self.conv(x)


class Discriminator(nn.Module):
    """Conditional 70x70 PatchGAN: (label map x, photo y) -> logits (N, 1, H/8 - 2, W/8 - 2).

    C64 (stride 2, no BatchNorm) - C128 (s2) - C256 (s2) - C512 (s1) - conv to 1 logit (s1).
    Receptive field of one logit: 70x70 pixels; 30x30 logits at 256x256.
    """

    def __init__(self, in_channels=3, features=(64, 128, 256, 512)):
        super().__init__()
        if isinstance(features, int):  # a single width f means (f, 2f, 4f, 8f)
            features = (features, features * 2, features * 4, features * 8)
        self.in_channels = in_channels
        self.initial = nn.Sequential(
            nn.Conv2d(in_channels * 2, features[0], 4, 2, 1, padding_mode="reflect"), nn.LeakyReLU(0.2))
        layers, channels = [], features[0]
        for feature in features[1:]:
            layers.append(CNNBlock(channels, feature, stride=1 if feature == features[-1] else 2))
            channels = feature
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1, padding_mode="reflect"))  # logits: no sigmoid
        self.model = nn.Sequential(*layers)

    def forward(self, x, y):
        if x.shape != y.shape or x.shape[1] != self.in_channels:
            raise GanlibError(f"Discriminator expects a label map and a photo of one shape (N, {self.in_channels}, H, W), "
                              f"got {tuple(x.shape)} and {tuple(y.shape)}.")
        # Conditional: D judges the pair, so a photo that ignores its label map is "fake".
        return self.model(self.initial(torch.cat([x, y], dim=1)))


# The weights start from N(0, 0.02), BatchNorm scales from N(1, 0.02), biases at zero: the DCGAN init, which the
# pix2pix paper and its reference code kept (the seed leaves PyTorch's Kaiming-uniform default).
init_weights = dcgan_init_weights


def d_loss(real_logits, fake_logits):
    """L_D = [BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)] / 2, averaged over every patch logit."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return (real + fake) / 2  # halved: D learns more slowly than G


def g_loss(fake_logits, fake, real, l1_lambda=PAPER["l1_lambda"]):
    """L_G = BCE(D(x, G(x)), 1) + lambda * ||y - G(x)||_1 (mean absolute error). Returns (total, gan, l1).

    The GAN term asks for realistic texture, the L1 term for the right low frequencies (colours
    and layout): L1 alone gives blurry averages, the GAN alone ignores the input.
    """
    gan = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))  # non-saturating
    l1 = F.l1_loss(fake, real)
    return gan + l1_lambda * l1, gan, l1


def bench_setup(size, batch, dev, autocast, memory_format):
    """One full pix2pix training step (D then G) at the seed's configuration, for `python -m ganlib bench`."""
    from ganlib.bench import BenchSetup

    size, batch = size or PAPER["image_size"], batch or PAPER["batch_size"]
    side = max(MIN_SIZE, size - size % MIN_SIZE)
    G = Generator(3, PAPER["features"]).to(dev, memory_format=memory_format)
    D = Discriminator(3, PAPER["features"]).to(dev, memory_format=memory_format)
    opt_G = torch.optim.Adam(G.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    opt_D = torch.optim.Adam(D.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    x = torch.rand(batch, 3, side, side, device=dev).mul(2).sub(1).contiguous(memory_format=memory_format)
    y = torch.rand(batch, 3, side, side, device=dev).mul(2).sub(1).contiguous(memory_format=memory_format)

    def step():
        with autocast():
            fake = G(x)
            loss_D = d_loss(D(x, y), D(x, fake.detach()))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        with autocast():
            loss_G = g_loss(D(x, fake), fake, y)[0]
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()

    return BenchSetup(step, [G, D], side, batch)
