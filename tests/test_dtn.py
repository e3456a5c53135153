"""Domain Transfer Network (ganlib.dtn): shapes, parameter counts, losses against hand-computed values,
one training step for digits and for faces (small random f), the faces encoder loader, checkpoints."""
import contextlib
import math
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganlib import data, dtn, training
from ganlib.errors import GanlibError


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# --- digits networks ------------------------------------------------------------------------------------


def test_digit_encoder_is_four_convs_64_128_256_128_with_pooling_relu_and_a_tanh_representation():
    f = dtn.DigitEncoder(3)
    convs = [m for m in f.body if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 128]
    assert sum(isinstance(m, nn.MaxPool2d) for m in f.body) == 3
    assert sum(isinstance(m, nn.ReLU) for m in f.body) == 3 and isinstance(f.body[-2], nn.Tanh)
    x = torch.randn(2, 3, 32, 32)
    assert f(x).shape == (2, 128)
    assert f.classify(x).shape == (2, 10)
    assert f(x).abs().max() <= 1  # the representation is bounded by tanh


def test_digit_encoder_parameter_count():
    # conv 3->64 3x3: 1,728 + 64; conv 64->128: 73,728 + 128; conv 128->256: 294,912 + 256;
    # conv 256->128 4x4: 524,288 + 128; classifier 128->10: 1,280 + 10. Total 896,522.
    assert n_params(dtn.DigitEncoder(3)) == 896_522
    # the one-channel judge differs only in the first conv: 64 * 9 fewer weights per dropped channel
    assert n_params(dtn.DigitEncoder(1)) == 896_522 - 2 * 64 * 9


def test_digit_generator_four_blocks_to_32x32_grey():
    g = dtn.DigitGenerator(128, 1, 64)
    convs = [m for m in g.main if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 1]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.main) == 3
    assert isinstance(g.main[-1], nn.Tanh)
    out = g(torch.randn(3, 128))
    assert out.shape == (3, 1, 32, 32) and out.abs().max() <= 1
    # ConvT 128->512 4x4: 1,048,576; BN 1,024; 512->256: 2,097,152; BN 512; 256->128: 524,288; BN 256;
    # 128->1: 2,048 + bias 1. Total 3,673,857.
    assert n_params(g) == 3_673_857


