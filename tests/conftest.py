import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402

# Two cores on CI: keep each test to one intra-op thread so parallel work does not thrash.
torch.set_num_threads(1)
