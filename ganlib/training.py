"""Training support every notebook shares.

The notebooks keep the training step itself (the paper's algorithm, in full view). This module
holds what sits around it and is the same for every paper:

    dev = pick_device("auto")
    seed_everything(seed)
    amp = Amp(dev, enabled=True, dtype="bf16")
    memory_format = setup_backends(dev, channels_last=False)
    ckpt = Checkpointer(out_dir / "checkpoints", keep=3)
    state = dict(G=G, D=D, opt_G=opt_G, opt_D=opt_D, ema=ema, amp=amp)
    start = ckpt.restore(state)                    # None, or dict(step, next_step, epoch, extra, path)
    first = start["next_step"] if start else 0
    loader = StepLoader(dataset, batch_size, seed=seed)
    for step, batch in progress(loader.iterate(first, total_steps), total=total_steps, initial=first):
        ...
        check_finite(step, ckpt=ckpt, loss_D=loss_D, loss_G=loss_G)
        if ckpt.due(step, every=500, total_steps=total_steps):
            ckpt.save(step, state, epoch=loader.epoch_of(step))

Exact resume: a run killed at any step and restarted from its last checkpoint produces bitwise the
same weights as an uninterrupted run (on the same machine and software). That needs three things,
all handled here: every stateful object is in the checkpoint, the RNG states are in it too, and the
data order is a pure function of (seed, step), not of how far an iterator got before the crash.
On a GPU, bitwise resume also needs seed_everything(seed, deterministic=True): otherwise
cudnn.benchmark may pick different (differently rounding) kernels in the restarted process.
"""
from __future__ import annotations

import copy
import math
import os
import random
import re
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ganlib.errors import DataError, GanlibError, NonFiniteLossError

__all__ = [
    "pick_device", "seed_everything", "setup_backends", "Amp", "Checkpointer", "StepLoader", "EMA",
    "ImagePool", "linear_decay", "check_finite", "progress", "count_parameters", "summary",
]


# ----------------------------------------------------------------------------------------------
# Device, seeds, backends, mixed precision
# ----------------------------------------------------------------------------------------------

def pick_device(device: str | torch.device = "auto", verbose: bool = True) -> torch.device:
    """"auto" picks cuda, then mps, then cpu. An explicit device that is not there is an error."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanlibError(f"device={device!r} was asked for but CUDA is not available here. "
                          "Use device='auto' (falls back to cpu) or run on a machine with a GPU.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GanlibError(f"device={device!r} was asked for but MPS is not available here. Use device='auto'.")
    if verbose:
        extra = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
        print(f"Device: {dev}{extra}")
    return dev


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device).

    deterministic=True also asks for deterministic kernels (slower; cudnn.benchmark off). It is off
    by default: seeding alone makes CPU runs repeatable, and exact resume does not need it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices
    if deterministic:
        # cuBLAS needs this set before its first use to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def setup_backends(device: torch.device, channels_last: bool = False) -> torch.memory_format:
    """Fast defaults on a GPU; returns the memory format to move models and batches to.

    cudnn.benchmark picks the fastest convolution per input shape (GAN batches have fixed shapes),
    unless seed_everything(deterministic=True) asked for determinism. TF32 matmuls are allowed:
    GAN training does not need full fp32 mantissas. channels_last only helps conv nets on CUDA.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.are_deterministic_algorithms_enabled():
            torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if channels_last:
            return torch.channels_last
    return torch.contiguous_format


class Amp:
    """Automatic mixed precision in one object: an autocast context plus a GradScaler for fp16.

        with amp.autocast():
            loss = ...
        opt.zero_grad(set_to_none=True)
        amp.backward(loss)
        amp.unscale_(opt)      # only if clipping gradients
        amp.step(opt)          # optimizer step + scaler update

    Only used on CUDA; elsewhere it is a no-op (autocast on CPU is slow for conv nets and changes
    numerics for no gain). bf16 has fp32's exponent range so needs no loss scaling; fp16 does.
    Put it in the checkpoint state: its state_dict is the scaler's (empty when no scaler).
    """

    def __init__(self, device: torch.device, enabled: bool = True, dtype: str = "bf16"):
        if dtype not in ("bf16", "fp16"):
            raise GanlibError(f"Amp dtype={dtype!r} is not supported. Use 'bf16' or 'fp16'.")
        self.device = torch.device(device)
        self.enabled = bool(enabled) and self.device.type == "cuda"
        if self.enabled and dtype == "bf16" and not torch.cuda.is_bf16_supported():
            print("Amp: this GPU has no bf16; using fp16 with loss scaling instead.")
            dtype = "fp16"
        self.dtype = torch.bfloat16 if dtype == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and self.dtype == torch.float16)

    def autocast(self):
        if not self.enabled:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        self.scaler.scale(loss).backward(retain_graph=retain_graph)

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring gradients back to true scale before clipping them."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        # With fp16 the scaler skips the step when gradients overflowed, then lowers the scale.
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scaler.load_state_dict(state)

    def __repr__(self) -> str:
        return f"Amp(enabled={self.enabled}, dtype={str(self.dtype).replace('torch.', '')})"


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------

