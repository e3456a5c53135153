"""StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, "Analyzing and Improving the Image
Quality of StyleGAN" (CVPR 2020, arXiv:1912.04958), in plain PyTorch: no custom CUDA ops to compile.

The layout follows rosinality/stylegan2-pytorch's model.py; the hyperparameters follow the "auto"
configuration of NVlabs/stylegan2-ada-pytorch (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"), which at 128x128 gives (see PAPER_128 below):

    batch 32, R1 gamma = 0.0002 * 128^2 / 32 = 0.1024, mapping depth 2, EMA half-life 10 kimg
    (with ramp-up 0.05), lr 0.0025, Adam betas (0, 0.99), channels min(16384 / res, 512).

Pieces, each next to the equation it computes:

* equalized learning rate (ProGAN): weights stored as N(0, 1) / lr_mul and scaled at run time by
  lr_mul / sqrt(fan_in), so Adam's per-parameter step is the same relative size for every layer;
* mapping network z -> w (PixelNorm, then `mapping_layers` equalized linear layers with lr_mul 0.01);
* modulated convolution with demodulation (the paper's Eq. 1-3), per-layer noise, learned constant
  input, a skip generator (a toRGB at each resolution, upsampled and summed);
* residual discriminator with the minibatch standard deviation layer;
* resampling with the [1, 3, 3, 1] binomial filter (upfirdn2d, written here with F.conv2d);
* losses: non-saturating logistic, lazy R1 (every 16 D steps), lazy path-length regularization
  (every 4 G steps) with the learning rate and Adam betas corrected for the lazy interval;
* style mixing (probability 0.9) and the truncation trick around the tracked mean w.

Shapes: z (N, z_dim) -> w (N, w_dim) -> ws (N, num_ws, w_dim), one w per modulated layer
(num_ws = 2 log2(resolution) - 2) -> image (N, 3, R, R), unbounded (no tanh: the paper's output
is linear; clamp to [-1, 1] before saving or evaluating).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import GanlibError

__all__ = [
    "PAPER_128", "channels_for", "make_kernel", "upfirdn2d", "Upsample", "Downsample", "Blur",
    "EqualLinear", "EqualConv2d", "BiasedLeakyReLU", "PixelNorm", "MappingNetwork", "ModulatedConv2d",
    "NoiseInjection", "StyledConv", "ToRGB", "ConstantInput", "Generator", "ConvLayer", "ResBlock",
    "MinibatchStdDev", "Discriminator", "d_logistic_loss", "g_nonsaturating_loss", "r1_penalty",
    "PathLengthPenalty", "mixed_ws", "lazy_adam", "bench_setup",
]

BLUR_KERNEL = (1, 3, 3, 1)  # the paper's binomial low-pass filter for every up- and downsampling

# stylegan2-ada-pytorch's `--cfg auto` at 128x128 on one GPU (train.py):
#   mb = min(4096 // res, 32) = 32, mbstd group = min(mb, 4) = 4, fmaps = 0.5 -> channel_base 16384,
#   lr = 0.0025, gamma = 0.0002 * res^2 / mb = 0.1024, ema = mb * 10 / 32 = 10 kimg, ramp 0.05, map = 2.
PAPER_128 = dict(
    resolution=128, z_dim=512, w_dim=512, mapping_layers=2, channel_base=16384, channel_max=512,
    batch_size=32, lr=0.0025, betas=(0.0, 0.99), r1_gamma=0.1024, d_reg_every=16, pl_weight=2.0,
    pl_batch_shrink=2, pl_decay=0.01, g_reg_every=4, style_mixing_prob=0.9, mbstd_group=4,
    ema_kimg=10, ema_rampup=0.05, ada_target=0.6, ada_interval=4, ada_kimg=500,
)


def channels_for(resolution: int, channel_base: int = 16384, channel_max: int = 512) -> dict[int, int]:
    """Feature maps per resolution, 4 .. resolution: min(channel_base / res, channel_max) (ADA's rule).

    At channel_base 16384: 4-32 px -> 512, 64 px -> 256, 128 px -> 128.
    """
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise GanlibError(f"resolution={resolution!r}: StyleGAN2 grows from a 4x4 constant by doublings, "
                          "so use a power of two >= 8 (e.g. 32, 64, 128).")
    sizes = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
    return {res: max(1, min(channel_base // res, channel_max)) for res in sizes}


# ----------------------------------------------------------------------------------------------
# Resampling: upfirdn2d = upsample (zero insertion), pad, FIR filter, downsample
# ----------------------------------------------------------------------------------------------

def make_kernel(taps=BLUR_KERNEL) -> torch.Tensor:
    """2-D filter from 1-D taps: outer product k k^T, normalized to sum 1 ([1,3,3,1] -> 4x4)."""
    k = torch.tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve each channel with `kernel`, keep every down-th pixel.

    Output side: (H * up + pad0 + pad1 - k) // down + 1. Negative pads crop. This is the native
    path of the CUDA op in the official code, made of depthwise F.conv2d calls (twice differentiable,
    as R1 and path-length regularization need). A 1-D kernel (k,) is applied separably, along the
    width then the height, which equals its outer product (k, k) at 2k instead of k^2 multiplies.
    """
    n, c, h, w = x.shape
    if up > 1:  # insert up-1 zeros after every pixel: (h, w) -> (h * up, w * up)
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # F.conv2d is a correlation; flip the kernel to make it a convolution (the [1,3,3,1] is symmetric
    # anyway). One filter per channel: groups = c.
    kernel = kernel.flip(list(range(kernel.ndim))).to(x.dtype)
    if kernel.ndim == 1:
        k = kernel.numel()
        x = F.conv2d(x, kernel.view(1, 1, 1, k).expand(c, 1, 1, k), stride=(1, down), groups=c)
        return F.conv2d(x, kernel.view(1, 1, k, 1).expand(c, 1, k, 1), stride=(down, 1), groups=c)
    return F.conv2d(x, kernel[None, None].expand(c, 1, *kernel.shape), stride=down, groups=c)


class Blur(nn.Module):
    """FIR low-pass with the paper's kernel; upsample_factor^2 gain after zero-insertion upsampling."""

    def __init__(self, pad: tuple[int, int], taps=BLUR_KERNEL, upsample_factor: int = 1):
        super().__init__()
        # Zero insertion leaves 1 in factor^2 pixels non-zero: the gain keeps the mean brightness.
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor ** 2, persistent=False)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x upsampling: zero insertion then the blur filter ((H, W) -> (2H, 2W)); used on the RGB skips."""

    def __init__(self, taps=BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps) * factor ** 2, persistent=False)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Downsample(nn.Module):
    """2x downsampling: blur then keep every other pixel ((H, W) -> (H/2, W/2))."""

    def __init__(self, taps=BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps), persistent=False)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)


# ----------------------------------------------------------------------------------------------
# Equalized learning rate layers
# ----------------------------------------------------------------------------------------------

class BiasedLeakyReLU(nn.Module):
    """Per-channel bias, then LeakyReLU(0.2) times sqrt(2) (the gain that keeps the variance at 1)."""

    def __init__(self, channels: int, lr_mul: float = 1.0):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.lr_mul = lr_mul

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return F.leaky_relu(x + (self.bias * self.lr_mul).view(shape), 0.2) * math.sqrt(2)


class EqualLinear(nn.Module):
    """y = x (W * lr_mul / sqrt(in))^T + b * lr_mul, with W stored as N(0, 1) / lr_mul.

    lr_mul = 0.01 (mapping network) makes the effective learning rate 100x smaller for those layers.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)  # He constant applied at run time
        self.lr_mul, self.activation = lr_mul, activation

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return F.leaky_relu(out + bias, 0.2) * math.sqrt(2) if bias is not None else \
                F.leaky_relu(out, 0.2) * math.sqrt(2)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """Conv2d with weights N(0, 1) scaled by 1 / sqrt(in * k * k) at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, {k}, stride={self.stride}, padding={self.padding}"


# ----------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------

class PixelNorm(nn.Module):
    """z / sqrt(mean(z^2) + 1e-8): puts every latent on the sphere of radius sqrt(z_dim)."""

    def forward(self, z):
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """z -> w: PixelNorm, then `num_layers` EqualLinear + LeakyReLU with lr_mul 0.01.

    The intermediate latent space W need not follow a fixed prior, so it can "unwarp" the factors of
    variation (StyleGAN, Section 4). Depth 8 in the paper at 1024 px; ADA's auto config uses 2.
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float = 0.01):
        super().__init__()
        if num_layers < 1:
            raise GanlibError(f"mapping_layers={num_layers}: the mapping network needs at least one layer.")
        layers = [PixelNorm()]
        for i in range(num_layers):
            layers.append(EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul, activation=True))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class ModulatedConv2d(nn.Module):
    """The StyleGAN2 convolution: the style scales the weights instead of the activations.

        s = A(w)                                  (affine, bias init 1: identity style at start)
        w'_ijk = s_i * w_ijk                      (Eq. 1: modulation, i = input channel)
        w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)   (Eq. 3: demodulation, j = output channel)

    Demodulation scales each output map back to unit standard deviation (assuming unit-variance
    inputs), which replaces StyleGAN's AdaIN and removes its "water droplet" artifacts. Each sample
    has its own weights, so the batch runs as one grouped convolution (groups = N).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, upsample: bool = False, taps=BLUR_KERNEL):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)  # equalized lr
        self.modulation = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.demodulate, self.upsample = demodulate, upsample
        if upsample:
            # Transposed 3x3 conv with stride 2 gives 2H+1 pixels; the blur (gain 4) pads so 2H come out.
            factor = 2
            p = (len(taps) - factor) - (kernel_size - 1)
            self.blur = Blur(pad=((p + 1) // 2 + factor - 1, p // 2 + 1), taps=taps, upsample_factor=factor)

    def forward(self, x, w, fused: bool | None = None):
        """fused=None: one grouped conv with per-sample weights in eval mode; in training mode the
        equivalent scale-conv-scale form (ADA's fused_modconv=False), much faster for a batch on CPU."""
        n, c, h, wd = x.shape
        style = self.modulation(w)                                           # s_i, (N, in)
        if fused is None:
            fused = not self.training
        if not fused:
            return self._forward_unfused(x, style)
        weight = self.scale * self.weight * style.view(n, 1, c, 1, 1)        # Eq. 1: (N, out, in, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4)) + 1e-8)     # Eq. 3: 1 / sigma_j
            weight = weight * demod.view(n, self.out_channels, 1, 1, 1)
        x = x.reshape(1, n * c, h, wd)                                       # the batch becomes groups
        k = self.kernel_size
        if self.upsample:
            # conv_transpose2d wants (in, out/groups, k, k) per group: swap the out and in axes.
            weight = weight.transpose(1, 2).reshape(n * c, self.out_channels, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, padding=0, groups=n)
            out = self.blur(out.reshape(n, self.out_channels, *out.shape[-2:]))
        else:
            weight = weight.reshape(n * self.out_channels, c, k, k)
            out = F.conv2d(x, weight, padding=k // 2, groups=n).reshape(n, self.out_channels, h, wd)
        return out

    def _forward_unfused(self, x, style):
        """The same result as scale -> shared conv -> scale: conv(x * s, W) * d_j, since the weight of
        sample n is W * s (per input channel) * d (per output channel) and both factors commute with the conv."""
        n, c = style.shape
        weight = self.scale * self.weight[0]                                 # (out, in, k, k)
        x = x * style.view(n, c, 1, 1).to(x.dtype)                           # Eq. 1 on the activations
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0))
        else:
            out = F.conv2d(x, weight, padding=self.kernel_size // 2)
        if self.demodulate:                                                  # Eq. 3: sum_ik (W s)^2 = (sum_k W^2) s^2
            demod = torch.rsqrt(style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).T + 1e-8)   # (N, out)
            out = out * demod.view(n, self.out_channels, 1, 1).to(out.dtype)
        return out

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, demodulate={self.demodulate}, "
                f"upsample={self.upsample}")


