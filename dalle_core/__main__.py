"""Command line: `python -m dalle_core {generate, shapes, fetch, verify, convert, ...}`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    add_train_cli(sub)
    add_evaluate_cli(sub)
    add_export_web_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