def test_digit_discriminator_four_batchnormed_convs_three_logits():
    D = dtn.DigitDiscriminator(1, 64)
    convs = [m for m in D.main if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and convs[-1].out_channels == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.main) == 3
    assert D(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    # 1->64 4x4: 1,024; BN 128; 64->128: 131,072; BN 256; 128->256: 524,288; BN 512; 256->3 4x4: 12,288 + 3
    assert n_params(D) == 669_571


def test_wrong_input_shapes_say_what_to_pass():
    with pytest.raises(ValueError, match=r"expected \(N, 1, 32, 32\)"):
        dtn.DigitDiscriminator(1, 8)(torch.randn(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"expected \(N, 128\), the output of f"):
        dtn.DigitGenerator(128, 1, 8)(torch.randn(2, 64))
    with pytest.raises(ValueError, match=r"expected \(N, 3, 32, 32\)"):
        dtn.DigitEncoder(3)(torch.randn(2, 3, 64, 64))


# --- faces networks -------------------------------------------------------------------------------------


def test_face_generator_five_up_blocks_with_1x1_convs_is_nine_layers_to_64x64():
    g = dtn.FaceGenerator(512, 3, 64)
    up = [m for m in g.main if isinstance(m, nn.ConvTranspose2d)]
    one_by_one = [m for m in g.main if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(up) == 5 and len(one_by_one) == 4
    assert [c.out_channels for c in up] == [512, 256, 128, 64, 3]
    out = g.eval()(torch.randn(2, 512))
    assert out.shape == (2, 3, 64, 64)
    # up: 512*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*3*16 + 3 = 6,949,891
    # 1x1: 512^2 + 256^2 + 128^2 + 64^2 = 348,160;  BN: 2 * 2 * (512 + 256 + 128 + 64) = 3,840
    assert n_params(g) == 6_949_891 + 348_160 + 3_840 == 7_301_891


def test_face_discriminator_six_stride2_blocks_on_152():
    D = dtn.FaceDiscriminator(3, 64, 152).eval()
    convs = [m for m in D.main if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and all(c.stride == (2, 2) for c in convs[:6])
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.main) == 6
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.main) == 6
    with torch.no_grad():
        assert D(torch.randn(2, 3, 152, 152)).shape == (2, 3)
    # 3->64: 3,072; 64->128: 131,072; 128->256: 524,288; 256->512: 2,097,152; 512->512 (x2): 8,388,608;
    # BN: 2 * (64 + 128 + 256 + 512 * 3) = 3,968; head 512->3 2x2: 6,144 + 3.
    assert n_params(D) == 3_072 + 131_072 + 524_288 + 2_097_152 + 8_388_608 + 3_968 + 6_147
    with pytest.raises(ValueError, match=r"expected \(N, 3, 152, 152\).*dtn.resize"):
        D(torch.randn(2, 3, 64, 64))


# --- losses against hand-computed values ------------------------------------------------------------------


def test_d_loss_and_gang_loss_with_uniform_and_known_logits():
    flat = torch.zeros(5, 3)
    assert dtn.d_loss(flat, flat, flat).item() == pytest.approx(3 * math.log(3))
    assert dtn.gang_loss(flat, flat).item() == pytest.approx(2 * math.log(3))
    # one sample each; logits (a, b, c): CE for class k = logsumexp - logit_k
    fs, ft, rt = torch.tensor([[2.0, 0, 0]]), torch.tensor([[0, 1.0, 0]]), torch.tensor([[0, 0, 3.0]])
    lse = lambda v: math.log(sum(math.exp(x) for x in v))
    expected_D = (lse([2, 0, 0]) - 2) + (lse([0, 1, 0]) - 1) + (lse([0, 0, 3]) - 3)
    assert dtn.d_loss(fs, ft, rt).item() == pytest.approx(expected_D)
    # G wants class 3 (REAL_TARGET) for both fakes
    assert dtn.gang_loss(fs, ft).item() == pytest.approx((lse([2, 0, 0]) - 0) + (lse([0, 1, 0]) - 0))


def test_d_loss_classes_are_in_the_papers_order():
    assert (dtn.FAKE_FROM_SOURCE, dtn.FAKE_FROM_TARGET, dtn.REAL_TARGET) == (0, 1, 2)
    confident = torch.tensor([[20.0, 0, 0]]), torch.tensor([[0, 20.0, 0]]), torch.tensor([[0, 0, 20.0]])
    assert dtn.d_loss(*confident).item() < 1e-6  # a perfect D
    assert dtn.gang_loss(confident[2], confident[2]).item() < 1e-6  # G fooling D completely


def test_const_and_tid_are_mean_squared_errors():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    assert dtn.const_loss(a, b).item() == pytest.approx((4 + 9) / 4)
    x, y = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    assert dtn.tid_loss(x, y).item() == pytest.approx((1 + 1 + 0.25) / 4)


def test_tv_loss_hand_computed():
    # horizontal ramp z_ij = c j: every position has sqrt(c^2 + 0) = c
    ramp = 0.25 * torch.arange(6.0).expand(1, 1, 6, 6)
    assert dtn.tv_loss(ramp).item() == pytest.approx(0.25, abs=1e-6)
    # 2x2 image [[0, 3], [4, 0]]: the one position (0, 0) has sqrt(3^2 + 4^2) = 5
    z = torch.tensor([[[[0.0, 3.0], [4.0, 0.0]]]])
    assert dtn.tv_loss(z).item() == pytest.approx(5.0, abs=1e-6)
    # B = 2: the squared form, 9 + 16
    assert dtn.tv_loss(z, B=2.0).item() == pytest.approx(25.0, abs=1e-5)
    # a flat image: 0, with a finite gradient
    flat = torch.zeros(1, 1, 4, 4, requires_grad=True)
    dtn.tv_loss(flat).backward()
    assert torch.isfinite(flat.grad).all()


def test_generator_loss_weights_and_skips_zero_terms():
    gang, const, tid, tv = (torch.tensor(v) for v in (1.0, 2.0, 3.0, 4.0))
    assert dtn.generator_loss(gang, const, tid, tv, 15, 15, 0).item() == pytest.approx(1 + 30 + 45)
    assert dtn.generator_loss(gang, const, tid, tv, 100, 1, 0.05).item() == pytest.approx(1 + 200 + 3 + 0.2)
    # a zero-weighted term is left out of the graph: no gradient reaches it
    const_p = torch.tensor(2.0, requires_grad=True)
    dtn.generator_loss(gang.requires_grad_(), const_p, tid, tv, 0.0, 1, 0).backward()
    assert const_p.grad is None


def test_paper_weights():
    assert (dtn.PAPER_DIGITS["alpha"], dtn.PAPER_DIGITS["beta"], dtn.PAPER_DIGITS["gamma"]) == (15, 15, 0)
    assert (dtn.PAPER_FACES["alpha"], dtn.PAPER_FACES["beta"], dtn.PAPER_FACES["gamma"]) == (100, 1, 0.05)
    assert dtn.PAPER_ACCURACY["DTN"] == 90.66


# --- G = g o f and one training step -------------------------------------------------------------------


def _step(G, D, source, target, w, d_size):
    opt_g = torch.optim.Adam(G.g.parameters(), lr=1e-3)
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-3)
    f_s, f_t = G.encode(source), G.encode(target)
    fake_s, fake_t = G.g(torch.cat([f_s, f_t])).split([len(source), len(target)])
    to_D = lambda x: dtn.resize(x, d_size)
    loss_D = dtn.d_loss(D(to_D(fake_s.detach())), D(to_D(fake_t.detach())), D(to_D(target)))
    opt_D.zero_grad()
    loss_D.backward()
    opt_D.step()
    loss_G = dtn.generator_loss(dtn.gang_loss(D(to_D(fake_s)), D(to_D(fake_t))), dtn.const_loss(f_s, G.encode(fake_s)),
                                dtn.tid_loss(target, fake_t), dtn.tv_loss(fake_s), w["alpha"], w["beta"], w["gamma"])
    opt_g.zero_grad()
    loss_G.backward()
    opt_g.step()
    return loss_D, loss_G


def test_digits_step_trains_g_and_D_and_leaves_f_alone():
    torch.manual_seed(0)
    G = dtn.digits_transfer(features=8, f_widths=(8, 16, 32, 128))
    D = dtn.DigitDiscriminator(1, 8)
    f_before = {k: v.clone() for k, v in G.f.state_dict().items()}
    g_before = [p.clone() for p in G.g.parameters()]
    source, target = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1  # grey target
    loss_D, loss_G = _step(G, D, source, target, dtn.PAPER_DIGITS, 32)
    assert torch.isfinite(loss_D) and torch.isfinite(loss_G)
    assert all(torch.equal(v, G.f.state_dict()[k]) for k, v in f_before.items())
    assert all(not p.requires_grad for p in G.f.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, G.g.parameters()))
    assert G(source).shape == (4, 1, 32, 32)


