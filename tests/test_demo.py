"""The Gradio demo's pure function (no browser): any input image through a trained G, and clear errors."""
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib import demo, dtn, training
from ganlib.errors import GanlibError


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return dtn.digits_transfer(features=8, f_widths=(8, 16, 32, 128)).eval()


def _reference(G, rgb_uint8_square):
    """G on a 32x32 RGB uint8 image, by hand: the numbers translate() must reproduce."""
    x = torch.from_numpy(np.array(rgb_uint8_square)).permute(2, 0, 1).float()[None] / 127.5 - 1
    with torch.no_grad():
        out = G(x)[0, 0]
    return ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def test_translate_matches_G_on_an_image_of_its_own_size(G):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = demo.translate(rgb, G, display_size=32)  # no resizing either way
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    expected = _reference(G, rgb)
    assert np.array_equal(out[..., 0], expected) and np.array_equal(out[..., 2], expected)  # grey as RGB


@pytest.mark.parametrize("image", [
    np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8),  # RGB, not square
    np.random.default_rng(2).integers(0, 256, (300, 200), dtype=np.uint8),  # grey 2-D
    np.random.default_rng(3).random((40, 40, 1)),  # floats in [0, 1], one channel
    np.random.default_rng(4).random((40, 40, 3)) * 255.0,  # floats in [0, 255]
    Image.new("RGB", (123, 45), (10, 200, 30)),  # PIL
])
def test_translate_accepts_any_size_and_kind(G, image):
    out = demo.translate(image, G)
    assert out.shape == (demo.DISPLAY_SIZE, demo.DISPLAY_SIZE, 3) and out.dtype == np.uint8


def test_translate_reads_a_file(G, tmp_path):
    Image.new("RGB", (64, 48), (200, 10, 10)).save(tmp_path / "digit.png")
    assert demo.translate(str(tmp_path / "digit.png"), G).shape == (256, 256, 3)


def test_as_rgb_composites_transparency_on_white_and_marks_drawings():
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent canvas ...
    rgba[4:6, 4:6] = (0, 0, 0, 255)  # ... with a black dot
    rgb, drawing = demo.as_rgb(rgba)
    assert drawing and rgb.shape == (10, 10, 3)
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[5, 5].tolist() == [0, 0, 0]
    _, drawing = demo.as_rgb(np.full((4, 4, 3), 9, np.uint8))
    assert not drawing
    # Gradio's sketchpad value: a dict with the composite
    rgb, drawing = demo.as_rgb({"background": None, "layers": [], "composite": rgba})
    assert drawing and rgb[5, 5].tolist() == [0, 0, 0]


def test_fit_drawing_crops_to_the_ink_and_centres_it():
    canvas = np.full((200, 200, 3), 255, np.uint8)
    canvas[10:40, 150:170] = 0  # a 30 x 20 stroke in a corner
    fitted = demo.fit_drawing(canvas)
    side = int(np.ceil(30 / demo.INK_FRACTION))
    assert fitted.shape == (side, side, 3)
    ink_rows = np.flatnonzero((fitted < 128).any(axis=(1, 2)))
    assert ink_rows[0] == (side - 30) // 2 and len(ink_rows) == 30  # centred vertically
    blank = np.full((20, 20, 3), 255, np.uint8)
    assert demo.fit_drawing(blank) is blank


def test_a_drawing_is_fitted_before_G(G):
    small = np.zeros((400, 400, 4), np.uint8)
    small[20:60, 30:50] = (0, 0, 0, 255)  # a small stroke in a corner of a big transparent canvas
    fitted = demo.fit_drawing(demo.as_rgb(small)[0])
    square = np.asarray(Image.fromarray(fitted).resize((32, 32), Image.LANCZOS))
    assert np.array_equal(demo.translate(small, G, display_size=32)[..., 0], _reference(G, square))


@pytest.mark.parametrize("bad, message", [
    ("no/such/file.png", "No image file at no/such/file.png"),
    (42, "translate\\(\\) got a int; pass an image"),
    (np.zeros((4, 4, 2), np.uint8), "array of shape \\(4, 4, 2\\)"),
    (np.full((4, 4), np.nan), "NaN or infinite"),
    ({"composite": None, "background": None, "layers": []}, "The drawing is empty"),
])
def test_bad_inputs_say_what_is_wrong(G, bad, message):
    with pytest.raises(GanlibError, match=message):
        demo.translate(bad, G)


def test_translate_leaves_the_model_in_its_mode(G):
    G.train()
    demo.translate(np.zeros((8, 8, 3), np.uint8), G)
    assert G.g.training
    G.eval()


def test_launch_refuses_other_notebooks_and_missing_checkpoints(tmp_path):
    with pytest.raises(GanlibError, match="There is no demo for 'gan_basics'"):
        demo.launch("gan_basics", tmp_path / "x.pt")
    pytest.importorskip("gradio")
    with pytest.raises(GanlibError, match="does not exist"):
        demo.launch("dtn", tmp_path / "x.pt")


def test_without_gradio_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(GanlibError, match="pip install gradio"):
        demo.launch("dtn", tmp_path / "x.pt")
    with pytest.raises(GanlibError, match="pip install gradio"):
        demo.build_app(None, {"task": "digits"})


def test_cli_demo_reports_errors_as_one_line(tmp_path, capsys):
    from ganlib.cli import main

    assert main(["demo", "dtn", "--checkpoint", str(tmp_path / "missing.pt")]) == 1
    assert "error:" in capsys.readouterr().err


def test_build_app_wires_the_two_endpoints(G, tmp_path):
    pytest.importorskip("gradio")
    ckpt = training.Checkpointer(tmp_path)
    ckpt.save(0, dict(G=G), extra={"dtn": dtn.describe("digits", 8, f_widths=[8, 16, 32, 128])})
    G2, info = dtn.transfer_from_checkpoint(tmp_path)
    app = demo.build_app(G2, info)
    names = {dep.get("api_name") for dep in app.config["dependencies"]}
    assert {"translate", "translate_drawing"} <= names
