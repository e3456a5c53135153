"""Domain Transfer Network: Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation" (ICLR 2017).

Given two unpaired domains, a source S and a target T, and a fixed function f that accepts images of
both, DTN learns G: S -> T such that f(G(x)) = f(x). G is built around f itself: G = g o f, where f is
the frozen feature extractor and g a generator that draws a target-domain image from f's features.
The generator loss has four parts (equations of section 3 of the paper, each beside its code below):

    L_G = L_GANG + alpha L_CONST + beta L_TID + gamma L_TV

* L_GANG: a ternary discriminator D tells apart g(f(x)) for x in S (class 1 of the paper), g(f(x)) for
  x in T (class 2) and real target images (class 3); G wants both kinds of output labelled class 3.
* L_CONST (f-constancy): f(G(x)) stays close to f(x) for x in S. This is what carries the identity over.
* L_TID (target identity): G maps a target image to itself, so g learns to draw T from f's features.
* L_TV: total variation, a smoothness prior (faces only).

Two configurations, as in the paper:

* digits (SVHN -> MNIST in the paper; here PrintedDigits -> HandwrittenDigits, both embedded): f is a
  four-layer conv net (64, 128, 256, 128 filters, max-pool, ReLU; tanh on the 128-d representation) trained
  as a digit classifier on the labelled source; g has four transposed-conv blocks (BatchNorm, ReLU, tanh at the end) to 32x32
  grey images; D has four batch-normalised conv layers. alpha = beta = 15, gamma = 0.
* faces (photos -> emoji; the seed used CelebA-HQ -> Bitmoji): f is a frozen face-embedding network
  (FaceNet's InceptionResnetV1 trained on VGGFace2, 512-d, standing in for the paper's DeepFace);
  g has five up-blocks to 64x64 with a 1x1 conv after each of the first four (9 conv layers, "adding
  1x1 convolution to each block resulted in lower L_CONST training errors"); D sees 152x152 (the 64x64
  emoji upscaled bilinearly) through six stride-2 blocks and a 3-way head. alpha = 100, beta = 1,
  gamma = 0.05.

Losses use means over the batch (and over elements for the squared distances), where the paper writes
sums over the training set: the same minimiser, and weights that do not depend on the batch size.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import GanlibError

# D's three classes (the paper's D_1, D_2, D_3), as cross-entropy targets.
FAKE_FROM_SOURCE, FAKE_FROM_TARGET, REAL_TARGET = 0, 1, 2

# Section 5 of the paper. lr and betas: the DCGAN recipe the paper follows for its networks.
PAPER_DIGITS = dict(alpha=15.0, beta=15.0, gamma=0.0, feature_dim=128, image_size=32, lr=2e-4, betas=(0.5, 0.999))
PAPER_FACES = dict(alpha=100.0, beta=1.0, gamma=0.05, embedding_dim=512, output_size=64, d_size=152, f_size=160,
                   lr=2e-4, betas=(0.5, 0.999))

# g updates per D update. The paper does not say; the public TensorFlow reference implementation
# (yunjey/domain-transfer-network) updates g twice, and with one update D wins on the embedded digits (see the notebook).
G_UPDATES_PER_D = 2

# Table 1 of the paper: accuracy (%) of an MNIST classifier on SVHN test images transferred by each variant.
PAPER_ACCURACY = {
    "DTN": 90.66,
    "DTN without L_TID": 88.40,
    "DTN without L_CONST": 74.55,
    "DTN without L_CONST and L_TID": 5.28,
    "original SVHN images (no transfer)": 40.06,
}

# The file facenet-pytorch writes into torch's hub cache when it downloads the VGGFace2 weights.
FACENET_VGGFACE2_FILE = "20180402-114759-vggface2.pt"


def _check_images(images: torch.Tensor, channels: int, size: int, who: str) -> None:
    if images.dim() != 4 or images.shape[1] != channels or tuple(images.shape[2:]) != (size, size):
        raise ValueError(f"{who} got a tensor of shape {tuple(images.shape)}; expected (N, {channels}, {size}, "
                         f"{size}). Resize with ganlib.dtn.resize(images, {size}).")


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a batch to size x size (the paper upscales g's 64x64 output to 152x152 this way);
    antialiased when shrinking. A no-op when the batch is already that size."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    shrinking = images.shape[-1] > size or images.shape[-2] > size
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


# ---------------------------------------------------------------------------------------------------------
# Digits: f, g and D (section 5.1)
# ---------------------------------------------------------------------------------------------------------

class DigitEncoder(nn.Module):
    """f for digits: 32x32 images -> 128-d features, plus a linear head for the 10 digit classes.

    (3, 32x32) -> conv 64 -> pool (16x16) -> conv 128 -> pool (8x8) -> conv 256 -> pool (4x4)
    -> 4x4 conv 128 (1x1) -> tanh -> f(x) in [-1, 1]^128 -> linear -> 10 logits (only to train f).

    The first three convs use ReLU, as the paper says. The representation f(x) goes through tanh, as in the
    public TensorFlow reference implementation (yunjey/domain-transfer-network): with unbounded ReLU features
    a classifier's f(x) reaches squared distances ~50, so alpha * L_CONST (alpha = 15) drowns L_GANG and L_TID,
    and g learns high-frequency patterns that reproduce f's features (adversarial examples for f) instead of
    digits. Bounded features keep the weights of the paper in balance.
    f(x) is the representation before the classifier: it has to say which digit it is (L_CONST keeps it
    fixed), and it is all g sees. The same architecture with in_channels=1 is the target-domain classifier
    that scores the transfer.
    """

    def __init__(self, in_channels: int = 3, widths=(64, 128, 256, 128), n_classes: int = 10):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.in_channels, self.feature_dim = in_channels, c4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 32 -> 16
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 16 -> 8
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 8 -> 4
            nn.Conv2d(c3, c4, 4), nn.Tanh(),  # 4 -> 1: the 128-d representation, bounded
            nn.Flatten(),
        )
        self.classifier = nn.Linear(c4, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """f(x): (N, in_channels, 32, 32) -> (N, 128)."""
        _check_images(images, self.in_channels, 32, "DigitEncoder")
        return self.body(images)

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Digit logits (N, 10): how f is trained on the labelled source domain."""
        return self.classifier(self(images))