class NoiseInjection(nn.Module):
    """x + strength * noise, one noise map per pixel shared by all channels (strength starts at 0).

    Noise gives the generator a cheap source of stochastic detail (hair, texture, here dial grain)
    so it need not spend capacity making pseudo-random patterns from w.
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, *x.shape[2:]).normal_()
        return x + self.weight * noise


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + LeakyReLU: one "layer" of the synthesis network, one w."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 upsample: bool = False, taps=BLUR_KERNEL):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, w_dim, upsample=upsample, taps=taps)
        self.noise = NoiseInjection()
        self.activate = BiasedLeakyReLU(out_channels)

    def forward(self, x, w, noise=None):
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), plus the upsampled RGB of the previous resolution.

    The skip generator: the image is a sum of per-resolution RGB contributions, which replaces
    progressive growing (the paper's Figure 7b) while keeping its coarse-to-fine training dynamics.
    """

    def __init__(self, in_channels: int, w_dim: int, upsample: bool = True, taps=BLUR_KERNEL):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = Upsample(taps) if upsample else None

    def forward(self, x, w, skip=None):
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network (the content comes from the styles, not from z)."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int):
        return self.input.expand(batch, -1, -1, -1)


class Generator(nn.Module):
    """Mapping network + skip synthesis network with a tracked mean w for truncation.

        G = Generator(resolution=128, z_dim=512, w_dim=512, mapping_layers=2)
        images = G(z)                                    # (N, 3, 128, 128), training: random noise
        images = G(z, truncation_psi=0.7, noise_mode="const")   # samples for viewing
        ws = G.mapping(z)[:, None].expand(-1, G.num_ws, -1); G.synthesis(ws)   # the two halves

    w_avg is the running mean of w over training (beta 0.995 per training batch, as in ADA); EMA
    copies it with the other buffers. noise_mode: "random" (training), "const" (fixed maps drawn at
    construction, for reproducible samples), "none".
    """

    def __init__(self, resolution: int = 128, z_dim: int = 512, w_dim: int = 512, mapping_layers: int = 2,
                 channel_base: int = 16384, channel_max: int = 512, mapping_lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995, taps=BLUR_KERNEL):
        super().__init__()
        self.channels = channels_for(resolution, channel_base, channel_max)
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.log_size = int(math.log2(resolution))
        self.num_ws = 2 * self.log_size - 2  # two convs per resolution above 4, one at 4, +1 for the last toRGB
        self.w_avg_beta = w_avg_beta
        self.mapping_network = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
        self.register_buffer("w_avg", torch.zeros(w_dim))

        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, w_dim, taps=taps)
        self.to_rgb1 = ToRGB(ch[4], w_dim, upsample=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        noise_shapes = [4]
        in_ch = ch[4]
        for res in list(ch)[1:]:
            out_ch = ch[res]
            self.convs.append(StyledConv(in_ch, out_ch, 3, w_dim, upsample=True, taps=taps))
            self.convs.append(StyledConv(out_ch, out_ch, 3, w_dim, taps=taps))
            self.to_rgbs.append(ToRGB(out_ch, w_dim, taps=taps))
            noise_shapes += [res, res]
            in_ch = out_ch
        # Fixed noise maps for noise_mode="const"; drawn from their own generator so building a
        # Generator consumes the global RNG exactly as much as its parameters need.
        gen = torch.Generator().manual_seed(123)
        for i, res in enumerate(noise_shapes):
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res, generator=gen))
        self.num_noise = len(noise_shapes)

    def mapping(self, z, truncation_psi: float = 1.0, update_w_avg: bool = False):
        """z (N, z_dim) -> w (N, w_dim), truncated towards w_avg when truncation_psi < 1.

            w' = w_avg + psi (w - w_avg)       (the truncation trick in W)
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise GanlibError(f"Generator got z of shape {tuple(z.shape)}; expected (N, {self.z_dim}). "
                              f"Sample it with torch.randn(N, {self.z_dim}).")
        w = self.mapping_network(z)
        if update_w_avg:
            with torch.no_grad():  # w_avg <- w_avg + (1 - beta)(mean_batch w - w_avg)
                self.w_avg.lerp_(w.detach().float().mean(0).to(self.w_avg.dtype), 1 - self.w_avg_beta)
        if truncation_psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w

    def synthesis(self, ws, noise_mode: str = "random"):
        """ws (N, num_ws, w_dim) -> image (N, 3, R, R). Layer i uses ws[:, i]."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise GanlibError(f"synthesis got ws of shape {tuple(ws.shape)}; expected (N, {self.num_ws}, "
                              f"{self.w_dim}): one w per layer. Broadcast a single w with "
                              f"w[:, None].expand(-1, {self.num_ws}, -1).")
        if noise_mode not in ("random", "const", "none"):
            raise GanlibError(f"noise_mode={noise_mode!r}: use 'random', 'const' or 'none'.")
        n = ws.shape[0]

        def noise(i):
            if noise_mode == "random":
                return None  # NoiseInjection draws fresh noise
            buf = getattr(self, f"noise_{i}")
            return buf.to(ws.dtype) if noise_mode == "const" else torch.zeros_like(buf, dtype=ws.dtype)

        x = self.conv1(self.input(n), ws[:, 0], noise(0))
        skip = self.to_rgb1(x, ws[:, 1])
        i = 1
        for block, (up_conv, conv, to_rgb) in enumerate(zip(self.convs[::2], self.convs[1::2], self.to_rgbs)):
            x = up_conv(x, ws[:, i], noise(1 + 2 * block))
            x = conv(x, ws[:, i + 1], noise(2 + 2 * block))
            skip = to_rgb(x, ws[:, i + 2], skip)  # the toRGB shares its w with the next block's first conv
            i += 2
        return skip

    def forward(self, z, truncation_psi: float = 1.0, noise_mode: str = "random"):
        w = self.mapping(z, truncation_psi)
        return self.synthesis(w[:, None].expand(-1, self.num_ws, -1), noise_mode)