def test_transfer_keeps_f_in_eval_mode():
    G = dtn.digits_transfer(features=8, f_widths=(8, 16, 32, 128))
    G.train()
    assert G.g.training and not G.f.training


class TinyFaceEncoder(nn.Module):
    """A small random stand-in for FaceNet: 160x160 RGB -> L2-normalised 512-d, with BatchNorm like FaceNet."""

    input_size = 160

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                                 nn.Flatten(), nn.Linear(128, 512))

    def forward(self, x):
        return nn.functional.normalize(self.net(x), dim=1)


def test_faces_step_on_folders_with_a_small_random_f(tmp_path):
    # folders the way the Kaggle datasets come: JPEG faces, RGBA PNG emoji on a transparent background
    rng = np.random.default_rng(0)
    (tmp_path / "faces" / "celeba_hq").mkdir(parents=True)
    (tmp_path / "emoji").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(tmp_path / "faces" / "celeba_hq" / f"{i}.jpg")
        rgba = np.zeros((96, 96, 4), np.uint8)
        rgba[20:70, 20:70] = (200, 120, 40, 255)
        Image.fromarray(rgba).save(tmp_path / "emoji" / f"{i}.png")
    faces = data.celeba_hq(tmp_path / "faces", size=160)
    emoji = data.bitmoji(tmp_path / "emoji", size=64)
    assert faces[0].shape == (3, 160, 160) and emoji[0].shape == (3, 64, 64)
    assert emoji[0][:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # transparency composited on white
    torch.manual_seed(0)
    G = dtn.faces_transfer(TinyFaceEncoder(), features=4)
    D = dtn.FaceDiscriminator(3, 4, 152)
    source, target = torch.stack([faces[i] for i in range(4)]), torch.stack([emoji[i] for i in range(4)])
    loss_D, loss_G = _step(G, D, source, target, dtn.PAPER_FACES, 152)
    assert torch.isfinite(loss_D) and torch.isfinite(loss_G)
    assert G.eval()(source).shape == (4, 3, 64, 64)


def test_resize_is_bilinear_and_a_no_op_at_the_same_size():
    x = torch.randn(2, 3, 64, 64)
    assert dtn.resize(x, 64) is x
    assert dtn.resize(x, 152).shape == (2, 3, 152, 152)
    const = torch.full((1, 1, 8, 8), 0.5)
    assert torch.allclose(dtn.resize(const, 19), torch.full((1, 1, 19, 19), 0.5))


# --- the FaceNet encoder: clear errors, and loading from a local file ------------------------------------


def test_facenet_encoder_without_the_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails
    with pytest.raises(GanlibError, match="pip install facenet-pytorch"):
        dtn.facenet_encoder()


class FakeInceptionResnetV1(nn.Module):
    """Stands in for facenet_pytorch.InceptionResnetV1 (same constructor arguments and state-dict style)."""

    def __init__(self, pretrained=None, classify=False):
        super().__init__()
        assert pretrained is None  # the loader must never ask facenet-pytorch to download
        self.last_linear = nn.Linear(6, 512, bias=False)

    def forward(self, x):
        return nn.functional.normalize(self.last_linear(x.mean((2, 3)).repeat(1, 2)), dim=1)


@pytest.fixture
def fake_facenet(monkeypatch):
    module = types.ModuleType("facenet_pytorch")
    module.InceptionResnetV1 = FakeInceptionResnetV1
    monkeypatch.setitem(sys.modules, "facenet_pytorch", module)


def test_facenet_encoder_missing_weights_names_the_file(fake_facenet, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(GanlibError, match=r"not at .*hub/checkpoints/20180402-114759-vggface2\.pt.*face_weights"):
        dtn.facenet_encoder()


def test_facenet_encoder_loads_local_weights_without_the_identity_classifier(fake_facenet, tmp_path):
    reference = FakeInceptionResnetV1()
    state = dict(reference.state_dict())
    state["logits.weight"], state["logits.bias"] = torch.randn(8631, 512), torch.randn(8631)
    torch.save(state, tmp_path / "vggface2.pt")
    f = dtn.facenet_encoder(tmp_path / "vggface2.pt")
    assert not f.training and f.input_size == 160
    assert torch.equal(f.last_linear.weight, reference.last_linear.weight)
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(GanlibError, match="does not match InceptionResnetV1"):
        dtn.facenet_encoder(tmp_path / "wrong.pt")


# --- checkpoints the demo rebuilds ------------------------------------------------------------------------


def test_transfer_from_checkpoint_rebuilds_G(tmp_path):
    torch.manual_seed(0)
    G = dtn.digits_transfer(features=8, f_widths=(8, 16, 32, 128))
    ckpt = training.Checkpointer(tmp_path / "checkpoints" / "dtn")
    ckpt.save(9, dict(G=G), extra={"dtn": dtn.describe("digits", 8, f_widths=[8, 16, 32, 128])})
    for where in (ckpt.paths()[0], tmp_path / "checkpoints"):  # the file, or a folder above it
        G2, info = dtn.transfer_from_checkpoint(where)
        assert info["task"] == "digits" and not G2.training
        x = torch.randn(2, 3, 32, 32)
        assert torch.equal(G2(x), G.eval()(x))


def test_transfer_from_checkpoint_errors(tmp_path):
    with pytest.raises(GanlibError, match="does not exist.*python -m ganlib run dtn"):
        dtn.transfer_from_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(GanlibError, match=r"No checkpoint \(step_\*\.pt\)"):
        dtn.transfer_from_checkpoint(tmp_path)
    training.Checkpointer(tmp_path / "other").save(0, dict(model=nn.Linear(2, 2)))
    with pytest.raises(GanlibError, match="is not a DTN checkpoint"):
        dtn.transfer_from_checkpoint(tmp_path / "other")
    (tmp_path / "junk.pt").write_text("not torch")
    with pytest.raises(GanlibError, match="Cannot read checkpoint"):
        dtn.transfer_from_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(GanlibError, match="task='cats'"):
        dtn.describe("cats", 8)


def test_bench_setup_runs_one_step():
    setup = dtn.bench_setup(None, 4, torch.device("cpu"), contextlib.nullcontext, torch.contiguous_format)
    before = [p.clone() for p in setup.modules[0].parameters()]
    setup.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, setup.modules[0].parameters()))
    with pytest.raises(GanlibError, match="32x32"):
        dtn.bench_setup(64, 4, torch.device("cpu"), None, torch.contiguous_format)