_CKPT_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def _rng_states() -> dict:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def _set_rng_states(states: dict) -> None:
    # RNG states must be CPU ByteTensors whatever map_location did to the rest of the file.
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in states["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            print(f"Warning: the checkpoint has RNG states for {len(cuda_states)} CUDA devices, this machine "
                  f"has {torch.cuda.device_count()}; CUDA random numbers will differ from the original run.")
    if "mps" in states and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["mps"].cpu())


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. Directories cannot be opened this way on Windows.
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _state_device(state: dict) -> torch.device:
    """The device of the first tensor found in a model or optimizer of `state` (cpu if none)."""
    for obj in state.values():
        if isinstance(obj, nn.Module):
            for t in obj.parameters():
                return t.device
    return torch.device("cpu")


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class Checkpointer:
    """Step-numbered checkpoints in one directory, written atomically, the last `keep` kept.

    Each file `step_00000120.pt` holds state_dict() of every object in `state` (models, optimizers,
    schedulers, EMA, ImagePool, Amp: anything with state_dict/load_state_dict), the step and epoch,
    `extra` (plain python values) and the RNG states, so a resumed run continues the same random stream.
    """

    def __init__(self, directory: str | Path, keep: int = 3):
        if keep < 1:
            raise GanlibError(f"Checkpointer keep={keep}: keep at least 1 checkpoint.")
        self.directory = Path(directory)
        self.keep = keep
        self.last_good: Path | None = None  # newest checkpoint known to be complete
        self.stopped_at: int | None = None  # set by check_finite: no saving after a NaN

    def due(self, step: int, every: int, total_steps: int | None = None) -> bool:
        """True after every `every`-th step (step is 0-based) and after the last step."""
        return (step + 1) % every == 0 or (total_steps is not None and step + 1 == total_steps)

    def paths(self) -> list[Path]:
        """Checkpoint files by step, oldest first (temp files excluded; validity not checked)."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _CKPT_NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def save(self, step: int, state: dict, epoch: int | None = None, extra: dict | None = None) -> Path:
        if self.stopped_at is not None:
            raise GanlibError(f"Not saving a checkpoint at step {step}: a loss became non-finite at step "
                              f"{self.stopped_at}, so the weights may hold NaN. Resume from "
                              f"{self.last_good or 'the start'} instead.")
        payload = {
            "step": int(step),
            "epoch": epoch,
            "extra": extra or {},
            "state": {name: _state_dict_of(name, obj) for name, obj in state.items()},
            "rng": _rng_states(),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step_{step:08d}.pt"
        # Write next to the target, make it durable, then rename: a crash leaves either the old set
        # of files or the new one, never a half-written step_*.pt.
        tmp = self.directory / f".{path.name}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(self.directory)
        self.last_good = path
        # Only now that the new file is in place may old ones go.
        for old in self.paths()[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def _load_newest(self, map_location) -> tuple[Path, dict] | None:
        for path in reversed(self.paths()):
            try:
                payload = torch.load(path, map_location=map_location, weights_only=False)
                if not (isinstance(payload, dict) and {"step", "state", "rng"} <= payload.keys()):
                    raise ValueError("not a ganlib checkpoint")
                return path, payload
            except Exception as err:  # truncated, corrupted or foreign file: use the one before
                print(f"Warning: skipping unreadable checkpoint {_display_path(path)} "
                      f"({type(err).__name__}: {str(err)[:120]}); trying the previous one.")
        return None

    def latest(self) -> Path | None:
        """The newest checkpoint that loads, or None. Unreadable files are skipped with a warning."""
        found = self._load_newest("cpu")
        return found[0] if found else None

    def restore(self, state: dict, map_location: str | torch.device | None = None,
                strict: bool = True) -> dict | None:
        """Load the newest good checkpoint into the objects of `state` and restore the RNG states.

        Returns None when there is nothing to resume, else dict(step, next_step, epoch, extra, path):
        the checkpoint was saved after `step`, so training continues at `next_step` = step + 1.
        """
        if map_location is None:
            map_location = _state_device(state)
        found = self._load_newest(map_location)
        if found is None:
            return None
        path, payload = found
        saved = payload["state"]
        missing = [k for k in state if k not in saved]
        unused = [k for k in saved if k not in state]
        if strict and (missing or unused):
            raise GanlibError(
                f"Checkpoint {_display_path(path)} does not match this run: missing {missing}, "
                f"not used {unused}. It was written by a different setup; use a new output directory "
                f"or delete {_display_path(self.directory)} to start over (or pass strict=False).")
        for name, obj in state.items():
            if name in saved:
                obj.load_state_dict(saved[name])
        _set_rng_states(payload["rng"])
        self.last_good = path
        step = payload["step"]
        print(f"Resuming from {_display_path(path)} (step {step})")
        return dict(step=step, next_step=step + 1, epoch=payload.get("epoch"),
                    extra=payload.get("extra", {}), path=path)


def _state_dict_of(name: str, obj: Any) -> dict:
    if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
        raise GanlibError(f"state[{name!r}] is a {type(obj).__name__}, which has no state_dict/"
                          "load_state_dict. Put plain python values in ckpt.save(..., extra={...}) instead.")
    return obj.state_dict()


# ----------------------------------------------------------------------------------------------
# Data: a step-indexed loader so a resumed run sees exactly the same batches
# ----------------------------------------------------------------------------------------------

class _EpochBatches:
    """Batch sampler yielding [(epoch, index), ...] for steps start..end-1.

    Each epoch's order is torch.randperm(n) under a generator seeded from (seed, epoch), so the batch
    of any step is known without replaying the steps before it.
    """

    def __init__(self, loader: "StepLoader", start_step: int, end_step: int):
        self.loader, self.start_step, self.end_step = loader, start_step, end_step

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)

    def __iter__(self):
        order, order_epoch = None, None
        for step in range(self.start_step, self.end_step):
            epoch, position = divmod(step, self.loader.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = self.loader.order(epoch), epoch
            indices = order[position * self.loader.batch_size:(position + 1) * self.loader.batch_size]
            yield [(epoch, i) for i in indices]


class _EpochIndexed(torch.utils.data.Dataset):
    """Wraps a dataset so items are asked for as (epoch, index); tells the dataset its epoch.

    set_epoch is called in whichever process reads the item (main or worker), so it works with
    num_workers > 0, where each worker holds its own copy of the dataset.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.epoch = None

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        if epoch != self.epoch and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.epoch = epoch
        return self.dataset[index]


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; give numpy and python the same seed.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class StepLoader:
    """Deterministic, step-indexed batches: step s reads batch s % steps_per_epoch of epoch
    s // steps_per_epoch, in an order fixed by (seed, epoch).

    iterate(start_step, end_step) yields (step, batch); start it at a checkpoint's next_step and the
    run sees exactly the batches an uninterrupted run would. The dataset's set_epoch(e) is called
    when it has one. With num_workers > 0, datasets should draw any randomness from (seed, epoch, index)
    (as ganlib's embedded datasets do) rather than from the worker's global RNG.
    """

    def __init__(self, dataset, batch_size: int, seed: int = 0, num_workers: int = 0, drop_last: bool = True,
                 shuffle: bool = True, pin_memory: bool = False, collate_fn=None):
        try:
            n = len(dataset)
        except TypeError:
            raise DataError(f"StepLoader needs a map-style dataset with __len__; got {type(dataset).__name__}.") from None
        if n == 0:
            raise DataError(f"{type(dataset).__name__} is empty: there is nothing to train on. "
                            "Check the data path or that the download/extraction finished.")
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size}: it must be at least 1.")
        if drop_last and batch_size > n:
            raise DataError(f"batch_size={batch_size} is larger than the dataset ({n} items) and drop_last=True, "
                            f"so an epoch has no full batch. Use batch_size <= {n} or drop_last=False.")
        self.dataset = dataset
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 100003 + epoch)

    def order(self, epoch: int) -> list[int]:
        """The item order of one epoch."""
        if not self.shuffle:
            return list(range(self.n))
        return torch.randperm(self.n, generator=self._epoch_generator(epoch)).tolist()

    def iterate(self, start_step: int, end_step: int) -> Iterator[tuple[int, Any]]:
        if start_step >= end_step:
            return
        batches = _EpochBatches(self, start_step, end_step)
        # One DataLoader for the whole range (workers are started once, not every epoch). Its
        # generator is seeded from (seed, start epoch): it seeds the workers, and since the loader
        # never touches the global torch RNG, the training's own random stream is left alone.
        loader = torch.utils.data.DataLoader(
            _EpochIndexed(self.dataset), batch_sampler=batches, num_workers=self.num_workers,
            pin_memory=self.pin_memory, collate_fn=self.collate_fn, worker_init_fn=_seed_worker,
            generator=self._epoch_generator(self.epoch_of(start_step)),
            persistent_workers=False)
        yield from zip(range(start_step, end_step), loader)

    def __len__(self) -> int:
        return self.steps_per_epoch


