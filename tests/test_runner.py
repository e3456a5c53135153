"""The papermill runner, the preset resolution, the run folder and the Kaggle kernel writer."""
import base64
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from ganlib import config, runner
from ganlib.errors import GanlibError

REPO = Path(__file__).resolve().parent.parent
PRESETS = {"smoke": dict(lr=1.0, steps=2), "demo": dict(lr=0.5, steps=10), "paper": dict(lr=0.1, steps=100)}


def test_resolve_preset_fills_only_what_was_not_given(capsys):
    cfg = config.resolve_preset("demo", PRESETS, dict(lr=None, steps=3))
    assert (cfg.lr, cfg.steps, cfg.preset) == (0.5, 3, "demo")
    printed = capsys.readouterr().out
    assert "* steps" in printed and "  lr" in printed  # the explicit value is marked


def test_resolve_preset_errors():
    with pytest.raises(GanlibError, match=r"Unknown preset 'fast'; choose one of smoke, demo, paper"):
        config.resolve_preset("fast", PRESETS, {})
    with pytest.raises(GanlibError, match=r"Parameter 'width' is None and preset 'demo' gives it no value"):
        config.resolve_preset("demo", PRESETS, dict(width=None), show=False)


def test_prepare_run_dir_copies_checkpoints_of_an_attached_kernel_output(tmp_path):
    # /kaggle/input/<earlier-kernel>/runs/gan_basics-paper/checkpoints/dcgan/step_00000009.pt
    attached = tmp_path / "input" / "ganlib-gan-basics-paper" / "runs" / "gan_basics-paper" / "checkpoints"
    (attached / "dcgan").mkdir(parents=True)
    (attached / "dcgan" / "step_00000009.pt").write_bytes(b"weights")
    run_dir = config.prepare_run_dir("gan_basics", "paper", tmp_path / "working", kaggle_input=tmp_path / "input")
    assert (run_dir / "checkpoints" / "dcgan" / "step_00000009.pt").read_bytes() == b"weights"
    assert (run_dir / "samples").is_dir()
    # a run folder that already has checkpoints keeps its own
    (attached / "dcgan" / "step_00000019.pt").write_bytes(b"newer")
    config.prepare_run_dir("gan_basics", "paper", run_dir, kaggle_input=tmp_path / "input")
    assert not (run_dir / "checkpoints" / "dcgan" / "step_00000019.pt").exists()


