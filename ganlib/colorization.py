"""Colorization with a conditional GAN in Lab space: a grey image's L channel in, its ab channels out.

The recipe of the seed (Nguyen & Nguyen, "GAN cho to mau anh xam", after M. Shariatnia's tutorial
"Colorizing black & white images with U-Net and conditional GAN", 2020), which is the colorization
mode of pix2pix (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017) with two changes that make it work on a small dataset:

1. the generator is a U-Net whose encoder is a ResNet18 (ImageNet weights when available), with
   the decoder of fastai's DynamicUnet (PixelShuffle upsampling with ICNR init, BatchNorm on the
   skips, a last residual block that sees the input again);
2. that generator is first trained alone with the L1 loss (stage 1), and only then against a
   PatchGAN discriminator with L1 + adversarial loss (stage 2), so the GAN game starts from a
   generator that already colours plausibly instead of "the blind leading the blind".

The plain pix2pix U-Net (8 stride-2 levels, dropout in the middle) is here too: the baseline the
tutorial started from, and the generator pix2pix uses.

Conventions: RGB images are float tensors in [-1, 1], (N, 3, H, W). Lab goes through scikit-image
(rgb2lab / lab2rgb, D65 white); L in [0, 100] is scaled to [-1, 1] by L / 50 - 1, and ab (roughly
[-110, 110] for sRGB colours) by ab / 110.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.dcgan import init_weights as dcgan_init_weights
from ganlib.errors import DataError, GanlibError

# The seed's and tutorial's training setup: 256x256 crops with horizontal flips, batch 16; stage 1
# Adam(1e-4) on L1 for 20 epochs; stage 2 Adam(2e-4, betas (0.5, 0.999)) for G and D, lambda_L1 = 100,
# 20 epochs; 8,000 COCO training images and 2,000 for validation.
PAPER = dict(size=256, batch_size=16, pretrain_lr=1e-4, lr=2e-4, betas=(0.5, 0.999), lambda_l1=100.0,
             pretrain_epochs=20, gan_epochs=20, n_train=8000, n_eval=2000)

L_SCALE, L_SHIFT, AB_SCALE = 50.0, 1.0, 110.0

# torchvision's ResNet18 ImageNet weights (IMAGENET1K_V1), looked up in the torch hub cache.
RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_URL = f"https://download.pytorch.org/models/{RESNET18_FILE}"


# ----------------------------------------------------------------------------------------------
# Lab conversion


def _check_rgb(rgb: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(rgb) or rgb.dim() not in (3, 4) or rgb.shape[-3] != 3:
        shape = tuple(rgb.shape) if torch.is_tensor(rgb) else type(rgb).__name__
        raise GanlibError(f"expected RGB images as a tensor (N, 3, H, W) or (3, H, W) in [-1, 1], got {shape}. "
                          "Convert a uint8 HxWx3 array with ganlib.data.to_tensor first.")
    return rgb


def rgb_to_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in [-1, 1], (N, 3, H, W) or (3, H, W) -> (L, ab) scaled for the networks.

    L = L* / 50 - 1 in [-1, 1] (N, 1, H, W); ab = (a*, b*) / 110, about [-1, 1] (N, 2, H, W).
    """
    from skimage.color import rgb2lab

    rgb = _check_rgb(rgb)
    single = rgb.dim() == 3
    x = rgb[None] if single else rgb
    hwc = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    lab = torch.from_numpy(rgb2lab(hwc, channel_axis=-1).astype(np.float32)).permute(0, 3, 1, 2)
    L = lab[:, :1] / L_SCALE - L_SHIFT      # L* in [0, 100] -> [-1, 1]
    ab = lab[:, 1:] / AB_SCALE              # a*, b* in about [-110, 110] -> [-1, 1]
    L, ab = L.to(rgb.device), ab.to(rgb.device)
    return (L[0], ab[0]) if single else (L, ab)