class DigitGenerator(nn.Module):
    """g for digits: f's 128-d features -> a 32x32 grey image in [-1, 1].

    Four blocks of transposed convolution, BatchNorm and ReLU (the last block ends in tanh instead):
    128 (1x1) -> 512 (4x4) -> 256 (8x8) -> 128 (16x16) -> 1 (32x32).
    """

    def __init__(self, feature_dim: int = 128, out_channels: int = 1, features: int = 64):
        super().__init__()
        self.feature_dim, self.out_channels = feature_dim, out_channels
        w = features
        # No conv bias before BatchNorm: BN subtracts any constant anyway.
        self.main = nn.Sequential(
            nn.ConvTranspose2d(feature_dim, 8 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),  # 16x16
            nn.ConvTranspose2d(2 * w, out_channels, 4, 2, 1), nn.Tanh(),  # 32x32
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"DigitGenerator got features of shape {tuple(features.shape)}; expected "
                             f"(N, {self.feature_dim}), the output of f.")
        return self.main(features[:, :, None, None])


class DigitDiscriminator(nn.Module):
    """D for digits: a 32x32 image -> 3 logits (fake from source, fake from target, real target).

    Four batch-normalised conv layers with ReLU, as the paper says (a DCGAN discriminator would use
    LeakyReLU and no BatchNorm on the input layer): 32 -> 16 -> 8 -> 4, then a 4x4 conv to the 3 classes.
    """

    def __init__(self, in_channels: int = 1, features: int = 64, n_classes: int = 3):
        super().__init__()
        self.in_channels = in_channels
        w = features
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),  # 16x16
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),  # 8x8
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True),  # 4x4
            nn.Conv2d(4 * w, n_classes, 4, 1, 0),  # 1x1: the ternary head
            nn.Flatten(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.in_channels, 32, "DigitDiscriminator")
        return self.main(images)


# ---------------------------------------------------------------------------------------------------------
# Faces: g and D (section 5.2); f is a face-embedding network
# ---------------------------------------------------------------------------------------------------------

