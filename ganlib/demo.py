"""A Gradio page that runs a trained Domain Transfer Network, as the seed project deployed one.

    python -m ganlib demo dtn --checkpoint runs/dtn-demo/checkpoints/dtn      # then open http://127.0.0.1:7860

Upload a picture (any size; RGB, grey or with transparency) or draw one, and G = g(f(x)) maps it into the
target domain: a printed digit becomes a handwritten one (digits checkpoint), a face photo an emoji (faces).

`translate(image, G)` is the whole computation, a pure function the tests call without a browser; the page
only wires it to an upload box and a sketchpad. Gradio is an optional extra (pip install gradio, or
pip install -e ".[demo]"): it is imported only when the page is built.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import dtn
from .errors import GanlibError

DISPLAY_SIZE = 256  # side of the returned image: G's 32x32 or 64x64 output, enlarged to be seen
# A drawing is cropped to its ink and padded so the ink fills this fraction of the square, as the printed
# digits fill 45-75% of their crops: a small digit in a corner of a big canvas would not look like the source.
INK_FRACTION = 0.7


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.round(rgb).astype(np.uint8)


def as_rgb(image) -> tuple[np.ndarray, bool]:
    """Any image the page or a caller may pass -> (uint8 H x W x 3 RGB, whether it is a drawing).

    Accepts a numpy array (H x W grey, H x W x 1/3/4; uint8, or floats in [0, 1] or [0, 255]), a PIL image,
    a file path, or the dict Gradio's sketchpad/editor returns ({"composite": ..., "layers": ...}).
    Transparency is composited on white (a sketch's empty canvas is transparent).
    """
    drawing = False
    if isinstance(image, dict):  # gr.Sketchpad / gr.ImageEditor value
        drawing = True
        image = image.get("composite") if image.get("composite") is not None else image.get("background")
        if image is None:
            raise GanlibError("The drawing is empty: draw a digit (or a face) on the canvas, then press the button.")
    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            raise GanlibError(f"No image file at {image}; pass an existing .png/.jpg or an array.")
        from .data import load_rgb

        return load_rgb(image), drawing
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA") if "A" in image.getbands() else image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise GanlibError(f"translate() got a {type(image).__name__}; pass an image: a numpy array (H x W or "
                          "H x W x 3/4), a PIL image, a file path, or a Gradio sketchpad value.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or min(image.shape[:2]) < 1:
        raise GanlibError(f"translate() got an array of shape {image.shape}; expected H x W (grey), H x W x 3 (RGB) "
                          "or H x W x 4 (RGBA) with H, W >= 1.")
    if image.dtype != np.uint8:
        values = image.astype(np.float32)
        if not np.isfinite(values).all():
            raise GanlibError("translate() got an image with NaN or infinite values.")
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0  # floats in [0, 1] or already in [0, 255]
        image = np.clip(values * scale, 0, 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        drawing = drawing or bool((image[..., 3] < 255).any())  # a transparent canvas: a drawing
        image = _composite_on_white(image)
    return image, drawing


def fit_drawing(rgb: np.ndarray, ink_fraction: float = INK_FRACTION) -> np.ndarray:
    """Crop a drawing to its ink (pixels away from the background colour) and pad it to a square where the
    ink fills `ink_fraction` of the side. A blank drawing is returned unchanged."""
    corners = np.stack([rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]]).astype(np.int16)
    background = np.median(corners, axis=0)
    ink = np.abs(rgb.astype(np.int16) - background).max(axis=2) > 40
    if not ink.any():
        return rgb
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = rgb[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = int(np.ceil(max(crop.shape[:2]) / ink_fraction))
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = background.round().astype(np.uint8)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    return canvas


def _square(rgb: np.ndarray) -> np.ndarray:
    """The central square of an image (G's source images are square)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top:top + side, left:left + side]


@torch.no_grad()
def translate(image, G: dtn.DomainTransfer, display_size: int = DISPLAY_SIZE) -> np.ndarray:
    """Map one image through G = g(f(x)): returns a uint8 display_size x display_size x 3 RGB array.

    The input is made RGB (transparency on white), a drawing is cropped to its ink, the central square is
    resized to f's input size, scaled to [-1, 1], and G's output (grey for digits) is enlarged for display.
    """
    rgb, drawing = as_rgb(image)
    if drawing:
        rgb = fit_drawing(rgb)
    size = G.f_size
    square = Image.fromarray(_square(rgb)).resize((size, size), Image.LANCZOS)
    x = torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]
    device = next(G.g.parameters()).device
    was_training = G.training
    G.eval()
    try:
        out = G(x.to(device))[0].float().cpu()
    finally:
        G.train(was_training)
    if out.shape[0] == 1:
        out = out.expand(3, -1, -1)
    pixels = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.asarray(Image.fromarray(pixels).resize((display_size, display_size), Image.BILINEAR))


def _import_gradio():
    try:
        import gradio
    except ImportError as err:
        raise GanlibError("The demo page needs Gradio, an optional extra: pip install gradio "
                          "(or pip install -e \".[demo]\"). translate() works without it.") from err
    return gradio


def build_app(G: dtn.DomainTransfer, info: dict):
    """The Gradio Blocks page: an upload tab and a drawing tab, each with its API endpoint
    (/translate and /translate_drawing, callable with gradio_client)."""
    gr = _import_gradio()
    task = info.get("task", "digits")
    what = ("a printed digit (a house number, a digit in any font) or draw one" if task == "digits"
            else "a face photo, cropped to the face")
    target = "a handwritten digit" if task == "digits" else "an emoji"

    def run(image):
        if image is None:
            raise gr.Error("Upload or draw an image first.")
        try:
            return translate(image, G)
        except GanlibError as err:
            raise gr.Error(str(err)) from err

    with gr.Blocks(title="Domain Transfer Network") as app:
        gr.Markdown(f"# Domain Transfer Network ({task})\nTaigman, Polyak & Wolf, *Unsupervised Cross-Domain Image "
                    f"Generation* (ICLR 2017). Give it {what}; G = g(f(x)) returns {target} that f sees as the same.")
        with gr.Row():
            with gr.Column():
                with gr.Tab("Upload"):
                    upload = gr.Image(type="numpy", image_mode="RGB", label="source image")
                    go_upload = gr.Button("Transfer", variant="primary")
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(type="numpy", image_mode="RGBA", canvas_size=(256, 256), label="draw here")
                    go_sketch = gr.Button("Transfer drawing", variant="primary")
            output = gr.Image(type="numpy", label=f"G(x): {target}")
        go_upload.click(run, inputs=upload, outputs=output, api_name="translate")
        go_sketch.click(run, inputs=sketch, outputs=output, api_name="translate_drawing")
    return app


def launch(name: str, checkpoint: str | os.PathLike, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the demo of notebook `name` (only "dtn" has one) with G from `checkpoint`, until interrupted."""
    if name != "dtn":
        raise GanlibError(f"There is no demo for {name!r}: only the dtn notebook has one "
                          "(python -m ganlib demo dtn --checkpoint PATH).")
    _import_gradio()  # fail before loading weights
    G, info = dtn.transfer_from_checkpoint(checkpoint)
    print(f"Serving the DTN ({info['task']}) of {checkpoint} on http://{host}:{port}")
    build_app(G, info).launch(server_name=host, server_port=port)
