"""Run the notebooks headless with papermill, and package them as Kaggle kernels.

`python -m ganlib run NAME` is papermill behind one command: it checks the parameters against
the notebook's `parameters` cell, runs into a run folder (which the notebook resumes from), and
turns a failing cell into one line that names the cell and the error.
"""
from __future__ import annotations

import ast
import base64
import io
import json
import os
import zipfile
from pathlib import Path

from . import REPO_ROOT
from .config import default_run_dir
from .errors import GanlibError

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = ("gan_basics", "night2day", "colorization", "watches_stylegan2", "dtn", "seg2scene")


def notebook_path(name: str) -> Path:
    if name not in NOTEBOOKS:
        raise GanlibError(f"Unknown notebook {name!r}; the notebooks are: {', '.join(NOTEBOOKS)}.")
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    if not path.exists():
        raise GanlibError(f"{name} has no notebook yet ({path} is missing); the ones present are: "
                          f"{', '.join(available_notebooks())}.")
    return path


def available_notebooks() -> list[str]:
    return [n for n in NOTEBOOKS if (NOTEBOOK_DIR / f"{n}.ipynb").exists()]


def notebook_info(name: str) -> dict:
    """Title, Kaggle datasets and parameters of a notebook (read with papermill.inspect_notebook)."""
    import nbformat
    import papermill

    path = notebook_path(name)
    meta = nbformat.read(path, as_version=4).metadata.get("ganlib", {})
    params = papermill.inspect_notebook(str(path))
    return dict(name=name, title=meta.get("title", name), kaggle_datasets=meta.get("kaggle_datasets", []),
                parameters=params)


def list_notebooks() -> str:
    lines = []
    for name in available_notebooks():
        info = notebook_info(name)
        lines.append(f"{name}: {info['title']}")
        for p in info["parameters"].values():
            lines.append(f"    {p['name']}: {p['inferred_type_name']} = {p['default']}  # {p['help']}")
    missing = [n for n in NOTEBOOKS if n not in available_notebooks()]
    if missing:
        lines.append(f"(not written yet: {', '.join(missing)})")
    return "\n".join(lines)


def parse_value(text: str):
    """A -p value as papermill's CLI reads it: a Python literal if it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_parameters(name: str, params: dict) -> None:
    known = notebook_info(name)["parameters"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise GanlibError(f"{name} has no parameter {', '.join(map(repr, unknown))}. "
                          f"Its parameters are: {', '.join(known)} (see `python -m ganlib list`).")


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = [p for p in (run_dir / "checkpoints").rglob("*.pt") if not p.name.startswith(".")]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def run_notebook(name: str, preset: str = "demo", params: dict | None = None, out: str | None = None,
                 log_output: bool = True) -> Path:
    """Execute notebooks/NAME.ipynb into the run folder; returns the run folder.

    Raises GanlibError naming the failing cell and its error.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    params = dict(params or {})
    check_parameters(name, {**params, "preset": preset})
    run_dir = Path(out) if out else default_run_dir(name, preset)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = latest_checkpoint(run_dir)
    if previous is not None:
        print(f"{run_dir} already has checkpoints: resuming from {previous.relative_to(run_dir)}.")
    params.update(preset=preset, out_dir=str(run_dir.resolve()))
    executed = run_dir / f"{name}.ipynb"
    print(f"Running {name} (preset {preset}) into {run_dir}; executed notebook: {executed}")
    try:
        papermill.execute_notebook(str(notebook_path(name)), str(executed), parameters=params,
                                   log_output=log_output, progress_bar=False, cwd=str(NOTEBOOK_DIR),
                                   kernel_name="python3")
    except PapermillExecutionError as err:
        first_line = next((l for l in err.source.splitlines() if l.strip()), "")
        raise GanlibError(f"{name}: cell {err.cell_index} (In [{err.exec_count}], starting "
                          f"{first_line[:60]!r}) failed with {err.ename}: {err.evalue.rstrip('.')}. "
                          f"The executed notebook with the full traceback is {executed}.") from None
    return run_dir


# --- Kaggle kernels -------------------------------------------------------------------------

def _ganlib_zip_b64() -> str:
    """The ganlib package source, zipped and base64-encoded, to ship inside a kernel notebook."""
    buffer = io.BytesIO()
    package = REPO_ROOT / "ganlib"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*.py")):
            zf.write(path, path.relative_to(REPO_ROOT).as_posix())
    return base64.b64encode(buffer.getvalue()).decode()


BOOTSTRAP = '''# Kaggle bootstrap (added by `python -m ganlib kaggle`): unpack the ganlib package shipped
# with this notebook and install what Kaggle's image lacks.
import base64, io, subprocess, sys, zipfile
zipfile.ZipFile(io.BytesIO(base64.b64decode(GANLIB_ZIP))).extractall("/kaggle/working/ganlib_src")
sys.path.insert(0, "/kaggle/working/ganlib_src")
subprocess.run([sys.executable, "-m", "pip", "install", "-q", "torchmetrics>=1.3", "albumentations>=1.4,<2.1",
                "papermill", "scikit-image"], check=False)
'''