def mixed_ws(G: Generator, batch: int, mixing_prob: float, device, update_w_avg: bool = True):
    """Style mixing regularization: ws (batch, num_ws, w_dim) from two latents with prob mixing_prob.

    With probability mixing_prob, layers [0, cutoff) take w1 = f(z1) and [cutoff, num_ws) take
    w2 = f(z2), cutoff uniform in [1, num_ws) for the batch (as in ADA); otherwise all take w1. It
    keeps adjacent layers' styles from being correlated, so coarse and fine styles can be swapped.
    """
    z1 = torch.randn(batch, G.z_dim, device=device)
    ws = G.mapping(z1, update_w_avg=update_w_avg)[:, None].expand(-1, G.num_ws, -1)
    if mixing_prob > 0:
        cutoff = int(torch.randint(1, G.num_ws, ()).item())
        if torch.rand(()).item() >= mixing_prob:
            cutoff = G.num_ws
        z2 = torch.randn(batch, G.z_dim, device=device)
        w2 = G.mapping(z2)[:, None].expand(-1, G.num_ws, -1)
        layer = torch.arange(G.num_ws, device=device)[None, :, None]
        ws = torch.where(layer < cutoff, ws, w2)
    return ws


# ----------------------------------------------------------------------------------------------
# Discriminator
# ----------------------------------------------------------------------------------------------

