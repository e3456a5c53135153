"""ganlib: the shared package behind the GAN paper notebooks.

One readable module per paper (models and losses, each equation beside its code), plus what
every notebook shares: embedded datasets, real-data loaders, training support, tracking,
metrics, plots and the papermill runner (`python -m ganlib`).
"""
from pathlib import Path

__version__ = "0.1.0"

# The repository root when installed in editable mode (notebooks/, data/, runs/ live here).
REPO_ROOT = Path(__file__).resolve().parent.parent