def kaggle_username() -> str | None:
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    try:
        return json.loads((config_dir / "kaggle.json").read_text())["username"]
    except (OSError, ValueError, KeyError):
        return None


def write_kaggle_kernel(name: str, out: str, preset: str = "paper", params: dict | None = None,
                        user: str | None = None, resume_from: str | None = None,
                        push: bool = False) -> Path:
    """Write a Kaggle kernel folder: the parameterized notebook and kernel-metadata.json.

    `resume_from` is an earlier kernel ("owner/slug") whose output is attached via kernel_sources;
    the notebook then copies its checkpoints into /kaggle/working and resumes.
    """
    import nbformat
    import papermill

    params = dict(params or {})
    check_parameters(name, {**params, "preset": preset})
    info = notebook_info(name)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    code_file = folder / f"{name}.ipynb"
    params.setdefault("preset", preset)
    params.setdefault("dataset", "kaggle")
    # papermill's prepare-only mode injects the parameters without executing anything.
    papermill.execute_notebook(str(notebook_path(name)), str(code_file), parameters=params,
                               prepare_only=True, kernel_name="python3")
    nb = nbformat.read(code_file, as_version=4)
    for cell in nb.cells:  # the stored demo outputs would only confuse the new run's output
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    bootstrap = nbformat.v4.new_code_cell(f"GANLIB_ZIP = {_ganlib_zip_b64()!r}\n" + BOOTSTRAP)
    bootstrap.metadata["tags"] = ["ganlib-bootstrap"]
    nb.cells.insert(0, bootstrap)
    nbformat.write(nb, code_file)

    user = user or kaggle_username()
    if user is None:
        print("No Kaggle username found (KAGGLE_USERNAME or ~/.kaggle/kaggle.json); "
              "kernel-metadata.json says YOUR_KAGGLE_USERNAME: edit it or pass --user.")
        user = "YOUR_KAGGLE_USERNAME"
    slug = f"ganlib-{name}-{preset}".replace("_", "-")
    metadata = {
        "id": f"{user}/{slug}",
        "title": slug,
        "code_file": code_file.name,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_internet": True,
        "dataset_sources": list(info["kaggle_datasets"]),
        "kernel_sources": [resume_from] if resume_from else [],
        "competition_sources": [],
        "model_sources": [],
    }
    (folder / "kernel-metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"Wrote Kaggle kernel {metadata['id']} to {folder}")
    if push:
        push_kernel(folder)
    return folder


def push_kernel(folder: Path) -> None:
    import subprocess

    try:
        result = subprocess.run(["kaggle", "kernels", "push", "-p", str(folder)], capture_output=True,
                                text=True, timeout=300)
    except FileNotFoundError:
        raise GanlibError("The `kaggle` command is not installed; `pip install kaggle`, then "
                          f"`kaggle kernels push -p {folder}`.") from None
    if result.returncode != 0:
        raise GanlibError(f"`kaggle kernels push -p {folder}` failed: {(result.stderr or result.stdout).strip()} "
                          "Check your credentials (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY) "
                          "and your network.")
    print(result.stdout.strip())


# --- Storing a run's outputs in the committed notebook ---------------------------------------

def store_outputs(name: str, executed: str | os.PathLike) -> Path:
    """Copy the outputs of an executed run into notebooks/NAME.ipynb, keeping its sources.

    The committed notebook carries the outputs of its demo run. Only outputs and execution counts
    are copied (matched by cell id); papermill's injected-parameters cell and its metadata are left
    out, so the stored notebook still runs at whatever preset GANLIB_PRESET asks for.
    """
    import nbformat

    path = notebook_path(name)
    source = nbformat.read(path, as_version=4)
    ran = nbformat.read(executed, as_version=4)
    by_id = {c.get("id"): c for c in ran.cells if "injected-parameters" not in c.metadata.get("tags", [])}
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        done = by_id.get(cell.get("id"))
        if done is None or done.source != cell.source:
            raise GanlibError(f"{executed} was not run from the current {path} (cell {cell.get('id')} differs); "
                              "run it again before storing its outputs.")
        cell.outputs = [_recompress_png(output) for output in done.outputs]
        cell.execution_count = done.execution_count
    for cell in source.cells:  # keep only the metadata we set ourselves
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags",)}
    nbformat.write(source, path)
    return path


def _recompress_png(output):
    """Re-encode a PNG output losslessly (opaque RGBA as RGB, zlib's best effort): same pixels, fewer bytes."""
    from PIL import Image

    data = output.get("data", {})
    if "image/png" not in data:
        return output
    image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    if image.mode == "RGBA" and image.getextrema()[3] == (255, 255):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    if buffer.tell() < len(data["image/png"]) * 3 // 4:  # base64 is 4/3 of the bytes
        data["image/png"] = base64.b64encode(buffer.getvalue()).decode() + "\n"
    return output
