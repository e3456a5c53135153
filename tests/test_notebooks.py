"""Every notebook runs headless at the smoke preset through the runner, and resumes from its run folder."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ganlib import runner

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = runner.available_notebooks()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebook_is_clean_small_and_carries_its_demo_outputs(name):
    path = REPO / "notebooks" / f"{name}.ipynb"
    assert path.stat().st_size < 3 * 1024 * 1024
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "papermill" not in nb.metadata
    assert all(set(c.metadata) <= {"tags"} for c in nb.cells), "cell metadata beyond tags"
    assert any(c.outputs for c in code), "commit the notebook with the outputs of its demo run"
    assert any("NBVAL_CHECK_OUTPUT" in c.source for c in code)
    # the parameters cell: every assignment line is a parameter papermill can read (a second '='
    # on a line, even in its comment, makes papermill skip it silently)
    params = next(c for c in code if "parameters" in c.metadata.get("tags", []))
    assignments = [l for l in params.source.splitlines() if "=" in l and not l.lstrip().startswith("#")]
    assert len(assignments) == len(runner.notebook_info(name)["parameters"])


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_smoke_run_writes_the_run_folder_and_a_second_run_resumes(name, tmp_path):
    out = tmp_path / name
    first = subprocess.run([sys.executable, "-m", "ganlib", "run", name, "--preset", "smoke", "--out", str(out),
                            "--quiet"], capture_output=True, text=True, cwd=REPO, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (out / f"{name}.ipynb").exists()
    assert list((out / "checkpoints").rglob("step_*.pt"))
    assert list((out / "samples").glob("*.png"))
    assert list(out.glob("*.jsonl"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics

    second = subprocess.run([sys.executable, "-m", "ganlib", "run", name, "--preset", "smoke", "--out", str(out),
                             "--quiet"], capture_output=True, text=True, cwd=REPO, timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already has checkpoints: resuming from" in second.stdout
    executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "Resuming from" in printed
    # Nothing left to train: the resumed weights are the finished run's, so the evaluation is identical.
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_store_outputs_refuses_a_run_of_another_version(tmp_path):
    name = NOTEBOOKS[0]
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    code.source += "\n# edited"
    nbformat.write(nb, tmp_path / "old.ipynb")
    with pytest.raises(runner.GanlibError, match="was not run from the current"):
        runner.store_outputs(name, tmp_path / "old.ipynb")
