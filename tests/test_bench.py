import pytest

from ganlib import bench
from ganlib.errors import GanlibError


@pytest.mark.parametrize("model", ["dcgan", "wgan_gp"])
def test_bench_times_a_full_training_step_and_reports(model, capsys):
    result = bench.run_bench(model, size=32, batch=2, steps=1, warmup=1, device="cpu")
    assert (result["size"], result["batch"], result["device"]) == (32, 2, "cpu")
    assert result["ms_per_step"] > 0 and result["images_per_s"] == pytest.approx(2000 / result["ms_per_step"])
    out = capsys.readouterr().out
    assert f"{model} on cpu: 32x32, batch 2" in out and "ms/step" in out and "peak process RSS" in out


def test_bench_datasets_prints_items_per_second(capsys):
    rows = bench.bench_datasets(sizes=(32,), count=3)
    assert {r["dataset"] for r in rows} == {"WristWatches", "StreetScenes (label, day, night)", "PrintedDigits"}
    assert all(r["images_per_s"] > 0 for r in rows)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(GanlibError, match=r"Unknown model 'biggan'; bench knows: dcgan, wgan_gp, cyclegan, .*, and 'datasets'"):
        bench.run_bench("biggan")


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(set(bench.MODELS) - {"dcgan", "wgan_gp"}))
def test_every_paper_module_gives_a_bench_step(model):
    # Small sizes each architecture accepts: this checks the wiring, not the speed. StyleGAN2 needs a
    # batch of at least 4 (minibatch-stddev groups, and the path-length batch is half the batch).
    size = {"pix2pix": 256, "spade": 64, "multiscale_cyclegan": 256, "stylegan2": 32, "dtn": 32}.get(model, 64)
    batch = 4 if model == "stylegan2" else 1
    result = bench.run_bench(model, size=size, batch=batch, steps=1, warmup=0, device="cpu")
    assert result["ms_per_step"] > 0 and result["batch"] == batch
