"""`python -m ganlib bench MODEL`: time training steps on the available device.

It measures; it does not pass or fail. Each model below builds its networks at the paper's
configuration and returns one full training step (all the networks' updates for one batch),
so ms/step compares like with like across devices and options.
"""
from __future__ import annotations

import importlib
import resource
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import GanlibError


@dataclass
class BenchSetup:
    step: Callable[[], None]      # one training step on a fixed random batch
    modules: list[torch.nn.Module]
    size: int
    batch: int


# `python -m ganlib bench NAME` times MODULE.bench_setup(...) of ganlib/MODULE.py: each paper's module
# builds its own networks at the paper configuration and returns one full training step.
MODELS = {
    "dcgan": "dcgan", "wgan_gp": "wgan_gp", "cyclegan": "cyclegan", "multiscale_cyclegan": "multiscale_cyclegan",
    "pix2pix": "pix2pix", "spade": "spade", "colorization": "colorization", "stylegan2": "stylegan2", "dtn": "dtn",
}


def bench_datasets(sizes=(32, 64, 128), count: int = 200) -> list[dict]:
    """Images/s of each embedded dataset, rendered from scratch (cache off) in this one process."""
    from .embedded.digits import PrintedDigits
    from .embedded.streets import StreetScenes
    from .embedded.watches import WristWatches

    makers = {"WristWatches": lambda size: WristWatches(count, size=size, cache=False),
              "StreetScenes (label, day, night)": lambda size: StreetScenes(count, height=size, cache=False),
              "PrintedDigits": lambda size: PrintedDigits(count, size=size, cache=False)}
    rows = []
    for name, make in makers.items():
        for size in sizes:
            dataset = make(size)
            dataset[0]  # warm-up (fonts, caches of constant tables)
            start = time.perf_counter()
            for i in range(1, count):
                dataset[i]
            rate = (count - 1) / (time.perf_counter() - start)
            rows.append(dict(dataset=name, size=size, images_per_s=rate))
            print(f"{name:<34} {size:4d} px: {rate:8.0f} items/s")
    return rows


def run_bench(model: str, size: int | None = None, batch: int | None = None, steps: int = 10,
              warmup: int = 3, device: str = "auto", amp: bool = False, channels_last: bool = False,
              compile: bool = False) -> dict:
    from .training import pick_device

    if model == "datasets":
        torch.set_num_threads(1)
        print(f"Embedded datasets, one process, one thread (torch {torch.__version__}):")
        return bench_datasets(sizes=(size,) if size else (32, 64, 128))
    if model not in MODELS:
        raise GanlibError(f"Unknown model {model!r}; bench knows: {', '.join(MODELS)}, and 'datasets'.")
    dev = pick_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(dev)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp)

    module = importlib.import_module(f"ganlib.{MODELS[model]}")
    setup = module.bench_setup(size, batch, dev, autocast, memory_format)
    if compile:
        for module in setup.modules:
            module.compile()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        setup.step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        setup.step()
    sync()
    ms = (time.perf_counter() - start) / steps * 1000
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        peak_what = "peak GPU memory allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_what = "peak process RSS"
    result = dict(model=model, device=str(dev), size=setup.size, batch=setup.batch, amp=amp,
                  channels_last=channels_last, compile=compile, ms_per_step=ms,
                  images_per_s=setup.batch / ms * 1000, peak_mib=peak)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"{model} on {name}: {setup.size}x{setup.size}, batch {setup.batch}, amp={amp}, "
          f"channels_last={channels_last}, compile={compile}")
    print(f"  {ms:.1f} ms/step, {result['images_per_s']:.1f} images/s, {peak_what} {peak:.0f} MiB "
          f"({steps} steps after {warmup} warm-up)")
    return result