def lab_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_lab: (N, 1, H, W) and (N, 2, H, W) -> RGB (N, 3, H, W) in [-1, 1].

    ab is clamped to [-1, 1] first (the ResNet U-Net's output is unbounded), and colours outside
    the sRGB gamut are clipped by scikit-image (its "negative Z values" warning is silenced).
    """
    from skimage.color import lab2rgb

    if L.dim() != 4 or ab.dim() != 4 or L.shape[1] != 1 or ab.shape[1] != 2 or L.shape[-2:] != ab.shape[-2:]:
        raise GanlibError(f"lab_to_rgb needs L (N, 1, H, W) and ab (N, 2, H, W) of one size, got "
                          f"{tuple(L.shape)} and {tuple(ab.shape)}.")
    lab = torch.cat([(L.detach().float().cpu().clamp(-1, 1) + L_SHIFT) * L_SCALE,
                     ab.detach().float().cpu().clamp(-1, 1) * AB_SCALE], dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rgb = lab2rgb(lab.permute(0, 2, 3, 1).numpy().astype(np.float64), channel_axis=-1)
    return (torch.from_numpy(rgb.astype(np.float32)).permute(0, 3, 1, 2) * 2 - 1).to(L.device)


def grey_rgb(L: torch.Tensor) -> torch.Tensor:
    """The grey input shown as RGB: L with ab = 0 (the no-colour baseline)."""
    return lab_to_rgb(L, torch.zeros_like(L).repeat(1, 2, 1, 1))


# ----------------------------------------------------------------------------------------------
# Data


class LabImages(torch.utils.data.Dataset):
    """Wraps a dataset of RGB images in [-1, 1] -> dict(L=(1, H, W), ab=(2, H, W)).

    `key` picks the image out of dict items (StreetScenes: key="day"). The wrapped dataset's
    set_epoch is forwarded, so augmentation stays a function of (seed, epoch, index).
    """

    def __init__(self, images, key: str | None = None):
        self.images, self.key = images, key

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.images, "set_epoch"):
            self.images.set_epoch(epoch)

    def rgb(self, index: int) -> torch.Tensor:
        item = self.images[index]
        if isinstance(item, dict):
            if self.key is None or self.key not in item:
                raise DataError(f"LabImages got dict items with keys {sorted(item)}; pass key= one of them "
                                "(StreetScenes: key='day').")
            item = item[self.key]
        elif isinstance(item, (tuple, list)):  # (image, label) datasets
            item = item[0]
        return item

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        L, ab = rgb_to_lab(self.rgb(index))
        return dict(L=L, ab=ab)


def shipped_photos() -> dict[str, np.ndarray]:
    """Real colour photos that installed packages ship, as uint8 HxWx3 (no download).

    scikit-image: astronaut (Eileen Collins), coffee, chelsea (a cat), rocket, the left view of
    stereo_motorcycle; scikit-learn: china (a temple) and flower. Hubble, retina and microscopy
    images are left out: colourising them from grey is a different problem.
    """
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skdata, name)() for name in ("astronaut", "coffee", "chelsea", "rocket")}
    photos["motorcycle"] = skdata.stereo_motorcycle()[0]
    sample = load_sample_images()
    for path, image in zip(sample.filenames, sample.images):
        photos[Path(path).stem] = image
    return {name: np.ascontiguousarray(image[..., :3]) for name, image in photos.items()}


class PhotoCrops(torch.utils.data.Dataset):
    """`length` random square crops of a few photos, resized to `size`, as RGB in [-1, 1].

    Item i is a function of (seed, i) only: photo i % len(photos), a square whose side is a random
    fraction `scale` of the photo's shorter side, at a random place, a random horizontal flip. So a
    small set of real photos gives many different training views, and a held-out set of crops from
    *other* photos measures how the model does on real pictures.
    """

    def __init__(self, photos: Sequence[np.ndarray], length: int, size: int, seed: int = 0,
                 scale: tuple[float, float] = (0.35, 1.0), flip: bool = True):
        if not photos:
            raise DataError("PhotoCrops got no photos; pass a list of uint8 HxWx3 arrays "
                            "(e.g. list(colorization.shipped_photos().values())).")
        if length < 1:
            raise DataError(f"PhotoCrops needs length >= 1, got {length}.")
        for image in photos:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise DataError(f"PhotoCrops needs uint8 HxWx3 photos, got {image.dtype} {image.shape}.")
        self.photos, self.length, self.size = list(photos), length, size
        self.seed, self.scale, self.flip = seed, scale, flip

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        if not 0 <= index < self.length:
            raise IndexError(f"crop {index} is out of range for PhotoCrops of length {self.length}")
        rng = np.random.default_rng([self.seed, index])
        photo = self.photos[index % len(self.photos)]
        h, w = photo.shape[:2]
        side = max(self.size // 2, int(min(h, w) * rng.uniform(*self.scale)))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(photo[top:top + side, left:left + side])
        crop = np.asarray(crop.resize((self.size, self.size), Image.BICUBIC if side < self.size else Image.LANCZOS))
        if self.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return torch.from_numpy(crop.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


# ----------------------------------------------------------------------------------------------
# Generator 1: ResNet18 encoder + DynamicUnet decoder


def resnet18_encoder(pretrained: bool = False, allow_download: bool = False) -> tuple[nn.Module, str]:
    """torchvision's ResNet18 with a 1-channel first convolution -> (resnet, which weights).

    pretrained=True loads the ImageNet weights from the torch hub cache (or downloads them, only
    with allow_download=True); the RGB filters of conv1 are summed over the input channels, so a
    grey image x gives the response the RGB network gave to (x, x, x) (fastai's create_body does
    the same for n_in=1). Without the file (or a failed download), or with pretrained=False, the
    weights are torchvision's random (Kaiming) initialisation, and the returned description says so.
    """
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    used = "random init (pretrained=False)"
    if pretrained:
        path = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
        state = None
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            used = f"ImageNet ({path.name}, from the torch hub cache)"
        elif allow_download:
            try:
                state = torch.hub.load_state_dict_from_url(RESNET18_URL, map_location="cpu", check_hash=True)
                used = f"ImageNet ({RESNET18_FILE}, downloaded)"
            except Exception as err:  # no network (e.g. a Kaggle kernel with internet off): say so, go on
                used = (f"random init: downloading {RESNET18_URL} failed ({type(err).__name__}: {err}); put the "
                        f"file at {path} to use ImageNet weights")
        else:
            used = (f"random init: ImageNet weights not found at {path} (put {RESNET18_URL} there, "
                    "or allow_download=True where there is internet)")
        if state is not None:
            net.load_state_dict(state)
    # 3-channel -> 1-channel stem: sum the pretrained filters over R, G, B.
    conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    with torch.no_grad():
        conv1.weight.copy_(net.conv1.weight.sum(dim=1, keepdim=True))
    net.conv1 = conv1
    net.avgpool, net.fc = nn.Identity(), nn.Identity()  # cut=-2: the classifier head is not used
    return net, used


def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ICNR init (Aitken et al. 2017) of a conv feeding PixelShuffle(scale): each group of scale^2
    output channels starts as copies of one Kaiming filter, so the shuffle starts out as nearest-
    neighbour upsampling of a normal conv and produces no checkerboard."""
    out_channels = weight.shape[0] // scale**2
    base = torch.empty(out_channels, *weight.shape[1:])
    nn.init.kaiming_normal_(base, nonlinearity="relu")
    with torch.no_grad():
        return weight.copy_(base.repeat_interleave(scale**2, dim=0))


def _conv_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    # fastai ConvLayer with norm_type=None (what DynamicUnet uses by default): conv with bias, ReLU.
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


class PixelShuffleUp(nn.Sequential):
    """x2 upsampling: 1x1 conv c_in -> 4 c_out, ReLU, PixelShuffle(2) (fastai's PixelShuffle_ICNR)."""

    def __init__(self, c_in: int, c_out: int):
        conv = nn.Conv2d(c_in, c_out * 4, 1)
        icnr_(conv.weight)
        nn.init.zeros_(conv.bias)
        super().__init__(conv, nn.ReLU(inplace=True), nn.PixelShuffle(2))


class DecoderBlock(nn.Module):
    """One U-Net decoder level (fastai's UnetBlock): upsample x to the skip's size with half its
    channels, BatchNorm the skip, concatenate, ReLU, two 3x3 convs."""

    def __init__(self, up_in: int, skip_in: int, out: int):
        super().__init__()
        self.up = PixelShuffleUp(up_in, up_in // 2)
        self.skip_norm = nn.BatchNorm2d(skip_in)
        self.convs = nn.Sequential(_conv_relu(up_in // 2 + skip_in, out), _conv_relu(out, out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.convs(F.relu(torch.cat([x, self.skip_norm(skip)], dim=1)))


class ResNetUNet(nn.Module):
    """U-Net generator with a ResNet18 encoder: L (N, 1, H, W) -> ab (N, 2, H, W); H, W multiples of 32.

    At 256 px, the encoder gives skips at 1/2 (stem, 64 ch), 1/4 (layer1, 64), 1/8 (layer2, 128),
    1/16 (layer3, 256) and its output at 1/32 (layer4, 512). The decoder mirrors fastai's
    DynamicUnet(body, 2, (256, 256)) as used by the tutorial:
        BN + ReLU, middle 512 -> 1024 -> 512
        up to 1/16, + layer3  -> 512      up to 1/8, + layer2 -> 384
        up to 1/4,  + layer1  -> 256      up to 1/2, + stem   -> 96 (halved: the last block)
        up to 1/1, concatenate the input L (97 ch), a residual block, a 1x1 conv to 2 channels.
    The output is linear (no tanh), as in the tutorial; lab_to_rgb clamps it to [-1, 1].
    `encoder_weights` says whether the encoder started from ImageNet or at random.
    """

    def __init__(self, pretrained: bool = False, allow_download: bool = False, out_channels: int = 2,
                 decoder_scale: float = 1.0):
        super().__init__()
        self.encoder, self.encoder_weights = resnet18_encoder(pretrained, allow_download)
        # decoder_scale < 1 narrows every decoder layer (not the encoder) for CPU runs; 1 is the tutorial's.
        c = {k: max(8, round(v * decoder_scale)) for k, v in dict(mid=1024, d4=512, d3=384, d2=256, d1=96).items()}
        self.middle = nn.Sequential(nn.BatchNorm2d(512), nn.ReLU(), _conv_relu(512, c["mid"]), _conv_relu(c["mid"], 512))
        self.up4 = DecoderBlock(512, 256, c["d4"])      # 1/32 -> 1/16, skip layer3
        self.up3 = DecoderBlock(c["d4"], 128, c["d3"])  # 1/16 -> 1/8,  skip layer2
        self.up2 = DecoderBlock(c["d3"], 64, c["d2"])   # 1/8  -> 1/4,  skip layer1
        self.up1 = DecoderBlock(c["d2"], 64, c["d1"])   # 1/4  -> 1/2,  skip stem (the last block halves: (128 + 64) / 2)
        self.up0 = PixelShuffleUp(c["d1"], c["d1"])     # 1/2  -> 1/1
        n = c["d1"] + 1                                 # + the input L ("last_cross")
        self.res = nn.Sequential(_conv_relu(n, n), nn.Conv2d(n, n, 3, padding=1))
        nn.init.kaiming_normal_(self.res[1].weight, nonlinearity="relu")
        nn.init.zeros_(self.res[1].bias)
        self.head = nn.Conv2d(n, out_channels, 1)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        _check_grey(L, 32, "ResNetUNet")
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(L)))         # (N, 64, H/2)
        s1 = e.layer1(e.maxpool(stem))           # (N, 64, H/4)
        s2 = e.layer2(s1)                        # (N, 128, H/8)
        s3 = e.layer3(s2)                        # (N, 256, H/16)
        x = self.middle(e.layer4(s3))            # (N, 512, H/32)
        x = self.up4(x, s3)
        x = self.up3(x, s2)
        x = self.up2(x, s1)
        x = self.up1(x, stem)
        x = torch.cat([self.up0(x), L], dim=1)   # (N, 97, H)
        x = F.relu(x + self.res(x))              # fastai ResBlock: ReLU(x + conv(conv(x)))
        return self.head(x)


def _check_grey(L: torch.Tensor, multiple: int, who: str) -> None:
    if L.dim() != 4 or L.shape[1] != 1:
        raise GanlibError(f"{who} takes the L channel as (N, 1, H, W), got {tuple(L.shape)}. "
                          "Get it with colorization.rgb_to_lab(rgb)[0].")
    h, w = L.shape[-2:]
    if h % multiple or w % multiple:
        raise GanlibError(f"{who} needs H and W divisible by {multiple}, got {h}x{w}. Pad the image "
                          f"(colorization.colorize(G, L) pads to a multiple of {multiple} and crops back).")


# ----------------------------------------------------------------------------------------------
# Generator 2: the pix2pix U-Net (the tutorial's baseline)


class UNetLevel(nn.Module):
    """One level of the pix2pix U-Net, built from the inside out: down (LeakyReLU, 4x4 stride-2 conv,
    BN), the inner levels, up (ReLU, 4x4 stride-2 transposed conv, BN, maybe dropout), and the skip:
    the level's input concatenated to its output (except the outermost level, which is the output)."""

    def __init__(self, outer: int, inner: int, submodule: nn.Module | None = None, in_channels: int | None = None,
                 dropout: bool = False, innermost: bool = False, outermost: bool = False):
        super().__init__()
        self.outermost = outermost
        in_channels = outer if in_channels is None else in_channels
        down = nn.Conv2d(in_channels, inner, 4, 2, 1, bias=False)  # BN follows: no bias
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1)       # to the output: keeps its bias
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), submodule,
                      nn.ReLU(True), up, nn.BatchNorm2d(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))  # pix2pix's only noise source, active at test time too
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], dim=1)


