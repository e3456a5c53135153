"""`python -m ganlib list | run | kaggle | store | bench | demo`: the notebooks behind one command."""
from __future__ import annotations

import argparse
import sys

from .errors import GanlibError


def _params(pairs: list[list[str]] | None) -> dict:
    from .runner import parse_value

    return {key: parse_value(value) for key, value in (pairs or [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="every notebook with its title and parameters")

    run = sub.add_parser("run", help="run a notebook headless with papermill into a run folder")
    run.add_argument("name")
    run.add_argument("--preset", default="demo", choices=["smoke", "demo", "paper"])
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="a notebook parameter (repeatable); values are read as Python literals")
    run.add_argument("--out", help="run folder (default runs/NAME-PRESET); running again resumes")
    run.add_argument("--quiet", action="store_true", help="do not stream the notebook's output")

    kaggle = sub.add_parser("kaggle", help="write a Kaggle kernel folder for a notebook")
    kaggle.add_argument("name")
    kaggle.add_argument("--preset", default="paper", choices=["smoke", "demo", "paper"])
    kaggle.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"))
    kaggle.add_argument("--out", required=True, help="folder to write the kernel into")
    kaggle.add_argument("--user", help="Kaggle username (default: KAGGLE_USERNAME or ~/.kaggle/kaggle.json)")
    kaggle.add_argument("--resume-from", metavar="OWNER/KERNEL",
                        help="an earlier kernel whose output holds checkpoints to resume from")
    kaggle.add_argument("--push", action="store_true", help="also run `kaggle kernels push`")

    store = sub.add_parser("store", help="copy an executed run's outputs into notebooks/NAME.ipynb")
    store.add_argument("name")
    store.add_argument("executed", help="the executed notebook, e.g. runs/NAME-demo/NAME.ipynb")

    bench = sub.add_parser("bench", help="time training steps of a notebook's models")
    bench.add_argument("model", help="a model (dcgan, wgan_gp, cyclegan, multiscale_cyclegan, pix2pix, spade, colorization, stylegan2, dtn), or datasets")
    bench.add_argument("--size", type=int, default=None, help="image size (default: the model's paper size)")
    bench.add_argument("--batch", type=int, default=None, help="batch size (default: the model's paper batch)")
    bench.add_argument("--steps", type=int, default=10, help="timed steps after warm-up")
    bench.add_argument("--warmup", type=int, default=3)
    bench.add_argument("--device", default="auto")
    bench.add_argument("--amp", action="store_true", help="mixed precision (bf16 autocast)")
    bench.add_argument("--channels-last", action="store_true")
    bench.add_argument("--compile", action="store_true", help="torch.compile the networks")

    demo = sub.add_parser("demo", help="a Gradio page that runs a trained generator (pip install gradio)")
    demo.add_argument("name", help="the notebook whose model to serve (dtn)")
    demo.add_argument("--checkpoint", required=True, help="a checkpoint written by the notebook")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7860)

    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            from .runner import list_notebooks

            print(list_notebooks())
        elif args.command == "run":
            from .runner import run_notebook

            run_dir = run_notebook(args.name, args.preset, _params(args.param), args.out,
                                   log_output=not args.quiet)
            print(f"Done: {run_dir}")
        elif args.command == "kaggle":
            from .runner import write_kaggle_kernel

            write_kaggle_kernel(args.name, args.out, args.preset, _params(args.param), args.user,
                                args.resume_from, args.push)
        elif args.command == "store":
            from .runner import store_outputs

            print(f"Stored the outputs of {args.executed} in {store_outputs(args.name, args.executed)}")
        elif args.command == "demo":
            from .demo import launch

            launch(args.name, args.checkpoint, host=args.host, port=args.port)
        elif args.command == "bench":
            from .bench import run_bench

            run_bench(args.model, size=args.size, batch=args.batch, steps=args.steps, warmup=args.warmup,
                      device=args.device, amp=args.amp, channels_last=args.channels_last,
                      compile=args.compile)
    except GanlibError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