class ConvLayer(nn.Sequential):
    """[blur] -> EqualConv2d (stride 2 after the blur when downsampling) -> [bias + LeakyReLU]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True, taps=BLUR_KERNEL):
        layers = []
        if downsample:
            # Blur so the stride-2 conv does not alias: pad (len + k - 3) / 2 each side, then stride 2.
            p = (len(taps) - 2) + (kernel_size - 1)
            layers.append(Blur(pad=((p + 1) // 2, p // 2), taps=taps))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding,
                                  bias=bias and not activate))
        if activate:
            layers.append(BiasedLeakyReLU(out_channels) if bias else nn.LeakyReLU(0.2))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual D block: (conv3x3 -> conv3x3 down) + (1x1 down skip), summed and scaled by 1/sqrt(2).

    The 1/sqrt(2) keeps the variance of the sum equal to that of each branch (the paper's Figure 7c).
    """

    def __init__(self, in_channels: int, out_channels: int, taps=BLUR_KERNEL):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, taps=taps)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, taps=taps)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False, bias=False, taps=taps)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class MinibatchStdDev(nn.Module):
    """Append the average standard deviation over groups of `group_size` samples as extra channels.

        sigma = mean_{c,h,w} sqrt(Var_group(x) + 1e-8)       one number per group (and channel split)

    A generator that collapses to one image gives sigma ~ 0, which D can see: a cheap cue against
    mode collapse (ProGAN, Section 3). The batch must split into whole groups.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise GanlibError(f"MinibatchStdDev: batch {n} does not split into groups of {g}; use a batch "
                              f"that is a multiple of {g} (or a smaller mbstd_group).")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)             # (G, N/G, F, C/F, H, W)
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0)        # variance over each group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))         # (N/G, F): average std
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)     # back to (N, F, H, W)
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """fromRGB (1x1) -> residual blocks down to 4x4 -> minibatch stddev -> conv 3x3 -> fc -> fc -> logit."""

    def __init__(self, resolution: int = 128, channel_base: int = 16384, channel_max: int = 512,
                 mbstd_group: int = 4, mbstd_channels: int = 1, taps=BLUR_KERNEL):
        super().__init__()
        ch = channels_for(resolution, channel_base, channel_max)
        self.resolution = resolution
        blocks = [ConvLayer(3, ch[resolution], 1)]
        for res in sorted(ch, reverse=True)[:-1]:
            blocks.append(ResBlock(ch[res], ch[res // 2], taps=taps))
        self.blocks = nn.Sequential(*blocks)
        self.mbstd = MinibatchStdDev(mbstd_group, mbstd_channels)
        self.final_conv = ConvLayer(ch[4] + mbstd_channels, ch[4], 3)
        self.final_linear = EqualLinear(ch[4] * 4 * 4, ch[4], activation=True)
        self.out = EqualLinear(ch[4], 1)

    def forward(self, images):
        if images.ndim != 4 or images.shape[1:] != (3, self.resolution, self.resolution):
            raise GanlibError(f"Discriminator got images of shape {tuple(images.shape)}; expected "
                              f"(N, 3, {self.resolution}, {self.resolution}). Resize the images or build "
                              f"the Discriminator with resolution={images.shape[-1]}.")
        x = self.final_conv(self.mbstd(self.blocks(images)))
        return self.out(self.final_linear(x.flatten(1))).squeeze(1)  # (N,) logits


# ----------------------------------------------------------------------------------------------
# Losses and regularizers
# ----------------------------------------------------------------------------------------------

def d_logistic_loss(real_logits, fake_logits):
    """L_D = E[softplus(D(G(z)))] + E[softplus(-D(x))] = -E log sigmoid(D(x)) - E log(1 - sigmoid(D(G(z))))."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits):
    """L_G = E[softplus(-D(G(z)))] = -E log sigmoid(D(G(z))): Goodfellow's non-saturating loss."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits, real_images):
    """R1 = E ||grad_x D(x)||^2 on real images (Mescheder et al. 2018); weighted by gamma / 2 by the caller.

    real_images must have requires_grad=True and real_logits must come from them. create_graph=True
    so the penalty itself can be differentiated with respect to D's weights.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