# ----------------------------------------------------------------------------------------------
# EMA of weights, image history pool, learning-rate schedule
# ----------------------------------------------------------------------------------------------

class EMA:
    """Exponential moving average of a model's weights (the generator that gets evaluated).

        shadow = beta * shadow + (1 - beta) * param        (buffers are copied as they are)

    Give either `decay` (beta itself, e.g. 0.999) or, as StyleGAN2 does, a half-life in images:
        beta = 0.5 ** (batch_size / half_life_images)      (so after half_life_images images a
                                                            weight's old value has half its say)
    rampup (optional, StyleGAN2-ADA uses 0.05): early in training the half-life is capped at
    rampup * (images seen so far) (or updates seen, in decay mode) so the average is not
    dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float | None = None, half_life_images: float | None = None,
                 batch_size: int | None = None, rampup: float | None = None):
        if (decay is None) == (half_life_images is None):
            raise GanlibError("EMA needs exactly one of decay=... (e.g. 0.999) or half_life_images=... "
                              "(with batch_size=...).")
        if half_life_images is not None and not batch_size:
            raise GanlibError("EMA(half_life_images=...) also needs batch_size=... to turn it into a decay.")
        if decay is not None and not 0.0 <= decay < 1.0:
            raise GanlibError(f"EMA decay={decay} must be in [0, 1).")
        self.decay = decay
        self.half_life_images = half_life_images
        self.batch_size = batch_size
        self.rampup = rampup
        self.num_updates = 0
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    def beta(self) -> float:
        """The averaging weight the next update will use."""
        if self.rampup is None:
            if self.decay is not None:
                return self.decay
            return 0.5 ** (self.batch_size / self.half_life_images)
        # Measure the half-life in images (half-life mode) or in updates (decay mode), then cap it
        # at rampup * what has been seen before this update, as StyleGAN2-ADA's ema_rampup does.
        if self.half_life_images is not None:
            half_life, unit = self.half_life_images, self.batch_size
        else:
            half_life, unit = (math.log(0.5) / math.log(self.decay) if self.decay > 0 else 0.0), 1
        half_life = min(half_life, self.num_updates * unit * self.rampup)
        return 0.5 ** (unit / half_life) if half_life > 0 else 0.0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        beta = self.beta()
        for (name, s), p in zip(self.shadow.named_parameters(), model.parameters()):
            if s.shape != p.shape:
                raise GanlibError(f"EMA.update: parameter {name} has shape {tuple(p.shape)}, the EMA copy "
                                  f"{tuple(s.shape)}. Pass the same model the EMA was built from.")
            if s.is_floating_point():
                s.mul_(beta).add_(p.detach(), alpha=1.0 - beta)
            else:
                s.copy_(p)
        for s, b in zip(self.shadow.buffers(), model.buffers()):
            s.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"shadow": self.shadow.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state["shadow"])
        self.num_updates = state["num_updates"]


class ImagePool:
    """The history of generated images of Shrivastava et al. (2017), used by CycleGAN's discriminators.

    Until `size` images are stored each new image is stored and returned. After that each new image
    is, with probability 1/2, swapped with a random stored one (the stored one is returned), else
    returned as is. D thus also sees older fakes, which damps G/D oscillation. Returned images are
    detached (they are D's input only). Draws from the global torch RNG, which checkpoints save.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                k = int(torch.randint(0, self.size, ()).item())
                out.append(self.images[k])
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    __call__ = query

    def __len__(self) -> int:
        return len(self.images)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [t.clone() for t in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.size = state["size"]
        self.images = list(state["images"])


class _LinearDecay:
    # A callable object rather than a lambda: LambdaLR.state_dict stores such objects' fields.
    def __init__(self, total_steps: int, decay_start: int):
        self.total_steps, self.decay_start = total_steps, decay_start

    def __call__(self, step: int) -> float:
        if step < self.decay_start:
            return 1.0
        return max(0.0, (self.total_steps - step) / (self.total_steps - self.decay_start))


def linear_decay(optimizer: torch.optim.Optimizer, total_steps: int, decay_start: int) -> torch.optim.lr_scheduler.LambdaLR:
    """CycleGAN's schedule: lr constant until decay_start, then linearly down to 0 at total_steps.

        lr(s) = lr0                                               s < decay_start
        lr(s) = lr0 * (total_steps - s) / (total_steps - decay_start)   after
    Call sched.step() once per training step.
    """
    if not 0 <= decay_start < total_steps:
        raise GanlibError(f"linear_decay: decay_start={decay_start} must be in [0, total_steps={total_steps}).")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _LinearDecay(total_steps, decay_start))


# ----------------------------------------------------------------------------------------------
# Loop helpers
# ----------------------------------------------------------------------------------------------

def check_finite(step: int, ckpt: Checkpointer | None = None, **losses) -> dict[str, float]:
    """Stop training at the first NaN/inf loss; returns the losses as floats (for the progress bar).

    One device sync for all losses. With ckpt given, the error names the last good checkpoint and
    the checkpointer refuses to save from then on (the weights may already hold NaN).
    """
    names = list(losses)
    values = [v.detach().float().reshape(()) if torch.is_tensor(v) else torch.tensor(float(v))
              for v in losses.values()]
    if len({v.device for v in values}) > 1:
        values = [v.cpu() for v in values]
    floats = torch.stack(values).cpu().tolist() if values else []
    for name, value in zip(names, floats):
        if not math.isfinite(value):
            if ckpt is not None:
                ckpt.stopped_at = step
                last = ckpt.last_good
                if last is None:
                    paths = ckpt.paths()
                    last = paths[-1] if paths else None
            else:
                last = None
            where = (f"the last good checkpoint is kept in {_display_path(last)} (resume re-runs from it)"
                     if last is not None else "no checkpoint was saved yet (a rerun starts from step 0)")
            raise NonFiniteLossError(
                f"{name} became {value} at step {step}. Training stopped; {where}. "
                "Try a lower learning rate, disabling AMP, or gradient clipping.")
    return dict(zip(names, floats))


def _in_notebook_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress(iterable: Iterable, total: int | None = None, initial: int = 0, desc: str | None = None, **kwargs):
    """A tqdm bar that suits terminals, notebooks and papermill logs.

    A widget bar in Jupyter when ipywidgets is there; otherwise a text bar that refreshes at most
    every 0.1 s on a terminal and every 10 s elsewhere (notebook outputs, CI logs), so logs stay short.
    `total` is the final step number (the bar counts from `initial`).
    """
    from tqdm.std import tqdm as text_tqdm

    bar_class = text_tqdm
    if _in_notebook_kernel():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as bar_class
        except ImportError:
            pass
    interactive = bar_class is not text_tqdm or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    kwargs.setdefault("mininterval", 0.1 if interactive else 10.0)
    kwargs.setdefault("dynamic_ncols", interactive)
    return bar_class(iterable, total=total, initial=initial, desc=desc, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _shape_text(out: Any) -> str:
    if torch.is_tensor(out):
        return "x".join(str(d) for d in out.shape)
    if isinstance(out, (tuple, list)):
        return "(" + ", ".join(_shape_text(o) for o in out) + ")"
    if isinstance(out, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in out.items()) + "}"
    return type(out).__name__


def summary(model: nn.Module, example: Any) -> str:
    """A table of the model's top-level children: output shape and parameter count of each.

    `example` is an input tensor, a tuple of input tensors, or an input shape such as (1, 100)
    (zeros on the model's device). The forward pass runs in eval mode under no_grad, with the RNG
    states forked, so calling summary() changes nothing in the model or the random stream. The text
    is deterministic (no addresses), fit for checked notebook outputs.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if isinstance(example, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in example):
        args = (torch.zeros(tuple(example), device=device),)
    elif isinstance(example, (tuple, list)):
        args = tuple(example)
    else:
        args = (example,)
    shapes: dict[str, list[str]] = {}
    hooks = [child.register_forward_hook(lambda m, i, o, name=name: shapes.setdefault(name, []).append(_shape_text(o)))
             for name, child in model.named_children()]
    was_training = model.training
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=fork_devices):
            out = model(*args)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows = [("layer", "type", "output shape", "params")]
    for name, child in model.named_children():
        called = shapes.get(name, ["-"])
        shape = called[0] if len(called) == 1 else f"{called[-1]} (x{len(called)} calls)"
        rows.append((name, type(child).__name__, shape, f"{count_parameters(child):,}"))
    rows.append(("output", "", _shape_text(out), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    total, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    lines.append(f"{type(model).__name__}: {total:,} parameters ({trainable:,} trainable)")
    return "\n".join(lines)
