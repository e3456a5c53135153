import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganlib import metrics
from ganlib.errors import DataError, GanlibError


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """Point the torch hub cache at an empty folder: no Inception, no LPIPS backbones."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def gaussian(n, d, seed, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale + shift


# ---------------------------------------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero():
    feats = gaussian(300, 32, seed=0)
    assert abs(metrics.fid(feats, feats)) < 1e-6


def test_fid_of_shifted_set_is_squared_shift():
    # Same samples moved by d: equal covariances, so FID = ||d||^2 exactly.
    feats = gaussian(400, 8, seed=1)
    shift = np.arange(8) / 4.0
    assert metrics.fid(feats, feats + shift) == pytest.approx(np.sum(shift**2), rel=1e-6)


def test_fid_matches_hand_computation_2d():
    # real: corners of a 2-square, mean (1,1), cov 4/3 I; fake: corners of a 4-square, mean (2,2), cov 16/3 I.
    # FID = |(1,1)-(2,2)|^2 + Tr(4/3 I + 16/3 I - 2 sqrt(64/9) I) = 2 + 2 (20/3 - 16/3) = 14/3
    real = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], dtype=float)
    fake = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], dtype=float)
    assert metrics.fid(real, fake) == pytest.approx(14 / 3, rel=1e-9)
    assert metrics.fid(torch.tensor(real), torch.tensor(fake)) == pytest.approx(14 / 3, rel=1e-9)


def test_fid_matches_numpy_eigenvalue_formula_for_correlated_features():
    # Tr sqrt(S1 S2) = sum sqrt(eig(S1 S2)): an independent route to the same number.
    real = gaussian(50, 2, seed=2) @ np.array([[1.0, 0.8], [0.0, 0.5]])
    fake = gaussian(60, 2, seed=3, shift=0.3) @ np.array([[0.7, -0.2], [0.1, 1.5]])
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    tr_sqrt = np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert metrics.fid(real, fake) == pytest.approx(expected, rel=1e-9)


def test_fid_rejects_mismatched_dimensions_and_single_samples():
    with pytest.raises(GanlibError, match="same extractor"):
        metrics.fid(gaussian(10, 4, 0), gaussian(10, 5, 0))
    with pytest.raises(GanlibError, match="at least 2"):
        metrics.fid(gaussian(1, 4, 0), gaussian(10, 4, 0))


# ---------------------------------------------------------------------------------------------- KID


def test_kid_hand_computed_example():
    # d = 2, k(a,b) = (a.b/2 + 1)^3. x1.x2 = 0 -> 1; y1.y2 = 0 -> 1; x.y in {1, 0, 1, 0} -> {3.375, 1, 3.375, 1}
    # MMD^2_u = 2/(2*1) + 2/(2*1) - 2 * 8.75/4 = -2.375; one subset of all samples, so std 0.
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    mean, std = metrics.kid(x, y, n_subsets=5, subset_size=2)
    assert mean == pytest.approx(-2.375)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_mmd2_unbiased_matches_double_loop():
    x, y = gaussian(5, 3, seed=4), gaussian(5, 3, seed=5, shift=0.5)
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = 5
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_near_zero_for_same_distribution_and_positive_for_different():
    real = gaussian(300, 16, seed=6)
    same = gaussian(300, 16, seed=7)
    shifted = gaussian(300, 16, seed=8, shift=0.5)
    same_mean, _ = metrics.kid(real, same, n_subsets=20, subset_size=100)
    diff_mean, diff_std = metrics.kid(real, shifted, n_subsets=20, subset_size=100)
    assert diff_mean > 0.1 and diff_std > 0
    assert abs(same_mean) < 0.05 * diff_mean
    assert metrics.kid(real, shifted, n_subsets=20, subset_size=100) == (diff_mean, diff_std)  # seeded


# ---------------------------------------------------------------------------------------------- IS


def test_inception_score_of_uniform_logits_is_one():
    mean, std = metrics.inception_score(torch.zeros(40, 10), splits=4)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)


def test_inception_score_of_confident_diverse_predictions_is_number_of_classes():
    logits = 100 * torch.eye(10).repeat(5, 1)  # 50 one-hot predictions, each split sees all 10 classes
    assert metrics.inception_score(logits, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    mean, std = metrics.inception_score(logits, splits=5)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_of_one_confident_class_is_one():
    logits = torch.zeros(20, 10)
    logits[:, 3] = 100  # confident but no diversity: p(y|x) = p(y)
    assert metrics.inception_score(logits, splits=2)[0] == pytest.approx(1.0, rel=1e-6)


def test_inception_score_needs_samples_for_every_split():
    with pytest.raises(GanlibError, match="3 samples for 10 splits"):
        metrics.inception_score(torch.zeros(3, 10), splits=10)


# ---------------------------------------------------------------------------------------------- precision / recall


def test_precision_recall_of_identical_sets_is_one():
    feats = gaussian(200, 8, seed=9)
    assert metrics.precision_recall(feats, feats, k=3) == (1.0, 1.0)


def test_precision_recall_detects_mode_collapse():
    real = gaussian(500, 2, seed=10)
    # a generator stuck on 5 real modes: every fake is realistic, most of the real data is never produced
    collapsed = np.repeat(real[:5], 100, axis=0) + gaussian(500, 2, seed=11, scale=1e-3)
    precision, recall = metrics.precision_recall(real, collapsed, k=3, block=64)
    assert precision > 0.95 and recall < 0.05


def test_precision_recall_hand_computed_1d():
    # k = 1. Real radii: 1 each, so fake 0.5 is inside (of 0), fake 10 is not -> precision 1/2.
    # Fake radii: 9.5 each (they are each other's neighbour), covering every real -> recall 1:
    # one outlier inflates recall, the known failure mode.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    assert metrics.precision_recall(real, fake, k=1) == (0.5, 1.0)


def test_precision_recall_needs_more_samples_than_k():
    with pytest.raises(GanlibError, match="at least 4"):
        metrics.precision_recall(gaussian(3, 2, 0), gaussian(10, 2, 0), k=3)


# ---------------------------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_of_identical_images_is_inf():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert metrics.psnr(x, x) == math.inf


def test_psnr_of_known_mse():
    # 0.2 apart in [-1, 1] = 0.1 apart in [0, 1]: MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB.
    x = torch.zeros(2, 3, 8, 8)
    assert metrics.psnr(x, x + 0.2) == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-5)
    # per-image PSNR averaged: MSE 0.01 and 0.0001 -> (20 + 40) / 2
    y = torch.stack([x[0] + 0.2, x[1] + 0.02])
    assert metrics.psnr(x, y) == pytest.approx(30.0, rel=1e-4)


def test_ssim_of_identical_images_is_one_and_lower_for_noise():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    assert metrics.ssim(x, noisy) < 0.9


def test_paired_metrics_reject_bad_inputs_with_the_fix():
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(GanlibError, match=r"x / 127.5 - 1"):
        metrics.psnr(x, torch.full_like(x, 255.0))
    with pytest.raises(GanlibError, match="same shape"):
        metrics.psnr(x, torch.zeros(1, 3, 8, 8))
    with pytest.raises(GanlibError, match="at least 11x11"):
        metrics.ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(GanlibError, match="expand"):
        metrics.psnr(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


# ---------------------------------------------------------------------------------------------- extractors


def test_random_extractor_is_deterministic_and_leaves_global_rng_alone():
    images = torch.rand(3, 3, 17, 23) * 2 - 1  # any H, W
    torch.manual_seed(123)
    a = metrics.random_extractor(seed=0)(images)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after)  # building the extractor drew nothing from the global RNG
    b = metrics.random_extractor(seed=0)(images)
    c = metrics.random_extractor(seed=1)(images)
    assert a.shape == (3, 256)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert metrics.random_extractor(seed=0, dim=32)(images).shape == (3, 32)


def test_resize_like_pil_matches_pil_bicubic():
    rng = np.random.default_rng(0)
    for src, dst in [(32, 299), (96, 40)]:  # up and down
        plane = rng.uniform(0, 255, (src, src)).astype(np.float32)
        expected = np.asarray(Image.fromarray(plane, mode="F").resize((dst, dst), Image.BICUBIC))
        ours = metrics.resize_like_pil(torch.from_numpy(plane)[None, None], dst)[0, 0].numpy()
        assert np.abs(ours - expected).max() < 0.01


def test_extract_features_from_tensor_and_loader_agree():
    extractor = metrics.random_extractor(dim=16)
    images = torch.rand(10, 3, 12, 12) * 2 - 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(10)), batch_size=4)
    from_tensor = metrics.extract_features(extractor, images, batch_size=3)
    from_loader = metrics.extract_features(extractor, loader)
    assert from_tensor.shape == (10, 16) and from_tensor.dtype == torch.float32
    assert torch.allclose(from_tensor, from_loader, atol=1e-6)
    assert torch.allclose(metrics.extract_features(extractor, loader, limit=6), from_tensor[:6], atol=1e-6)


def test_extract_features_explains_bad_batches():
    extractor = metrics.random_extractor(dim=16)
    with pytest.raises(DataError, match=r"batch\['image'\]"):
        metrics.extract_features(extractor, [{"image": torch.zeros(2, 3, 8, 8)}])
    with pytest.raises(GanlibError, match=r"x \* 2 - 1"):
        metrics.extract_features(extractor, torch.rand(2, 3, 8, 8) * 1.5)
    with pytest.raises(GanlibError, match="NaN"):
        metrics.extract_features(extractor, torch.full((2, 3, 8, 8), float("nan")))
    with pytest.raises(DataError, match="empty"):
        metrics.extract_features(extractor, [])


def test_missing_inception_weights_say_where_to_put_them(empty_hub, tmp_path):
    with pytest.raises(GanlibError) as error:
        metrics.inception_extractor()
    message = str(error.value)
    assert str(empty_hub / "pt_inception-2015-12-05-6726825d.pth") in message
    assert "weights_path" in message and "random_extractor" in message

    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(GanlibError, match="inception.pth"):
        metrics.inception_extractor(weights_path=missing)


def test_available_extractor_falls_back_to_random(empty_hub, capsys):
    extractor, name = metrics.available_extractor()
    assert isinstance(extractor, metrics.RandomConvExtractor)
    assert name == "random-conv-seed0-dim256"
    assert "NOT comparable" in capsys.readouterr().out


def test_inception_loads_a_state_dict_from_the_hub_cache(empty_hub, capsys):
    # Real weights cannot be downloaded here: save the architecture's own (random) state dict under the
    # reference file name and check the whole path: lookup, strict load, resize, pool3 and logits.
    empty_hub.mkdir(parents=True)
    torch.save(metrics._fid_inception_v3().state_dict(), empty_hub / "pt_inception-2015-12-05-6726825d.pth")
    extractor, name = metrics.available_extractor()
    assert name == "inception-v3-fid-pool3" and "inception-v3-fid-pool3" in capsys.readouterr().out
    images = torch.rand(2, 3, 20, 28) * 2 - 1
    assert extractor(images).shape == (2, 2048)
    assert metrics.inception_classifier()(images).shape == (2, 1008)


def test_inception_rejects_a_wrong_weights_file(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save(metrics.random_extractor().state_dict(), wrong)
    with pytest.raises(GanlibError, match="not the FID Inception state dict"):
        metrics.inception_extractor(weights_path=wrong)


def test_fid_inception_pools_like_the_tensorflow_graph():
    net = metrics._fid_inception_v3().eval()
    x = torch.randn(1, 192, 7, 7)
    block = net.Mixed_5b  # avg pool that ignores the zero padding
    expected = block.branch_pool(torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    assert torch.allclose(block(x)[:, -32:], expected)
    x = torch.randn(1, 2048, 5, 5)
    block = net.Mixed_7c  # the last block max-pools
    expected = block.branch_pool(torch.nn.functional.max_pool2d(x, 3, 1, 1))
    assert torch.allclose(block(x)[:, -192:], expected)


# ---------------------------------------------------------------------------------------------- LPIPS


def test_lpips_proxy_is_zero_for_identical_and_symmetric():
    extractor = metrics.random_extractor()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.allclose(metrics.lpips_distance(x, x, net=extractor), torch.zeros(3), atol=1e-6)
    d = metrics.lpips_distance(x, y, net=extractor)
    assert d.shape == (3,) and (d > 0).all()
    assert torch.allclose(d, metrics.lpips_distance(y, x, net=extractor))


def test_lpips_without_weights_warns_and_uses_the_proxy(empty_hub):
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    with pytest.warns(UserWarning, match="proxy"):
        d = metrics.lpips_distance(x, y)
    assert torch.allclose(d, metrics.feature_distance(x, y, metrics.random_extractor(seed=0)))
    with pytest.raises(GanlibError, match="vgg16-397923af.pth"):
        metrics.lpips_distance(x, y, net="vgg")
    with pytest.raises(GanlibError, match="activations"):
        metrics.lpips_distance(x, y, net=nn.Identity())


def test_lpips_uses_learned_lpips_when_the_backbone_is_cached(empty_hub):
    # SqueezeNet is the one backbone small enough to fake here: random weights under torchvision's
    # file name exercise the lookup and the torchmetrics call without any download.
    import torchvision

    empty_hub.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), empty_hub / "squeezenet1_1-b8a52dc0.pth")
    assert metrics.lpips_weights_available("squeeze") and not metrics.lpips_weights_available("alex")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    d = metrics.lpips_distance(x, y, net="squeeze")
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(metrics.lpips_distance(x, x, net="squeeze"), torch.zeros(2), atol=1e-6)


def test_lpips_diversity_is_zero_for_collapsed_samples_and_seeded():
    extractor = metrics.random_extractor()
    same = (torch.rand(1, 3, 16, 16) * 2 - 1).repeat(6, 1, 1, 1)
    varied = torch.rand(6, 3, 16, 16) * 2 - 1
    assert metrics.lpips_diversity(same, n_pairs=10, net=extractor) == pytest.approx(0.0, abs=1e-6)
    diverse = metrics.lpips_diversity(varied, n_pairs=10, net=extractor, batch_size=4)
    assert diverse > 0
    assert metrics.lpips_diversity(varied, n_pairs=10, net=extractor) == pytest.approx(diverse, rel=1e-6)


# ---------------------------------------------------------------------------------------------- evaluate_generator


def test_evaluate_generator_is_seeded_and_reports_is_only_with_a_classifier():
    extractor = metrics.random_extractor(dim=16)
    real = torch.rand(48, 3, 8, 8) * 2 - 1
    sample_fn = lambda b: torch.rand(b, 3, 8, 8) * 2 - 1  # noqa: E731  uses the (seeded) global RNG
    kwargs = dict(n=40, extractor=extractor, batch_size=16, kid_subsets=5, kid_subset_size=20)
    state = torch.get_rng_state()
    first = metrics.evaluate_generator(sample_fn, real, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG stream is untouched
    assert set(first) == {"fid", "kid_mean", "kid_std", "precision", "recall", "n_real", "n_fake"}
    assert first["n_real"] == 40 and first["n_fake"] == 40
    assert metrics.evaluate_generator(sample_fn, real, **kwargs) == first

    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    with_is = metrics.evaluate_generator(sample_fn, real, classifier=classifier, is_splits=4, **kwargs)
    assert 1.0 <= with_is["is_mean"] <= 10.0
    assert with_is["fid"] == first["fid"]

    with pytest.raises(GanlibError, match="sample_fn output has no images"):
        metrics.evaluate_generator(lambda b: torch.zeros(0, 3, 8, 8), real, **kwargs)