class FaceGenerator(nn.Module):
    """g for faces: a 512-d face embedding -> a 64x64 RGB emoji in [-1, 1].

    Five up-blocks (transposed conv, BatchNorm, ReLU): 1 -> 4 -> 8 -> 16 -> 32 -> 64, widths 8w, 4w, 2w, w, 3.
    Each of the first four is followed by a 1x1 conv (BatchNorm, ReLU): 9 conv layers in all, as the paper's g.
    """

    def __init__(self, embedding_dim: int = 512, out_channels: int = 3, features: int = 64):
        super().__init__()
        self.embedding_dim = embedding_dim
        widths = [8 * features, 4 * features, 2 * features, features]
        layers, c_in = [], embedding_dim
        for i, c in enumerate(widths):
            stride, padding = (1, 0) if i == 0 else (2, 1)  # 1x1 -> 4x4, then each block doubles
            layers += [nn.ConvTranspose2d(c_in, c, 4, stride, padding, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
                       nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]  # the 1x1 conv
            c_in = c
        layers += [nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()]  # fifth block: 32 -> 64, tanh
        self.main = nn.Sequential(*layers)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        if embedding.dim() != 2 or embedding.shape[1] != self.embedding_dim:
            raise ValueError(f"FaceGenerator got an embedding of shape {tuple(embedding.shape)}; expected "
                             f"(N, {self.embedding_dim}), the output of the face encoder f.")
        return self.main(embedding[:, :, None, None])


class FaceDiscriminator(nn.Module):
    """D for faces: a 152x152 RGB image -> 3 logits.

    Six blocks of stride-2 4x4 conv, BatchNorm and LeakyReLU(0.2): 152 -> 76 -> 38 -> 19 -> 9 -> 4 -> 2,
    widths w, 2w, 4w, 8w, 8w, 8w; then a 2x2 conv to the 3 classes. g's 64x64 outputs and the 64x64 target
    images are both upscaled to 152 before D (ganlib.dtn.resize), so D cannot tell them apart by resolution.
    """

    def __init__(self, in_channels: int = 3, features: int = 64, input_size: int = 152, n_classes: int = 3):
        super().__init__()
        self.in_channels, self.input_size = in_channels, input_size
        widths = [features, 2 * features, 4 * features, 8 * features, 8 * features, 8 * features]
        layers, c_in, side = [], in_channels, input_size
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True)]
            c_in, side = c, side // 2  # (s + 2 - 4) // 2 + 1 = s // 2
        if side < 1:
            raise ValueError(f"FaceDiscriminator input_size={input_size} is too small for six stride-2 blocks; "
                             "use at least 64 (the paper: 152).")
        layers += [nn.Conv2d(c_in, n_classes, side), nn.Flatten()]  # side x side -> 1x1: the ternary head
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.in_channels, self.input_size, "FaceDiscriminator")
        return self.main(images)