def test_default_run_dir_moves_to_kaggle_working(monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert config.default_run_dir("dtn", "demo") == REPO / "runs" / "dtn-demo"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert config.default_run_dir("dtn", "paper") == Path("/kaggle/working/runs/dtn-paper")


def test_parse_value_reads_literals_like_papermill():
    assert runner.parse_value("3") == 3
    assert runner.parse_value("1e-4") == 1e-4
    assert runner.parse_value("True") is True
    assert runner.parse_value("None") is None
    assert runner.parse_value("celeba") == "celeba"
    assert runner.parse_value("[1, 2]") == [1, 2]


def test_list_shows_every_notebook_with_its_parameters():
    text = runner.list_notebooks()
    assert text.startswith("gan_basics: GAN basics")
    for name in ("preset", "dataset", "data_dir", "out_dir", "device", "seed", "wandb_mode", "budget_images"):
        assert f"    {name}: " in text


def test_every_notebook_has_the_required_parameters():
    required = {"preset", "dataset", "data_dir", "out_dir", "device", "seed", "wandb_mode"}
    for name in runner.available_notebooks():
        nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        params = runner.notebook_info(name)["parameters"]
        assert required <= set(params), (name, required - set(params))
        for p in params.values():
            assert p["help"], f"{name}: parameter {p['name']} has no comment"
            assert p["inferred_type_name"] != "None", f"{name}: parameter {p['name']} has no type"


def test_unknown_parameter_and_notebook_are_errors():
    with pytest.raises(GanlibError, match=r"gan_basics has no parameter 'epochz'\. Its parameters are: preset,"):
        runner.check_parameters("gan_basics", {"epochz": 3})
    with pytest.raises(GanlibError, match=r"Unknown notebook 'cyclegan'; the notebooks are: gan_basics, night2day"):
        runner.notebook_path("cyclegan")


def test_cli_unknown_parameter_exits_nonzero_with_the_message():
    result = subprocess.run([sys.executable, "-m", "ganlib", "run", "gan_basics", "--preset", "smoke",
                             "-p", "epochz", "3"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert "error: gan_basics has no parameter 'epochz'" in result.stderr


def _failing_notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset: str = "demo"  # which preset\nout_dir: str = ""  # run folder')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "gan_basics.ipynb")


@pytest.mark.slow
def test_a_failing_cell_names_the_cell_and_the_error(tmp_path, monkeypatch):
    _failing_notebook(tmp_path)
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", tmp_path)
    with pytest.raises(GanlibError) as err:
        runner.run_notebook("gan_basics", "smoke", out=str(tmp_path / "run"), log_output=False)
    message = str(err.value)
    assert "gan_basics: cell 3" in message  # papermill's injected-parameters cell shifts the index by one
    assert "\"raise ValueError('boom')\"" in message and "failed with ValueError: boom" in message
    assert (tmp_path / "run" / "gan_basics.ipynb").exists()


def test_kaggle_kernel_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    folder = runner.write_kaggle_kernel("gan_basics", str(tmp_path / "kernel"), preset="paper",
                                        params={"budget_images": 500_000}, resume_from="alice/ganlib-gan-basics-paper")
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/ganlib-gan-basics-paper"
    assert meta["code_file"] == "gan_basics.ipynb" and meta["kernel_type"] == "notebook"
    assert meta["enable_gpu"] is True and meta["enable_internet"] is True
    assert meta["dataset_sources"] == ["jessicali9530/celeba-dataset"]
    assert meta["kernel_sources"] == ["alice/ganlib-gan-basics-paper"]

    nb = nbformat.read(folder / "gan_basics.ipynb", as_version=4)
    assert "ganlib-bootstrap" in nb.cells[0].metadata["tags"]
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'preset = "paper"' in injected.source and "budget_images = 500000" in injected.source
    assert 'dataset = "kaggle"' in injected.source
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")  # prepared, not executed
    # the bootstrap carries the package itself
    shipped = nb.cells[0].source.split("GANLIB_ZIP = ", 1)[1].split("\n", 1)[0]
    names = zipfile.ZipFile(io.BytesIO(base64.b64decode(eval(shipped)))).namelist()
    assert "ganlib/__init__.py" in names and "ganlib/training.py" in names


def test_kaggle_kernel_without_username_says_what_to_edit(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nothing"))
    folder = runner.write_kaggle_kernel("gan_basics", str(tmp_path / "k"))
    assert json.loads((folder / "kernel-metadata.json").read_text())["id"].startswith("YOUR_KAGGLE_USERNAME/")
    assert "edit it or pass --user" in capsys.readouterr().out


def test_push_without_the_kaggle_command_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `kaggle` on PATH
    with pytest.raises(GanlibError, match=r"The `kaggle` command is not installed; `pip install kaggle`"):
        runner.push_kernel(tmp_path)


def test_stored_png_outputs_are_recompressed_without_changing_a_pixel():
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = np.repeat(rng.integers(0, 255, (40, 1, 4), dtype=np.uint8), 60, axis=1)
    pixels[..., 3] = 255  # opaque RGBA, as matplotlib writes it
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)
    output = {"output_type": "display_data", "data": {"image/png": base64.b64encode(buffer.getvalue()).decode()}}
    before = len(output["data"]["image/png"])
    after = runner._recompress_png(output)["data"]["image/png"]
    assert len(after) < before / 2
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(after))))
    assert decoded.shape == (40, 60, 3) and np.array_equal(decoded, pixels[..., :3])