class UNetGenerator(nn.Module):
    """The pix2pix U-Net (junyanz's unet_256, the tutorial's Unet): L (N, 1, H, W) -> ab in [-1, 1].

    n_down stride-2 levels, so H and W must be multiples of 2^n_down (256 for n_down = 8, where the
    bottleneck is 1x1). Widths 64-128-256-512-512-...; the n_down - 5 levels just outside the
    innermost use dropout 0.5. Initialise with init_weights (N(0, 0.02)).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, n_down: int = 8, features: int = 64):
        super().__init__()
        if n_down < 5:
            raise GanlibError(f"UNetGenerator n_down={n_down}: use n_down >= 5 (8 for 256 px images).")
        self.n_down = n_down
        block = UNetLevel(features * 8, features * 8, innermost=True)
        for _ in range(n_down - 5):
            block = UNetLevel(features * 8, features * 8, block, dropout=True)
        width = features * 8
        for _ in range(3):
            block = UNetLevel(width // 2, width, block)
            width //= 2
        self.model = UNetLevel(out_channels, width, block, in_channels=in_channels, outermost=True)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        _check_grey(L, 2**self.n_down, "UNetGenerator")
        return self.model(L)


def size_multiple(G: nn.Module) -> int:
    """What H and W of G's input must be multiples of."""
    return 2**G.n_down if isinstance(G, UNetGenerator) else 32