def facenet_encoder(weights: str | os.PathLike | None = None, pretrained: bool = True) -> nn.Module:
    """f for faces: facenet-pytorch's InceptionResnetV1 with its VGGFace2 weights, read from a local file.

    160x160 RGB faces in [-1, 1] (FaceNet's own (x - 127.5) / 128 is within 0.4% of that) -> L2-normalised
    512-d embeddings. Nothing is downloaded here: `weights` is the .pt file, by default the one
    facenet-pytorch caches in torch's hub folder ($TORCH_HOME/checkpoints/20180402-114759-vggface2.pt).
    pretrained=False builds the architecture only (random weights), to be filled from a DTN checkpoint.
    Raises GanlibError saying how to get what is missing.
    """
    try:
        from facenet_pytorch import InceptionResnetV1
    except ImportError as err:
        raise GanlibError(
            "The faces DTN uses facenet-pytorch's InceptionResnetV1 as f, and facenet-pytorch is not installed. "
            "pip install facenet-pytorch --no-deps (it needs only torch, torchvision, pillow and numpy), or use "
            "the digits configuration, which trains its own f."
        ) from err
    model = InceptionResnetV1(pretrained=None, classify=False)
    model.input_size = 160
    if not pretrained:
        return model.eval()
    path = Path(weights) if weights else Path(torch.hub.get_dir()) / "checkpoints" / FACENET_VGGFACE2_FILE
    if not path.is_file():
        raise GanlibError(
            f"The VGGFace2 weights of InceptionResnetV1 are not at {path}. On a machine with internet, run "
            "python -c \"from facenet_pytorch import InceptionResnetV1; InceptionResnetV1(pretrained='vggface2')\" "
            f"(it saves {FACENET_VGGFACE2_FILE} in torch's hub cache), then copy the file here or pass its path "
            "(on Kaggle: attach it as a dataset and set face_weights to /kaggle/input/.../" f"{FACENET_VGGFACE2_FILE})."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    # The file also holds the 8631-way VGGFace2 identity classifier ("logits.*"); f is the embedding only.
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise GanlibError(f"{path} does not match InceptionResnetV1: missing {missing[:5]}, unexpected "
                          f"{unexpected[:5]}. Use the VGGFace2 file {FACENET_VGGFACE2_FILE} from facenet-pytorch.")
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# G = g o f
# ---------------------------------------------------------------------------------------------------------

class DomainTransfer(nn.Module):
    """G = g(f(x)), with f frozen (no gradients, always in eval mode) and only g trained.

    f_size, f_channels: the images f takes. encode() resizes to f_size and repeats a grey channel when f wants
    RGB, so grey targets and grey outputs of g go through the same f as colour sources.
    """

    def __init__(self, f: nn.Module, g: nn.Module, f_size: int, f_channels: int = 3):
        super().__init__()
        self.f, self.g = f, g
        self.f_size, self.f_channels = f_size, f_channels
        self.f.requires_grad_(False)
        self.f.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.f.eval()  # f is fixed: its BatchNorm/dropout (FaceNet has both) must not change with g's training
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """f(x) for images of either domain (any size; 1 or f_channels channels)."""
        if images.shape[1] == 1 and self.f_channels != 1:
            images = images.expand(-1, self.f_channels, -1, -1)
        return self.f(resize(images, self.f_size))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.g(self.encode(images))


def digits_transfer(features: int = 64, f_widths=(64, 128, 256, 128)) -> DomainTransfer:
    """G for digits: a DigitEncoder f (train it as a classifier first) and a DigitGenerator g."""
    f = DigitEncoder(3, f_widths)
    return DomainTransfer(f, DigitGenerator(f.feature_dim, 1, features), f_size=32, f_channels=3)


def faces_transfer(f: nn.Module, features: int = 64, f_size: int = 160, embedding_dim: int = 512) -> DomainTransfer:
    """G for faces around a given face encoder f (facenet_encoder(), or any module images -> (N, embedding_dim))."""
    return DomainTransfer(f, FaceGenerator(embedding_dim, 3, features), f_size=f_size, f_channels=3)


# ---------------------------------------------------------------------------------------------------------
# Losses (section 3)
# ---------------------------------------------------------------------------------------------------------

def _targets(logits: torch.Tensor, cls: int) -> torch.Tensor:
    return torch.full((logits.shape[0],), cls, dtype=torch.long, device=logits.device)


def d_loss(logits_fake_source: torch.Tensor, logits_fake_target: torch.Tensor,
           logits_real_target: torch.Tensor) -> torch.Tensor:
    """The ternary discriminator's loss.

    L_D = -E_{x in s} log D_1(g(f(x))) - E_{x in t} log D_2(g(f(x))) - E_{x in t} log D_3(x),
    D_i the softmax probability of class i: three cross-entropies, one per kind of input.
    """
    return (F.cross_entropy(logits_fake_source, _targets(logits_fake_source, FAKE_FROM_SOURCE))  # -E_s log D_1(G(x))
            + F.cross_entropy(logits_fake_target, _targets(logits_fake_target, FAKE_FROM_TARGET))  # -E_t log D_2(G(x))
            + F.cross_entropy(logits_real_target, _targets(logits_real_target, REAL_TARGET)))  # -E_t log D_3(x)


def gang_loss(logits_fake_source: torch.Tensor, logits_fake_target: torch.Tensor) -> torch.Tensor:
    """G's adversarial loss: both kinds of output should look like real targets.

    L_GANG = -E_{x in s} log D_3(g(f(x))) - E_{x in t} log D_3(g(f(x)))
    """
    return (F.cross_entropy(logits_fake_source, _targets(logits_fake_source, REAL_TARGET))
            + F.cross_entropy(logits_fake_target, _targets(logits_fake_target, REAL_TARGET)))


def const_loss(f_x: torch.Tensor, f_G_x: torch.Tensor) -> torch.Tensor:
    """f-constancy on source images, d = mean squared error.

    L_CONST = E_{x in s} d(f(x), f(g(f(x))))
    """
    return F.mse_loss(f_G_x, f_x)


def tid_loss(x: torch.Tensor, G_x: torch.Tensor) -> torch.Tensor:
    """Target identity: G should map a target image to itself, d_2 = mean squared error.

    L_TID = E_{x in t} d_2(x, G(x))
    """
    return F.mse_loss(G_x, x)


def tv_loss(z: torch.Tensor, B: float = 1.0, eps: float = 1e-8) -> torch.Tensor:
    """Total variation of a batch of images z (N, C, H, W), the paper's anisotropy-free form with B = 1:

    L_TV(z) = sum_{i,j} ((z_{i,j+1} - z_{i,j})^2 + (z_{i+1,j} - z_{i,j})^2)^{B/2}

    averaged over images, channels and the (H-1) x (W-1) positions where both differences exist.
    eps keeps the gradient of the square root finite where the image is flat.
    """
    right = z[..., :-1, 1:] - z[..., :-1, :-1]  # z_{i,j+1} - z_{i,j}
    down = z[..., 1:, :-1] - z[..., :-1, :-1]  # z_{i+1,j} - z_{i,j}
    return (right.pow(2) + down.pow(2) + eps).pow(B / 2).mean()


def generator_loss(L_GANG: torch.Tensor, L_CONST: torch.Tensor, L_TID: torch.Tensor, L_TV: torch.Tensor,
                   alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """L_G = L_GANG + alpha L_CONST + beta L_TID + gamma L_TV.

    A term whose weight is 0 is left out of the sum (not multiplied by 0), so an ablation does not pay for
    a backward pass through it; the term can still be logged.
    """
    total = L_GANG
    for weight, term in ((alpha, L_CONST), (beta, L_TID), (gamma, L_TV)):
        if weight:
            total = total + weight * term
    return total


# ---------------------------------------------------------------------------------------------------------
# Checkpoints the demo can rebuild
# ---------------------------------------------------------------------------------------------------------

def describe(task: str, features: int, **extra) -> dict:
    """What a checkpoint must record to rebuild G without the notebook: pass as ckpt.save(..., extra={"dtn": ...})."""
    if task not in ("digits", "faces"):
        raise GanlibError(f"DTN task={task!r}: use 'digits' or 'faces'.")
    return dict(task=task, features=int(features), **extra)


def transfer_from_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[DomainTransfer, dict]:
    """Rebuild G from a checkpoint the dtn notebook wrote (a step_*.pt file, or a folder of them: the newest).

    Returns (G in eval mode, the checkpoint's description). A faces checkpoint holds f's weights too, so only
    the facenet-pytorch package is needed, not its weights file.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("step_*.pt"))
        full_model = [p for p in found if p.parent.name == "dtn"]  # a run's checkpoints/: the full DTN, not an ablation
        found = full_model or found
        if not found:
            raise GanlibError(f"No checkpoint (step_*.pt) under {path}. Pass a file such as "
                              "runs/dtn-demo/checkpoints/dtn/step_00000999.pt, written by the dtn notebook.")
        path = max(found, key=lambda p: p.stat().st_mtime)
    if not path.is_file():
        raise GanlibError(f"Checkpoint {path} does not exist. Train the dtn notebook first "
                          "(python -m ganlib run dtn --preset smoke) and pass a file from its checkpoints/ folder.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated or not a torch file
        raise GanlibError(f"Cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
    info = payload.get("extra", {}).get("dtn") if isinstance(payload, dict) else None
    if not info or "G" not in payload.get("state", {}):
        raise GanlibError(f"{path} is not a DTN checkpoint (it has no extra['dtn'] description and G weights). "
                          "Use one from the checkpoints/dtn folder of a dtn notebook run.")
    if info["task"] == "digits":
        G = digits_transfer(info["features"], tuple(info.get("f_widths", (64, 128, 256, 128))))
    else:
        G = faces_transfer(facenet_encoder(pretrained=False), info["features"])  # f's weights come from the file
    G.load_state_dict(payload["state"]["G"])
    return G.eval(), info


# ---------------------------------------------------------------------------------------------------------
# `python -m ganlib bench dtn`
# ---------------------------------------------------------------------------------------------------------

def bench_setup(size, batch, dev, autocast, memory_format):
    """One full DTN training step (a D update, then G_UPDATES_PER_D g updates) at the paper's digits configuration."""
    from .bench import BenchSetup

    size, batch = size or 32, batch or 128
    if size != 32:
        raise GanlibError(f"bench dtn: the digits DTN works at 32x32; got --size {size}. Leave --size out.")
    G = digits_transfer(64).to(dev, memory_format=memory_format)
    D = DigitDiscriminator(1, 64).to(dev, memory_format=memory_format)
    opt_g = torch.optim.Adam(G.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    source = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=memory_format)
    target = torch.randn(batch, 1, size, size, device=dev).contiguous(memory_format=memory_format)
    w = PAPER_DIGITS

    def step():
        with autocast():
            f_s, f_t = G.encode(source), G.encode(target)
            with torch.no_grad():
                fake_s, fake_t = G.g(torch.cat([f_s, f_t])).split([batch, batch])
            loss_D = d_loss(D(fake_s), D(fake_t), D(target))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        for _ in range(G_UPDATES_PER_D):
            with autocast():
                fake_s, fake_t = G.g(torch.cat([f_s, f_t])).split([batch, batch])
                loss_G = generator_loss(gang_loss(D(fake_s), D(fake_t)), const_loss(f_s, G.encode(fake_s)),
                                        tid_loss(target, fake_t), tv_loss(fake_s), w["alpha"], w["beta"], w["gamma"])
            opt_g.zero_grad(set_to_none=True)
            loss_G.backward()
            opt_g.step()

    return BenchSetup(step, [G.g, D], size, batch)
