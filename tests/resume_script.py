"""A tiny GAN-like training run for the exact-resume test (tests/test_training.py).

    python tests/resume_script.py OUT_DIR TOTAL_STEPS

Resumes from OUT_DIR/checkpoints when there are any. With RESUME_KILL_AT=k in the environment the
process dies (os._exit(3), no cleanup) right after training step k, before that step's checkpoint.
At the end it writes OUT_DIR/final.pt: every weight, optimizer, EMA, pool and scheduler state.
Everything random is here on purpose: shuffled data with a random flip from the global torch RNG,
z from torch.randn, dropout in D, the image pool's coin flips.
"""
import os
import sys
from pathlib import Path

import torch
from torch import nn

from ganlib import training
from ganlib.tracking import Tracker


class TinyImages(torch.utils.data.Dataset):
    """12 deterministic 1x4x4 images; item i is fixed by i (flipped at random by the global RNG)."""

    def __init__(self):
        self.images = torch.linspace(-1, 1, 12 * 16).reshape(12, 1, 4, 4)
        self.epochs_seen = []

    def set_epoch(self, epoch):
        self.epochs_seen.append(epoch)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        return image.flip(-1) if torch.rand(()) < 0.5 else image


def main(out_dir: Path, total_steps: int) -> None:
    torch.set_num_threads(1)
    training.seed_everything(7)
    dev = training.pick_device("cpu", verbose=False)
    G = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(16, 1))
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    sched = training.linear_decay(opt_G, total_steps=total_steps, decay_start=total_steps // 2)
    ema = training.EMA(G, half_life_images=20, batch_size=4, rampup=0.5)
    pool = training.ImagePool(size=4)
    amp = training.Amp(dev, enabled=True)  # a no-op on CPU, but its (empty) state goes through the checkpoint
    state = dict(G=G, D=D, opt_G=opt_G, opt_D=opt_D, sched=sched, ema=ema, pool=pool, amp=amp)

    ckpt = training.Checkpointer(out_dir / "checkpoints", keep=2)
    start = ckpt.restore(state)
    first = start["next_step"] if start else 0
    tracker = Tracker(out_dir, resume_step=first if start else None)
    loader = training.StepLoader(TinyImages(), batch_size=4, seed=3)
    kill_at = int(os.environ.get("RESUME_KILL_AT", "-1"))
    bce = nn.BCEWithLogitsLoss()

    for step, real in loader.iterate(first, total_steps):
        z = torch.randn(real.shape[0], 3)
        fake = G(z)
        # D step on real vs pooled fakes
        loss_D = bce(D(real), torch.ones(len(real), 1)) + bce(D(pool(fake)), torch.zeros(len(real), 1))
        opt_D.zero_grad(set_to_none=True)
        amp.backward(loss_D)
        amp.step(opt_D)
        # G step (non-saturating loss)
        loss_G = bce(D(fake), torch.ones(len(real), 1))
        opt_G.zero_grad(set_to_none=True)
        amp.backward(loss_G)
        amp.step(opt_G)
        sched.step()
        ema.update(G)
        losses = training.check_finite(step, ckpt=ckpt, loss_D=loss_D, loss_G=loss_G)
        tracker.log(step, **losses, lr=sched.get_last_lr()[0])
        if step == kill_at:
            os._exit(3)
        if ckpt.due(step, every=3, total_steps=total_steps):
            ckpt.save(step, state, epoch=loader.epoch_of(step), extra={"note": "tiny"})
    tracker.close()
    torch.save({name: obj.state_dict() for name, obj in state.items()} | {"rng": torch.get_rng_state()},
               out_dir / "final.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