# ----------------------------------------------------------------------------------------------
# Discriminator


class PatchDiscriminator(nn.Module):
    """PatchGAN: (L, ab) as 3 channels -> a map of logits, one per 70x70 patch.

    Conv4x4-(BN)-LeakyReLU(0.2) blocks: 3 -> 64 (stride 2, no norm), 128 (s2), 256 (s2), 512 (s1),
    then a 4x4 conv to 1 channel (no norm, no activation: the sigmoid is inside the loss). At 256 px:
    256 -> 128 -> 64 -> 32 -> 31 -> 30, a 30x30 logit map; each logit sees a 70x70 receptive field.
    """

    def __init__(self, in_channels: int = 3, features: int = 64, n_down: int = 3):
        super().__init__()
        layers = _d_block(in_channels, features, stride=2, norm=False)
        for i in range(n_down):
            layers += _d_block(features * 2**i, features * 2 ** (i + 1), stride=1 if i == n_down - 1 else 2)
        layers.append(nn.Conv2d(features * 2**n_down, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise GanlibError(f"PatchDiscriminator takes (N, {self.in_channels}, H, W) images, got "
                              f"{tuple(x.shape)}: concatenate L and ab with torch.cat([L, ab], dim=1).")
        return self.model(x)


def _d_block(c_in: int, c_out: int, stride: int, norm: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=not norm)]  # BN makes a bias redundant
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return layers + [nn.LeakyReLU(0.2, True)]


def receptive_field(D: PatchDiscriminator) -> int:
    """Side in pixels of the input patch one output logit sees: r <- r + (k - 1) * jump, jump *= stride."""
    r, jump = 1, 1
    for m in D.modules():
        if isinstance(m, nn.Conv2d):
            r += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return r


# pix2pix's init, as `model.apply(init_weights)`: conv weights ~ N(0, 0.02), biases 0, BatchNorm scale ~ N(1, 0.02):
# the DCGAN init, kept by pix2pix and by the tutorial the seed follows.
init_weights = dcgan_init_weights


# ----------------------------------------------------------------------------------------------
# Losses. x = L (the condition), y = true ab, G(x) = predicted ab, D(x, y) = logits per patch.


def l1_loss(fake_ab: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
    """L_L1(G) = E_{x,y} ||y - G(x)||_1, averaged over pixels and channels (stage 1's only loss)."""
    return F.l1_loss(fake_ab, real_ab)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))]: it minimises the BCE of every
    patch of a real pair labelled 1 and of a generated pair labelled 0, halved as in pix2pix (so D
    learns at half the rate of G)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def g_loss(fake_logits: torch.Tensor, fake_ab: torch.Tensor, real_ab: torch.Tensor,
           lambda_l1: float = 100.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G), with the non-saturating GAN term
    -E[log D(x, G(x))] (BCE of the fake patches labelled 1). Returns (total, gan term, L1 term)."""
    gan = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    l1 = l1_loss(fake_ab, real_ab)
    return gan + lambda_l1 * l1, gan, l1


# ----------------------------------------------------------------------------------------------
# Metrics (PSNR and SSIM in RGB are ganlib.metrics.psnr / ssim)


def mean_ab_error(fake_ab: torch.Tensor, real_ab: torch.Tensor) -> float:
    """Mean over pixels of the Euclidean distance in the (a*, b*) plane, in Lab units (0 = exact
    colours; 2.3 is about one just-noticeable difference). Inputs are the scaled ab (x 110 here)."""
    diff = (fake_ab.float().clamp(-1, 1) - real_ab.float()) * AB_SCALE
    return diff.pow(2).sum(dim=1).sqrt().mean().item()


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness of each image, RGB in [-1, 1] -> (N,).

    With R, G, B in [0, 255]: rg = R - G, yb = (R + G) / 2 - B,
    M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2).
    0 for a grey image; the paper's scale: 15 slightly, 33 moderately, 59 quite, 82 highly, 109 extremely colourful.
    """
    x = (_check_rgb(rgb).float().clamp(-1, 1) + 1) * 127.5
    if x.dim() == 3:
        x = x[None]
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    sigma = (rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False)).sqrt()
    mu = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    return sigma + 0.3 * mu


