"""Image-generation metrics: FID, KID, IS, improved precision/recall, LPIPS, PSNR, SSIM.

Every distribution metric works on features from an *extractor*, a tiny protocol so that the
Inception network (whose weights cannot be downloaded everywhere) can be swapped for a stand-in:

    an extractor is an nn.Module taking float images in [-1, 1], shape (N, 3, H, W) with any H, W
    (it resizes internally), and returning features of shape (N, D).
    Optionally it has `activations(images) -> list of (N, C, h, w)` maps, used by the LPIPS proxy.

Inception Score needs class probabilities instead, so it takes a separate `classifier` module
with the same input convention, returning logits (N, num_classes).

    extractor, name = available_extractor()          # Inception if its weights are here, else random
    real = extract_features(extractor, real_loader, limit=10_000)
    fake = extract_features(extractor, fake_images)
    fid(real, fake), kid(real, fake), precision_recall(real, fake)

The math is written out here (float64 numpy) rather than hidden behind a metric object; PSNR, SSIM
and the learned LPIPS come from torchmetrics.functional.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from ganlib.errors import DataError, GanlibError

# The 2015 TensorFlow Inception graph that FID and IS were defined with, ported to PyTorch by
# pytorch-fid; torch-fidelity ships the same weights under its own file name.
FID_WEIGHTS_NAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
# torchvision ImageNet backbones that torchmetrics' LPIPS loads (its linear heads ship with torchmetrics).
LPIPS_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}

Features = torch.Tensor | np.ndarray


# ----------------------------------------------------------------------------------------------
# Input checks


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Return `images` as float (N, 3, H, W) in [-1, 1], or raise a GanlibError saying how to fix them."""
    if not isinstance(images, torch.Tensor):
        raise GanlibError(f"{name} must be a torch.Tensor of shape (N, 3, H, W), got {type(images).__name__}.")
    if images.ndim == 3:
        raise GanlibError(f"{name} has shape {tuple(images.shape)}: add the batch dimension with images[None].")
    if images.ndim != 4 or images.shape[1] != 3:
        grayscale = images.ndim == 4 and images.shape[1] == 1
        hint = " Repeat grayscale to RGB with images.expand(-1, 3, -1, -1)." if grayscale else ""
        raise GanlibError(f"{name} must have shape (N, 3, H, W), got {tuple(images.shape)}.{hint}")
    if len(images) == 0:
        raise GanlibError(f"{name} has no images (shape {tuple(images.shape)}): pass at least one.")
    images = images.float()
    if not torch.isfinite(images).all():
        raise GanlibError(f"{name} contain NaN or inf values: the generator diverged; "
                          "evaluate an earlier checkpoint.")
    low, high = images.min().item(), images.max().item()
    # A little slack for resampling overshoot in data pipelines; beyond it the range is wrong.
    if low < -1.01 or high > 1.01:
        fix = "x / 127.5 - 1" if high > 2 else "x * 2 - 1" if low >= 0 else "torch.tanh or a clamp"
        raise GanlibError(f"{name} must be in [-1, 1], got values in [{low:.3g}, {high:.3g}]; convert with {fix}.")
    return images.clamp(-1, 1)


def _as_float64(features: Features, name: str) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise GanlibError(f"{name} must be a (N, D) feature matrix, got shape {array.shape}; "
                          "use extract_features().")
    if not np.isfinite(array).all():
        raise GanlibError(f"{name} contain NaN or inf: the images fed to the extractor were not finite.")
    return array


def _check_pair(real: np.ndarray, fake: np.ndarray, min_n: int) -> None:
    if real.shape[1] != fake.shape[1]:
        raise GanlibError(
            f"real and fake features have different sizes ({real.shape[1]} vs {fake.shape[1]}): "
            "extract both with the same extractor."
        )
    for name, array in (("real", real), ("fake", fake)):
        if len(array) < min_n:
            raise GanlibError(f"{name} has {len(array)} samples, this metric needs at least {min_n}: "
                              "pass more images.")