class PathLengthPenalty(nn.Module):
    """Path-length regularization (the paper's Eq. 4) with its running target a as a buffer.

        J_w^T y with y ~ N(0, I) / sqrt(H W)    (one vector-Jacobian product per sample, via autograd)
        a <- a + decay (mean ||J_w^T y|| - a)   (exponential moving average of the lengths)
        penalty = E (||J_w^T y||_2 - a)^2

    It asks a fixed-size step in w to change the image by a fixed amount, whatever the direction:
    smoother, more invertible generators (and better PPL). ||.|| sums over w_dim and averages over layers.
    """

    def __init__(self, decay: float = 0.01):
        super().__init__()
        self.decay = decay
        self.register_buffer("mean", torch.zeros(()))

    def forward(self, images, ws):
        n, _, h, w = images.shape
        y = torch.randn_like(images) / math.sqrt(h * w)
        (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)    # J_w^T y, (N, num_ws, w_dim)
        lengths = grad.float().pow(2).sum(dim=2).mean(dim=1).sqrt()                 # (N,)
        with torch.no_grad():
            self.mean.lerp_(lengths.mean(), self.decay)
        return (lengths - self.mean).pow(2).mean(), lengths.detach()


def lazy_adam(params, lr: float, betas: tuple[float, float], reg_every: int) -> torch.optim.Adam:
    """Adam for a network whose regularizer runs every `reg_every` steps (lazy regularization).

    A regularization step is an extra optimizer step, so over reg_every main steps there are
    reg_every + 1 updates. The paper keeps the optimizer's time scale by scaling with
    c = reg_every / (reg_every + 1):  lr' = lr * c,  beta' = beta^c.
    """
    c = reg_every / (reg_every + 1)
    return torch.optim.Adam(params, lr=lr * c, betas=(betas[0] ** c, betas[1] ** c), eps=1e-8)