# ----------------------------------------------------------------------------------------------
# Inference at any size


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (N, C, H, W) on the bottom and right up to multiples of `multiple`; returns the
    padded tensor and the original (H, W) to crop back to. Reflection (not zeros) keeps the border
    statistics natural, so the network does not colour a black frame."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"  # reflect needs pad < size
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def colorize(G: nn.Module, L: torch.Tensor) -> torch.Tensor:
    """ab for L of any size: pad to what G needs, run it, crop back. (N, 1, H, W) -> (N, 2, H, W)."""
    padded, (h, w) = pad_to_multiple(L, size_multiple(G))
    return G(padded)[..., :h, :w]


def _photo_tensor(image: np.ndarray, who: str) -> torch.Tensor:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise GanlibError(f"{who} needs a uint8 HxW or HxWx3 image, got {image.dtype} {image.shape}; "
                          "load it with ganlib.data.load_rgb(path).")
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    if min(rgb.shape[:2]) < 16:
        raise GanlibError(f"{who}: the image is {rgb.shape[1]}x{rgb.shape[0]}, too small; use at least 16x16.")
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return ((rgb[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def grey_photo(image: np.ndarray) -> np.ndarray:
    """What the generator sees of a photo: its lightness L* as a grey uint8 HxW image."""
    L, _ = rgb_to_lab(_photo_tensor(image, "grey_photo"))
    return _to_uint8(grey_rgb(L))[..., 0]


def colorize_photo(G: nn.Module, image: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Colour a black-and-white (or colour, then greyed) photo at its own size -> uint8 HxWx3.

    `image`: uint8 HxW (grey) or HxWx3/4. Its L channel goes through G; the result is L + predicted ab.
    """
    rgb_t = _photo_tensor(image, "colorize_photo")
    L, _ = rgb_to_lab(rgb_t)
    was_training = G.training
    G.eval()
    ab = colorize(G, L.to(device)).cpu()
    G.train(was_training)
    return _to_uint8(lab_to_rgb(L, ab))


# ----------------------------------------------------------------------------------------------
# Benchmark hook for `python -m ganlib bench colorization`


def bench_setup(size, batch, dev, autocast, memory_format):
    """One stage-2 step (D update, then G update with GAN + L1) at the paper config: 256 px, batch 16."""
    from ganlib.bench import BenchSetup

    size, batch = size or PAPER["size"], batch or PAPER["batch_size"]
    G = ResNetUNet(pretrained=False).to(dev, memory_format=memory_format)
    D = PatchDiscriminator().to(dev, memory_format=memory_format)
    D.apply(init_weights)
    opt_G = torch.optim.Adam(G.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    opt_D = torch.optim.Adam(D.parameters(), lr=PAPER["lr"], betas=PAPER["betas"])
    L = torch.rand(batch, 1, size, size, device=dev).mul(2).sub(1).contiguous(memory_format=memory_format)
    ab = torch.rand(batch, 2, size, size, device=dev).sub(0.5).contiguous(memory_format=memory_format)

    def step():
        with autocast():
            fake = G(L)
            loss_D = d_loss(D(torch.cat([L, ab], 1)), D(torch.cat([L, fake.detach()], 1)))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        with autocast():
            loss_G = g_loss(D(torch.cat([L, fake], 1)), fake, ab, PAPER["lambda_l1"])[0]
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()

    return BenchSetup(step, [G, D], size, batch)
