"""SPADE / GauGAN: Park, Liu, Wang & Zhu, "Semantic Image Synthesis with Spatially-Adaptive
Normalization" (CVPR 2019), following the structure of NVlabs/SPADE.

The problem SPADE fixes: pix2pix feeds the label map in at the top of the network, and every
normalisation layer then subtracts the mean of its features. A map that is all "sky" (or any
uniform region) becomes all zeros after the first conv + norm, so the semantics are "washed
away". SPADE instead re-injects the label map at EVERY normalisation layer:

    h_out = BN(h) * (1 + gamma(m)) + beta(m)

where BN has no learned affine parameters and gamma(m), beta(m) are per-pixel, per-channel maps
predicted by a small conv net from the label map m resized to h's resolution.

* Generator (the paper's z-less variant): the one-hot label map is downsampled to H/32 x W/32
  and a 3x3 conv turns it into 16*ngf channels; seven SPADE residual blocks and five nearest
  x2 upsamplings bring it to H x W (16, 16, 16, 8, 4, 2, 1 times ngf); LeakyReLU, a 3x3 conv to
  RGB, tanh. Spectral norm on every conv of the residual blocks. Fully convolutional: any H, W
  that are multiples of 32.
* Discriminator: pix2pixHD's multi-scale PatchGAN (two copies, the second on a 2x downsampled
  input), each 4 stride-2/1 conv layers with spectral norm and instance norm, on the label map
  concatenated with the photo. It returns every layer's features, for feature matching.
* Losses: hinge GAN loss, feature matching (L1 between D's features of real and fake,
  weight 10), and the VGG-19 perceptual loss (weight 10) when its ImageNet weights are present
  locally (never downloaded here).
* Optimisation (TTUR): Adam with betas (0, 0.9), lr 1e-4 for G and 4e-4 for D.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ganlib.errors import GanlibError

# The paper's Cityscapes setup: 256x512, ngf = ndf = 64, 128 hidden channels in each SPADE,
# two discriminator scales of 4 layers, lambda_feat = lambda_vgg = 10, TTUR Adam(0, 0.9).
PAPER = dict(ngf=64, ndf=64, hidden=128, num_D=2, n_layers_D=4, lambda_feat=10.0, lambda_vgg=10.0,
             lr_G=1e-4, lr_D=4e-4, betas=(0.0, 0.9), batch_size=32, size=(256, 512))
N_UP = 5  # nearest x2 upsamplings in G: label maps must be multiples of 2**5 = 32 on each side


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation of an (N, C, H, W) map, conditioned on the label map.

    out = BN(x) * (1 + gamma) + beta, with gamma, beta = convs(shared conv(resize(m))).
    """

    def __init__(self, norm_nc, label_nc, hidden=128, kernel_size=3):
        super().__init__()
        # Parameter-free: SPADE's gamma and beta replace BatchNorm's own affine parameters.
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        # Nearest resizing keeps one-hot vectors one-hot (bilinear would blend classes).
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        return normalized * (1 + gamma) + beta  # (1 + gamma): starts near the identity