# ----------------------------------------------------------------------------------------------
# Extractors


def resize_like_pil(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic resize to (size, size) matching PIL's Image.resize(BICUBIC), the clean-fid protocol.

    torch's antialiased bicubic uses PIL's kernel (a = -0.5) and widens it when downsampling as PIL
    does; plain F.interpolate bicubic aliases when downsampling (Parmar et al. 2022: resizing moves FID).
    """
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True)


class _TFPoolBranch:
    """Mixin for torchvision's Inception blocks: recompute the pool branch as the 2015 TF graph does.

    The FID graph differs from torchvision's InceptionV3 only there: its 3x3 average pool ignores
    the zero padding, and the last block (Mixed_7c) max-pools instead. The pool branch is the last
    output of torchvision's `_forward`, so we replace that one entry.
    """

    pool = "avg"

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = super()._forward(x)
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        outputs[-1] = self.branch_pool(pooled)
        return outputs


def _fid_inception_v3() -> nn.Module:
    """torchvision's Inception3 patched into the FID graph: 1008 classes, no aux head, TF pooling."""
    from torchvision.models import inception as tv

    class TFInceptionA(_TFPoolBranch, tv.InceptionA):
        pass

    class TFInceptionC(_TFPoolBranch, tv.InceptionC):
        pass

    class TFInceptionE(_TFPoolBranch, tv.InceptionE):
        pass

    blocks = [tv.BasicConv2d, TFInceptionA, tv.InceptionB, TFInceptionC, tv.InceptionD, TFInceptionE,
              tv.InceptionAux]
    # Random init would draw from (and so shift) the caller's global RNG; the weights get replaced anyway.
    with torch.random.fork_rng(devices=[]):
        net = tv.Inception3(num_classes=1008, aux_logits=False, inception_blocks=blocks, init_weights=False)
    net.Mixed_7c.pool = "max"
    return net


class InceptionFID(nn.Module):
    """InceptionV3 of the FID/IS papers: pool3 features (N, 2048) or the 1008 class logits.

    Input protocol: images in [-1, 1] -> bicubic resize to 299 like PIL -> the graph's own input
    scaling (uint8 - 128) / 128. Images are not quantized to uint8 first (clean-fid does that).
    """

    def __init__(self, state_dict: dict, output: str = "pool3", name: str = "inception-v3-fid"):
        super().__init__()
        if output not in ("pool3", "logits"):
            raise ValueError(f"output must be 'pool3' or 'logits', got {output!r}")
        self.net = _fid_inception_v3()
        self.net.load_state_dict(state_dict)
        self.output, self.name = output, f"{name}-{output}"
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_like_pil(images.float(), 299).clamp(-1, 1)
        x = ((x + 1) * 127.5 - 128) / 128  # the TF graph's input scaling of uint8 pixels
        net = self.net
        for layer in (net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.maxpool1,
                      net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.maxpool2,
                      net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c,
                      net.Mixed_6d, net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c):
            x = layer(x)
        pool3 = x.mean(dim=(2, 3))  # (N, 2048)
        return pool3 if self.output == "pool3" else net.fc(pool3)


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_inception_weights(weights_path: str | Path | None = None) -> Path:
    """Path of the FID Inception weights: `weights_path`, else the torch hub cache; GanlibError if absent."""
    if weights_path is not None:
        candidates = [Path(weights_path).expanduser()]
    else:
        candidates = [_hub_checkpoints() / name for name in FID_WEIGHTS_NAMES]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise GanlibError(
        f"InceptionV3 FID weights not found (looked at: {looked}). On a machine with internet, download "
        f"{FID_WEIGHTS_URL} and put it at {_hub_checkpoints() / FID_WEIGHTS_NAMES[0]} "
        "(or pass weights_path=... to its location, e.g. a Kaggle input dataset). Without it use "
        "random_extractor(), whose numbers are not comparable with papers."
    )


def _load_inception(weights_path, output: str) -> InceptionFID:
    path = find_inception_weights(weights_path)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    try:
        return InceptionFID(state_dict, output=output)
    except RuntimeError as error:  # load_state_dict: missing or unexpected keys, wrong shapes
        raise GanlibError(
            f"{path} is not the FID Inception state dict ({str(error).splitlines()[0]}). "
            f"Use {FID_WEIGHTS_NAMES[0]} from {FID_WEIGHTS_URL}."
        ) from error


def inception_extractor(weights_path: str | Path | None = None) -> InceptionFID:
    """The reference FID extractor: InceptionV3 pool3 features (N, 2048) from the 2015 TF weights.

    Looks for pt_inception-2015-12-05-6726825d.pth at `weights_path` or in the torch hub cache
    (<torch.hub.get_dir()>/checkpoints/). Never downloads; raises GanlibError saying where to put it.
    Even with these weights, numbers match papers only at their sample counts (50k for FID).
    """
    return _load_inception(weights_path, "pool3")


def inception_classifier(weights_path: str | Path | None = None) -> InceptionFID:
    """The Inception Score classifier: the same network returning its 1008 ImageNet logits."""
    return _load_inception(weights_path, "logits")


class RandomConvExtractor(nn.Module):
    """A small conv net with fixed random weights: images -> (N, dim) global-average-pooled features.

    Four 3x3 stride-2 convs with leaky ReLU on a 64x64 bicubic resize; He-scaled Gaussian weights
    drawn from `seed` only (the global RNG is untouched), so the same seed gives the same features
    on any machine. Random conv features are a known reasonable proxy for comparing models
    (Naeem et al. 2020 evaluate precision/recall on random embeddings), but numbers are NOT
    comparable with papers, nor across seeds or dims: compare runs only under the same extractor.
    """

    def __init__(self, seed: int = 0, dim: int = 256, size: int = 64):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        channels = (3, 32, 64, 128, dim)
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            std = math.sqrt(2 / (c_in * 9))  # He init keeps activations O(1) through the stack
            self.register_buffer(f"weight{i}", torch.randn(c_out, c_in, 3, 3, generator=generator) * std)
        self.depth, self.size = len(channels) - 1, size
        self.name = f"random-conv-seed{seed}-dim{dim}"
        self.eval()

    def activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each conv: (N, 32, 32, 32), (N, 64, 16, 16), (N, 128, 8, 8), (N, dim, 4, 4)."""
        x = resize_like_pil(images.float(), self.size)
        maps = []
        for i in range(self.depth):
            x = F.leaky_relu(F.conv2d(x, getattr(self, f"weight{i}"), stride=2, padding=1), 0.2)
            maps.append(x)
        return maps

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activations(images)[-1].mean(dim=(2, 3))


def random_extractor(seed: int = 0, dim: int = 256) -> RandomConvExtractor:
    """A fixed random-weight conv extractor, deterministic by seed. Numbers are NOT comparable with papers."""
    return RandomConvExtractor(seed=seed, dim=dim)


def available_extractor(weights_path: str | Path | None = None) -> tuple[nn.Module, str]:
    """(extractor, name): Inception if its weights are found, else random_extractor(); prints which."""
    try:
        extractor = inception_extractor(weights_path)
        print(f"metrics: using {extractor.name} (paper-comparable at paper sample counts)")
    except GanlibError as error:
        extractor = random_extractor()
        print(f"metrics: Inception weights unavailable, using {extractor.name}; numbers are NOT comparable "
              f"with papers, only between runs. ({error})")
    return extractor, extractor.name


def _module_device(module: nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _image_batches(images_or_iterable, batch_size: int) -> Iterable[torch.Tensor]:
    """Yield image tensors from a tensor (split into batches) or an iterable of batches."""
    if isinstance(images_or_iterable, torch.Tensor):
        yield from images_or_iterable.split(batch_size)
        return
    for batch in images_or_iterable:
        if isinstance(batch, (tuple, list)):  # (images, labels) from a DataLoader
            batch = batch[0]
        if isinstance(batch, dict):
            raise DataError(
                f"got a dict batch with keys {sorted(batch)}: pick the images, e.g. "
                "(batch['image'] for batch in loader)."
            )
        if isinstance(batch, torch.Tensor) and batch.ndim == 3:
            batch = batch[None]  # a dataset yielding single images
        yield batch


@torch.no_grad()
def extract_features(extractor: nn.Module, images_or_iterable, batch_size: int = 64,
                     device: str | torch.device | None = None, limit: int | None = None) -> torch.Tensor:
    """Run `extractor` over images -> float32 CPU tensor (N, D).

    `images_or_iterable`: a (N, 3, H, W) tensor in [-1, 1], or an iterable of such batches, of
    (images, labels) tuples (a DataLoader), or of single (3, H, W) images. `limit` stops after that
    many images. `device` moves the extractor there (default: where it already is).
    """
    device = torch.device(device) if device is not None else _module_device(extractor)
    extractor = extractor.to(device).eval()
    features, count = [], 0
    for batch in _image_batches(images_or_iterable, batch_size):
        if limit is not None and count >= limit:
            break
        batch = check_images(batch)
        if limit is not None:
            batch = batch[: limit - count]
        features.append(extractor(batch.to(device)).float().cpu())
        count += len(batch)
    if not features:
        raise DataError("extract_features got no images: the tensor or loader is empty.")
    return torch.cat(features)


# ----------------------------------------------------------------------------------------------
# Distribution metrics on features


def feature_statistics(features: Features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of (N, D) features in float64; covariance unbiased (divides by N - 1)."""
    array = _as_float64(features, "features")
    if len(array) < 2:
        raise GanlibError(f"need at least 2 samples for a covariance, got {len(array)}.")
    return array.mean(axis=0), np.cov(array, rowvar=False).reshape(array.shape[1], array.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    If sqrtm fails on a singular product (fewer samples than dimensions), eps * I is added to both
    covariances, as pytorch-fid does.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    # d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # S1 S2 has real non-negative eigenvalues; imaginary parts are round-off unless N is tiny.
        if np.abs(covmean.imag).max() > 1e-3 * max(1.0, np.abs(covmean.real).max()):
            warnings.warn("FID: sqrtm(S1 S2) has a large imaginary part; the covariances are too "
                          "degenerate (use more samples than feature dimensions).", stacklevel=2)
        covmean = covmean.real
    return mean_term + float(np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(real_features: Features, fake_features: Features) -> float:
    """Frechet Inception Distance (Heusel et al. 2017): Gaussian fits of real vs fake features.

    Lower is better, 0 for identical statistics. Fails: it is biased upward at small N (FID at 1k
    samples is far above FID at 50k for the same model), so compare only at equal N and use >5k
    (papers: 50k) samples for paper-comparable numbers, with the Inception extractor; the Gaussian
    fit ignores everything beyond second moments; with N < D the covariances are singular.
    """
    real, fake = _as_float64(real_features, "real_features"), _as_float64(fake_features, "fake_features")
    _check_pair(real, fake, min_n=2)
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3, the KID kernel (d = feature dimension)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size samples x, y (m rows each) under the polynomial kernel."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    # MMD^2_u = sum_{i!=j} k(x_i,x_j) / m(m-1) + sum_{i!=j} k(y_i,y_j) / m(m-1) - 2 sum_{i,j} k(x_i,y_j) / m^2
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(xx + yy - 2 * k_xy.mean())


def kid(real_features: Features, fake_features: Features, n_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018) -> (mean, std) over random subsets.

    Unbiased MMD^2 with the cubic polynomial kernel, averaged over `n_subsets` subsets of
    `subset_size` samples drawn without replacement from each set (capped at the smaller set).
    Unlike FID it is unbiased, so small-N values are comparable in expectation; it can be slightly
    negative when the sets match. Fails: high variance with few samples (read the std), and like
    FID it only sees what the extractor's features see.
    """
    real, fake = _as_float64(real_features, "real_features"), _as_float64(fake_features, "fake_features")
    _check_pair(real, fake, min_n=2)
    m = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(real[rng.choice(len(real), m, replace=False)],
                            fake[rng.choice(len(fake), m, replace=False)]) for _ in range(n_subsets)]
    return float(np.mean(values)), float(np.std(values))


def inception_score(logits: Features, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) -> (mean, std) over `splits` contiguous splits.

    IS = exp(E_x KL(p(y|x) || p(y))): high when each image is confidently one class and the
    classes are diverse. Ranges from 1 to the number of classes. Fails: it ignores the real data
    entirely (a model reproducing one perfect image per class scores the maximum), it is only
    meaningful for the classifier's label set (ImageNet for Inception: not for faces, watches or
    street scenes), and it depends on the split size.
    """
    logits = torch.as_tensor(_as_float64(logits, "logits"))
    if len(logits) < splits:
        raise GanlibError(f"inception_score got {len(logits)} samples for {splits} splits: "
                          "pass more samples or lower splits.")
    scores = []
    for part in logits.tensor_split(splits):
        log_p_yx = part.log_softmax(dim=1)                                  # log p(y|x)
        log_p_y = torch.logsumexp(log_p_yx, dim=0) - math.log(len(part))   # log p(y) = log mean_x p(y|x)
        kl = (log_p_yx.exp() * (log_p_yx - log_p_y)).sum(dim=1)            # KL(p(y|x) || p(y)) per image
        scores.append(kl.mean().exp().item())                               # exp(E_x KL)
    return float(np.mean(scores)), float(np.std(scores))


def _kth_neighbour_radii(features: torch.Tensor, k: int, block: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the row itself is at distance 0)."""
    radii = [torch.cdist(rows, features).kthvalue(k + 1, dim=1).values for rows in features.split(block)]
    return torch.cat(radii)


def _fraction_inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int) -> float:
    """Fraction of queries inside at least one ball (centre_i, radius_i)."""
    inside = [(torch.cdist(rows, centres) <= radii[None]).any(dim=1) for rows in queries.split(block)]
    return torch.cat(inside).double().mean().item()


def precision_recall(real_features: Features, fake_features: Features, k: int = 3,
                     block: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) -> (precision, recall).

    Each set's manifold is the union of balls around its samples, radius = distance to the k-th
    nearest neighbour in the same set. Precision = fraction of fakes inside the real manifold
    (fidelity); recall = fraction of reals inside the fake manifold (coverage). Precision high +
    recall low = mode collapse; low precision = off-manifold samples. Fails: a few outliers grow
    huge balls that inflate the other set's score, and values depend on k and N (paper: k=3, 50k).
    """
    real = torch.as_tensor(_as_float64(real_features, "real_features"))
    fake = torch.as_tensor(_as_float64(fake_features, "fake_features"))
    _check_pair(real.numpy(), fake.numpy(), min_n=k + 1)
    real_radii, fake_radii = _kth_neighbour_radii(real, k, block), _kth_neighbour_radii(fake, k, block)
    precision = _fraction_inside(fake, real, real_radii, block)
    recall = _fraction_inside(real, fake, fake_radii, block)
    return precision, recall


# ----------------------------------------------------------------------------------------------
# Paired image metrics


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (compared in [0, 1], data_range=1).

    PSNR = 10 log10(1 / MSE) per image, averaged over the batch; inf when an image pair is
    identical. Fails: pixel-wise, so a plausible but shifted output (what GANs produce) scores
    worse than a blurry average: report it next to a perceptual metric.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    x01, y01 = (check_images(x, "x") + 1) / 2, (check_images(y, "y") + 1) / 2
    _check_same_shape(x01, y01)
    return peak_signal_noise_ratio(x01, y01, data_range=1.0, dim=(1, 2, 3)).item()


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Structural similarity (Wang et al. 2004) of images in [-1, 1], in [0, 1] with data_range=1.

    1 for identical images; 11x11 Gaussian window, so images must be at least 11 pixels a side.
    Fails: like PSNR it rewards blur over plausible detail that is not pixel-aligned.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    x01, y01 = (check_images(x, "x") + 1) / 2, (check_images(y, "y") + 1) / 2
    _check_same_shape(x01, y01)
    if min(x01.shape[-2:]) < 11:
        raise GanlibError(f"ssim needs images of at least 11x11 pixels, got {tuple(x01.shape[-2:])}: "
                          "upsample first.")
    return structural_similarity_index_measure(x01, y01, data_range=1.0).item()


def _check_same_shape(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise GanlibError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}.")


def lpips_weights_available(net: str = "alex") -> bool:
    """Whether torchvision's ImageNet backbone for learned LPIPS is in the torch hub cache."""
    return (_hub_checkpoints() / LPIPS_BACKBONE_FILES[net]).is_file()


_PROXY_EXTRACTOR: RandomConvExtractor | None = None


def _proxy_extractor() -> RandomConvExtractor:
    global _PROXY_EXTRACTOR
    if _PROXY_EXTRACTOR is None:
        _PROXY_EXTRACTOR = random_extractor(seed=0)
    return _PROXY_EXTRACTOR


def feature_distance(x: torch.Tensor, y: torch.Tensor, extractor: nn.Module) -> torch.Tensor:
    """LPIPS-like proxy (N,): unweighted LPIPS on the extractor's intermediate activations.

    d(x, y) = sum_l mean_hw || f_l(x)_hw / |f_l(x)_hw| - f_l(y)_hw / |f_l(y)_hw| ||^2, i.e. LPIPS
    with all linear weights 1 (Zhang et al. 2018's "baseline"). Same ordering intuition, different
    scale: not comparable with published LPIPS values.
    """
    if not hasattr(extractor, "activations"):
        raise GanlibError(f"{type(extractor).__name__} has no activations() method; pass random_extractor() "
                          "or a module with activations(images) -> list of (N, C, h, w) maps.")
    distance = 0
    for fx, fy in zip(extractor.activations(x), extractor.activations(y)):
        fx = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)  # unit-normalize channels at each position
        fy = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
        distance = distance + (fx - fy).pow(2).sum(dim=1).mean(dim=(1, 2))
    return distance


@torch.no_grad()
def lpips_distance(x: torch.Tensor, y: torch.Tensor, net: str | nn.Module | None = None) -> torch.Tensor:
    """Perceptual distance per image pair (N,) of images in [-1, 1]; lower = more similar.

    net=None: learned LPIPS (AlexNet, Zhang et al. 2018, via torchmetrics) when torchvision's
    AlexNet weights are in the torch hub cache, otherwise the LPIPS-like proxy feature_distance()
    on random_extractor(), with a warning: proxy values are not comparable with published LPIPS.
    net='alex' | 'vgg' | 'squeeze': learned LPIPS with that backbone (GanlibError if its weights
    are missing). net=<module with activations()>: the proxy on that extractor.
    """
    x, y = check_images(x, "x"), check_images(y, "y")
    _check_same_shape(x, y)
    if net is None:
        if lpips_weights_available("alex"):
            net = "alex"
        else:
            warnings.warn("lpips_distance: AlexNet weights not in the torch hub cache; using the LPIPS-like "
                          "random-feature proxy (values not comparable with published LPIPS).", stacklevel=2)
            net = _proxy_extractor()
    if isinstance(net, str):
        from torchmetrics.functional.image import learned_perceptual_image_patch_similarity

        if net not in LPIPS_BACKBONE_FILES:
            raise GanlibError(f"net must be one of {sorted(LPIPS_BACKBONE_FILES)} or an extractor module, "
                              f"got {net!r}.")
        if not lpips_weights_available(net):
            raise GanlibError(
                f"LPIPS-{net} needs torchvision's {LPIPS_BACKBONE_FILES[net]} in {_hub_checkpoints()}: copy it "
                "there from a machine with internet (download.pytorch.org/models/), "
                "or pass net=None for the proxy."
            )
        return learned_perceptual_image_patch_similarity(x, y, net_type=net, reduction="none").reshape(len(x))
    net = net.to(x.device).eval()
    return feature_distance(x, y, net)


def lpips_diversity(images: torch.Tensor, n_pairs: int = 100, seed: int = 0,
                    net: str | nn.Module | None = None, batch_size: int = 32) -> float:
    """Mean lpips_distance over `n_pairs` random pairs (i != j) of `images`: sample diversity.

    Used for multimodal translation (BicycleGAN-style): outputs for one input should differ.
    Higher = more diverse; 0 = collapsed to one output. Fails: noise also scores as diversity,
    so read it next to a fidelity metric.
    """
    images = check_images(images)
    if len(images) < 2:
        raise GanlibError(f"lpips_diversity needs at least 2 images, got {len(images)}.")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(images), n_pairs)
    second = (first + rng.integers(1, len(images), n_pairs)) % len(images)  # never equal to first
    distances = [lpips_distance(images[a], images[b], net=net)
                 for a, b in zip(np.array_split(first, math.ceil(n_pairs / batch_size)),
                                 np.array_split(second, math.ceil(n_pairs / batch_size)))]
    return torch.cat(distances).mean().item()


# ----------------------------------------------------------------------------------------------
# Everything at once


@torch.no_grad()
def evaluate_generator(sample_fn: Callable[[int], torch.Tensor], real_images, n: int, extractor: nn.Module,
                       classifier: nn.Module | None = None, batch_size: int = 64,
                       device: str | torch.device | None = None, k: int = 3, kid_subsets: int = 100,
                       kid_subset_size: int = 1000, is_splits: int = 10, seed: int = 0) -> dict:
    """FID, KID, precision/recall (and IS if `classifier` is given) of `n` generated vs `n` real images.

    `sample_fn(batch_size)` returns generated images (B, 3, H, W) in [-1, 1]; it runs under
    no_grad with the global RNG seeded by `seed` (and restored afterwards), so repeated
    evaluations of one generator see the same latents. `real_images`: tensor or loader.
    Returns {fid, kid_mean, kid_std, precision, recall, [is_mean, is_std,] n_real, n_fake}.
    """
    device = torch.device(device) if device is not None else _module_device(extractor)
    real = extract_features(extractor, real_images, batch_size, device, limit=n)
    fake, logits = [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        if classifier is not None:
            classifier = classifier.to(device).eval()
        produced = 0
        while produced < n:
            images = check_images(sample_fn(min(batch_size, n - produced)), "sample_fn output").to(device)
            fake.append(extractor(images).float().cpu())
            if classifier is not None:
                logits.append(classifier(images).float().cpu())
            produced += len(images)
    fake = torch.cat(fake)[:n]
    precision, recall = precision_recall(real, fake, k=k)
    kid_mean, kid_std = kid(real, fake, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    results = {"fid": fid(real, fake), "kid_mean": kid_mean, "kid_std": kid_std,
               "precision": precision, "recall": recall}
    if classifier is not None:
        results["is_mean"], results["is_std"] = inception_score(torch.cat(logits)[:n], splits=is_splits)
    results.update(n_real=len(real), n_fake=len(fake))
    return results
