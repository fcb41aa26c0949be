"""What fetch.py and convert.py both do with files: show bytes moving, hash them, record the converted ones,
and report a command's result. Both import it; neither imports the other's helpers."""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..weights import atomic_write

CHUNK_BYTES = 1 << 20
RECORD_NAME = "converted.json"  # beside converted files: their sizes and sha256 (they differ from min-dalle's)


def byte_bar(desc: str, total: int | None, progress: bool, initial: int = 0) -> Any:
    """A progress bar counting bytes (KiB, MiB, ...); gone from the screen once done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=not progress, leave=False)


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
    record = path.parent / RECORD_NAME
    try:
        entry = json.loads(record.read_text(encoding="utf-8"))["files"].get(path.name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # no record, or not one
        return None
    return entry if isinstance(entry, dict) else None


def run_and_report(make: Callable[[], Iterable[Path]], errors: tuple[type[Exception], ...], done: str,
                   quiet: bool) -> int:
    """The tail of the `fetch` and `convert` commands: an expected error is one line on stderr and exit
    status 1; success lists the files (unless quiet) and is 0."""
    try:
        files = list(make())
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not quiet:
        print(done, *(f"  {path}" for path in files), sep="\n")
    return 0
