"""What fetch.py and convert.py both do: show bytes moving, hash files, record the converted ones, and
name a model on the command line. Both import it; neither imports the other's helpers."""
from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import read_json
from ..trace import progress_bar
from ..weights import DEFAULT_MODELS_ROOT, MODELS, atomic_write

CHUNK_BYTES = 1 << 20
RECORD_NAME = "converted.json"  # beside converted files: their sizes and sha256 (they differ from min-dalle's)


def byte_bar(desc: str, total: int | None, show: bool, initial: int = 0) -> Any:
    """`trace.progress_bar` counting bytes (KiB, MiB, ...) that the caller feeds with `update(n)`."""
    return progress_bar(None, desc, show, total=total, initial=initial, unit="B", unit_scale=True,
                        unit_divisor=1024, leave=False)


def file_sha256(path: str | Path, progress: bool = False) -> str:
    """Hex sha256 of a file, read in chunks (with a bar: 3 GB take several seconds)."""
    path, digest = Path(path), hashlib.sha256()
    with open(path, "rb") as stream, byte_bar(f"sha256 {path.name}", path.stat().st_size, progress) as bar:
        while block := stream.read(CHUNK_BYTES):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def write_record(folder: Path, names: Iterable[str], origin: str) -> None:
    """Record the size and sha256 of converted files, so that fetch and verify know them as complete."""
    files = {name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)} for name in names}
    with atomic_write(folder / RECORD_NAME) as part:
        part.write_text(json.dumps({"converted_from": origin, "files": files}, indent=1) + "\n", encoding="utf-8")


def recorded(path: Path) -> dict[str, Any] | None:
    """{size, sha256} of `path` if a conversion wrote it (per its folder's record), else None."""
    try:
        entry = read_json(path.parent / RECORD_NAME)["files"][path.name]
    except (OSError, ValueError, KeyError, TypeError):  # no record, or not one, or this file is not in it
        return None
    return entry if isinstance(entry, dict) else None


def add_model_options(parser: argparse.ArgumentParser, model_help: str) -> None:
    """`--model` and `--models-root`, as the fetch, verify and convert commands take them."""
    parser.add_argument("--model", required=True, choices=MODELS, help=model_help)
    parser.add_argument("--models-root", default=DEFAULT_MODELS_ROOT, metavar="DIR",
                        help="folder in min-dalle's layout: dalle_bart_{mega,mini}/ and vqgan/ (default: %(default)s)")