class SPADEResBlock(nn.Module):
    """x -> shortcut(x) + conv(act(SPADE(conv(act(SPADE(x, m)))), m)); a learned 1x1 shortcut when fin != fout."""

    def __init__(self, fin, fout, label_nc, hidden=128, use_spectral_norm=True):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmiddle, fout, 3, padding=1))
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden)
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADE(fin, label_nc, hidden)

    def forward(self, x, seg):
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class SPADEGenerator(nn.Module):
    """One-hot label map (N, label_nc, H, W) -> photo (N, 3, H, W) in [-1, 1]; H, W multiples of 32.

    Resolutions for 256x512: fc at 8x16 -> head_0 8x16 -> middle 16x32 -> up_0 32x64 -> up_1 64x128
    -> up_2 128x256 -> up_3 256x512.
    """

    def __init__(self, label_nc, ngf=64, hidden=128, use_spectral_norm=True):
        super().__init__()
        self.label_nc = label_nc
        nf = ngf
        # The z-less generator: start from the label map itself, downsampled (no VAE encoder).
        self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)
        block = lambda fin, fout: SPADEResBlock(fin, fout, label_nc, hidden, use_spectral_norm)  # noqa: E731
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, 1 * nf)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, seg):
        check_label_map(seg, self.label_nc, "SPADEGenerator")
        h, w = seg.shape[2:]
        x = self.fc(F.interpolate(seg, size=(h >> N_UP, w >> N_UP), mode="nearest"))  # (N, 16 nf, H/32, W/32)
        x = self.head_0(x, seg)
        x = F.interpolate(x, scale_factor=2, mode="nearest")  # H/16
        x = self.G_middle_0(x, seg)
        x = self.G_middle_1(x, seg)
        for block in (self.up_0, self.up_1, self.up_2, self.up_3):  # H/8, H/4, H/2, H
            x = block(F.interpolate(x, scale_factor=2, mode="nearest"), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def check_label_map(seg, label_nc, who):
    if seg.dim() != 4 or seg.shape[1] != label_nc:
        raise GanlibError(f"{who} expects one-hot label maps (N, {label_nc}, H, W), got shape {tuple(seg.shape)}; "
                          "make them with ganlib.cityscapes.one_hot(ids) (ids from colors_to_ids).")
    h, w = seg.shape[2:]
    if h % 2 ** N_UP or w % 2 ** N_UP:
        raise GanlibError(f"{who}: height and width must be multiples of {2 ** N_UP} (the generator starts at "
                          f"H/{2 ** N_UP} x W/{2 ** N_UP} and upsamples {N_UP} times), got {h}x{w}; resize or "
                          "crop the label map, e.g. to 256x512.")


class NLayerDiscriminator(nn.Module):
    """PatchGAN of pix2pixHD/SPADE: returns the list of every layer's output, the logits last.

    C64 (s2, no norm) - C128 (s2) - C256 (s2) - C512 (s1) - conv to 1 (s1); 4x4 kernels, padding 2;
    spectral norm + instance norm on the middle layers. At 256x512: logits of shape (N, 1, 35, 67).
    """

    def __init__(self, in_channels, ndf=64, n_layers=4):
        super().__init__()
        kw, pad = 4, 2  # ceil((4 - 1) / 2)
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, kw, 2, pad), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            # No bias: InstanceNorm removes the per-channel mean right after.
            conv = spectral_norm(nn.Conv2d(nf_prev, nf, kw, stride, pad, bias=False))
            layers.append(nn.Sequential(conv, nn.InstanceNorm2d(nf, affine=False), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, kw, 1, pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """num_D PatchGANs on the (label map, photo) pair at full, 1/2, 1/4 ... resolution.

    The coarse copy sees more context per logit (global layout), the fine one texture.
    Returns a list (one per scale) of lists of layer features, logits last.
    """

    def __init__(self, label_nc, ndf=64, num_D=2, n_layers=4, image_channels=3):
        super().__init__()
        self.label_nc = label_nc
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(label_nc + image_channels, ndf, n_layers) for _ in range(num_D))

    def forward(self, seg, image):
        if seg.shape[0] != image.shape[0] or seg.shape[2:] != image.shape[2:] or seg.shape[1] != self.label_nc:
            raise GanlibError(f"MultiscaleDiscriminator expects one-hot maps (N, {self.label_nc}, H, W) and photos "
                              f"(N, 3, H, W) of one size, got {tuple(seg.shape)} and {tuple(image.shape)}.")
        x = torch.cat([seg, image], dim=1)
        outputs = []
        for i, D in enumerate(self.discriminators):
            if i > 0:  # 3x3 average pooling, stride 2, padding not counted in the average
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(D(x))
        return outputs


def init_weights(module, gain=0.02):
    """SPADE's default init: Xavier-normal(gain 0.02) conv weights, zero biases.

    (Layers under spectral norm are rescaled to spectral norm 1 anyway, so their init scale is moot.)
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        weight = (module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight")
                  else module.weight)
        nn.init.xavier_normal_(weight, gain=gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------
# Losses


def d_hinge_loss(real_outputs, fake_outputs):
    """L_D = mean over scales of E[max(0, 1 - D(m, x))] + E[max(0, 1 + D(m, G(m)))] (hinge)."""
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        loss = loss + F.relu(1 - real[-1]).mean() + F.relu(1 + fake[-1]).mean()
    return loss / len(real_outputs)


def g_hinge_loss(fake_outputs):
    """L_G^GAN = -mean over scales of E[D(m, G(m))]: the generator raises the fake logits."""
    return sum(-fake[-1].mean() for fake in fake_outputs) / len(fake_outputs)


def feature_matching_loss(real_outputs, fake_outputs, weight=PAPER["lambda_feat"]):
    """L_FM = weight / num_D * sum_scales sum_layers ||D_l(m, x) - D_l(m, G(m))||_1 (mean absolute error).

    Every layer but the logits; the real features are targets (no gradient). It asks G to match
    the statistics D sees at several levels, which stabilises training (pix2pixHD, section 3.2).
    """
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        for r, f in zip(real[:-1], fake[:-1]):
            loss = loss + F.l1_loss(f, r.detach())
    return loss * weight / len(real_outputs)


# ----------------------------------------------------------------------------------------------
# VGG-19 perceptual loss (optional)

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG-19
VGG_SLICES = (2, 7, 12, 21, 30)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in vgg19().features
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # deeper layers weigh more (pix2pixHD / SPADE)


def vgg19_weights_path(path=None):
    """Where the VGG-19 weights are: `path`, else the torch hub cache. None if absent (never downloads)."""
    candidate = Path(path) if path else Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return candidate if candidate.is_file() else None


class VGGLoss(nn.Module):
    """L_VGG = sum_i w_i ||phi_i(x) - phi_i(y)||_1 over five VGG-19 ReLU layers, weights 1/32 ... 1.

    `features` is torchvision's vgg19().features; images in [-1, 1] are mapped to ImageNet
    statistics first. The network is frozen: it is a fixed measure of perceptual similarity.
    """

    def __init__(self, features):
        super().__init__()
        self.slices = nn.ModuleList(features[a:b] for a, b in zip((0,) + VGG_SLICES[:-1], VGG_SLICES))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x, y):
        x, y = ((x + 1) / 2 - self.mean) / self.std, ((y + 1) / 2 - self.mean) / self.std
        loss = 0.0
        for weight, block in zip(VGG_WEIGHTS, self.slices):
            x, y = block(x), block(y)
            loss = loss + weight * F.l1_loss(x, y.detach())
        return loss

    def train(self, mode=True):  # always eval: no dropout/BN in features, but keep it frozen
        return super().train(False)


def vgg_loss(path=None):
    """A VGGLoss from local ImageNet weights, or None when they are not available (no download)."""
    found = vgg19_weights_path(path)
    if found is None:
        if path:
            raise GanlibError(f"VGG-19 weights not found at {path}; download {VGG19_FILE} from torchvision on a "
                              "machine with internet, or set use_vgg=False.")
        return None
    from torchvision.models import vgg19

    net = vgg19(weights=None)
    net.load_state_dict(torch.load(found, map_location="cpu", weights_only=True))
    return VGGLoss(net.features)


def bench_setup(size, batch, dev, autocast, memory_format):
    """One full SPADE training step (D then G, hinge + feature matching) at the paper's Cityscapes config."""
    from ganlib.bench import BenchSetup

    size, batch = size or PAPER["size"][0], batch or 4
    side = max(32, size - size % 32)
    h, w = side, 2 * side
    label_nc = 19
    G = SPADEGenerator(label_nc, PAPER["ngf"], PAPER["hidden"]).to(dev, memory_format=memory_format)
    D = MultiscaleDiscriminator(label_nc, PAPER["ndf"], PAPER["num_D"], PAPER["n_layers_D"]).to(
        dev, memory_format=memory_format)
    opt_G = torch.optim.Adam(G.parameters(), lr=PAPER["lr_G"], betas=PAPER["betas"])
    opt_D = torch.optim.Adam(D.parameters(), lr=PAPER["lr_D"], betas=PAPER["betas"])
    ids = torch.randint(0, label_nc, (batch, h, w), device=dev)
    seg = F.one_hot(ids, label_nc).permute(0, 3, 1, 2).float().contiguous(memory_format=memory_format)
    real = torch.rand(batch, 3, h, w, device=dev).mul(2).sub(1).contiguous(memory_format=memory_format)

    def step():
        with autocast():
            fake = G(seg)
            loss_D = d_hinge_loss(D(seg, real), D(seg, fake.detach()))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        with autocast():
            real_out, fake_out = D(seg, real), D(seg, fake)
            loss_G = g_hinge_loss(fake_out) + feature_matching_loss(real_out, fake_out)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()

    return BenchSetup(step, [G, D], side, batch)
