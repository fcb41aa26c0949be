"""Command line: `python -m dalle_core {generate, shapes, fetch, verify, convert, ...}`.

Every command computes on DALLE_CORE_THREADS torch threads, else one (as the notebooks do),
unless its --threads says otherwise. Bad input, or a file or server that cannot be used, ends
the command with one line on stderr and exit code 2 (`report_errors`), before any heavy work.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import thread_count

# bad input (hub's ConversionError and the model's CheckpointError are ValueErrors), and files or servers
# that cannot be used (FileNotFoundError; hub's DownloadError is an OSError)
USAGE_ERRORS = (ValueError, TypeError, OSError)


def _generate(args: argparse.Namespace) -> int:
    import torch

    from .pipeline import MinDalle
    from .weights import atomic_write

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"--out must end in .png, .jpg or .webp, got {out}")
    if not out.parent.exists():
        raise FileNotFoundError(f"the folder of --out, {out.parent}, does not exist")
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
    model = MinDalle(
        args.models_root, dtype=dtype, device=args.device, is_verbose=not args.quiet,
        model=args.model, allow_download=args.download,
    )
    image = model.generate_image(
        args.text, args.seed, args.grid_size, is_seamless=args.seamless, temperature=args.temperature,
        top_k=args.top_k, supercondition_factor=args.supercondition_factor, progress=not args.quiet,
    )
    with atomic_write(out) as partial:  # never leave a half-written image
        image.save(partial)
    if not args.quiet:
        print(f"wrote {out} ({image.width}x{image.height})")
    return 0


def _shapes(args: argparse.Namespace) -> int:
    from .lab.shapes import trace_shapes

    print(trace_shapes(args.model, args.grid_size).table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dalle_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="draw a grid of images for a prompt")
    g.add_argument("text")
    g.add_argument("--model", choices=["tiny", "mini", "mega"], default=None,
                   help="default: tiny (the course model) without --models-root, else mega")
    g.add_argument("--models-root", default=None, help="folder in min-dalle's layout")
    g.add_argument("--grid-size", type=int, default=1)
    g.add_argument("--seed", type=int, default=-1)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=256)
    g.add_argument("--supercondition-factor", type=float, default=16.0)
    g.add_argument("--seamless", action="store_true")
    g.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    g.add_argument("--device", default=None)
    g.add_argument("--download", action="store_true", help="fetch missing published files")
    g.add_argument("--out", default="generated.png")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=_generate)

    s = sub.add_parser("shapes", help="print every named tensor of one step, traced on the meta device")
    s.add_argument("--model", choices=["tiny", "mini", "mega"], default="mega")
    s.add_argument("--grid-size", type=int, default=4)
    s.set_defaults(func=_shapes)

    from .course.evaluate import add_cli as add_evaluate_cli
    from .course.train import add_cli as add_train_cli
    from .course.web_export import add_cli as add_export_web_cli
    from .hub.convert import add_cli as add_convert_cli
    from .hub.fetch import add_cli as add_fetch_cli

    add_fetch_cli(sub)
    add_convert_cli(sub)
    threads_help = "torch CPU threads (default: DALLE_CORE_THREADS, else 1)"
    for add_cli in (add_train_cli, add_evaluate_cli):  # the long computations: their own thread count
        add_cli(sub).add_argument("--threads", type=int, default=0, help=threads_help)
    add_export_web_cli(sub)
    return parser


def report_errors(command: Callable[[], int]) -> int:
    """Run `command`; bad input or an unusable file or server (`USAGE_ERRORS`) becomes one line
    on stderr and exit code 2, the convention of every command line here (bench/ too)."""
    try:
        return command()
    except USAGE_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    threads = getattr(args, "threads", 0) or thread_count()  # train and evaluate have --threads
    if threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads}")
    torch.set_num_threads(threads)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