# ----------------------------------------------------------------------------------------------
# `python -m ganlib bench stylegan2`
# ----------------------------------------------------------------------------------------------

@dataclass
class _BenchCounter:
    step: int = 0


def bench_setup(size, batch, dev, autocast, memory_format):
    """The paper preset (128 px, batch 32, ADA at p = 0.3) for ganlib.bench: one G + D step per call.

    The lazy regularizers are amortized by a counter, as in training: R1 runs on every 16th call and
    path length on every 4th, so the mean over a multiple of 16 timed steps (--steps 16, 32, ...)
    is exactly the average training step. Other step counts weigh them slightly off.
    """
    from .augment import AdaptiveAugment
    from .bench import BenchSetup

    P = PAPER_128
    size, batch = size or P["resolution"], batch or P["batch_size"]
    G = Generator(size, P["z_dim"], P["w_dim"], P["mapping_layers"], P["channel_base"], P["channel_max"])
    D = Discriminator(size, P["channel_base"], P["channel_max"], P["mbstd_group"])
    G, D = G.to(dev, memory_format=memory_format), D.to(dev, memory_format=memory_format)
    opt_G = lazy_adam(G.parameters(), P["lr"], P["betas"], P["g_reg_every"])
    opt_D = lazy_adam(D.parameters(), P["lr"], P["betas"], P["d_reg_every"])
    augment = AdaptiveAugment(batch_size=batch, p=0.3)
    pl = PathLengthPenalty(P["pl_decay"]).to(dev)
    real = torch.randn(batch, 3, size, size, device=dev).clamp(-1, 1).contiguous(memory_format=memory_format)
    count = _BenchCounter()

    def step():
        # D: logistic loss on augmented reals and fakes
        with autocast():
            with torch.no_grad():
                fake = G.synthesis(mixed_ws(G, batch, P["style_mixing_prob"], dev))
            loss_D = d_logistic_loss(D(augment(real)), D(augment(fake)))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        if count.step % P["d_reg_every"] == 0:  # lazy R1
            real_req = real.detach().requires_grad_(True)
            with autocast():
                logits = D(augment(real_req))
            r1 = r1_penalty(logits.float(), real_req)
            opt_D.zero_grad(set_to_none=True)
            (P["r1_gamma"] / 2 * r1 * P["d_reg_every"] + 0 * logits[0]).backward()
            opt_D.step()
        # G: non-saturating loss
        with autocast():
            loss_G = g_nonsaturating_loss(D(augment(G.synthesis(mixed_ws(G, batch, P["style_mixing_prob"], dev)))))
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        if count.step % P["g_reg_every"] == 0:  # lazy path length on half the batch
            # ws stays attached to the mapping network: the penalty trains it too (as in ADA)
            ws = mixed_ws(G, batch // P["pl_batch_shrink"], P["style_mixing_prob"], dev, update_w_avg=False)
            with autocast():
                images = G.synthesis(ws)
            penalty, _ = pl(images.float(), ws)
            opt_G.zero_grad(set_to_none=True)
            (P["pl_weight"] * P["g_reg_every"] * penalty + 0 * images[0, 0, 0, 0]).backward()
            opt_G.step()
        count.step += 1

    return BenchSetup(step, [G, D], size, batch)
