"""Fetch the published checkpoints into min-dalle's layout, resumably, and verify them.

min-dalle downloads on every construction, with no progress, no resume and no checksum.
Here a file is downloaded only when it is missing or incomplete, into `<file>.part`,
resumed with an HTTP `Range` request after a dropped connection, checked (size, and
sha256 where published) and only then moved into place with `os.replace`, so a final
path never holds half a file.

Public API (kept stable: `MinDalle` calls `fetch_model` when its caller allows downloads)

    fetch_model(model, models_root="pretrained", *, source="min-dalle", fallback=True,
                endpoint=None, base_url=None, progress=True, retries=4, timeout=30.0,
                backoff=1.0, check_sizes=True, keep_flax=False) -> ModelFiles
        Download what is missing of `model` ("mega" or "mini"); return its local paths.
        Makes no network contact at all when every file is present and complete.
        Raises DownloadError (a RuntimeError) naming the URL and what to do.

    verify(model, models_root="pretrained", *, check_hash=True, check_tensors=True,
           progress=False) -> list[str]
        Every problem found (missing, wrong size, wrong sha256, unreadable, wrong
        tensor keys or shapes), one message per problem; an empty list means usable.

    resolve_base_url(endpoint=None, base_url=None) -> str
        The URL the remote file names are appended to (see "Where from" below).

    add_cli(subparsers) -> None
        Registers the `fetch` and `verify` subcommands on an argparse subparsers object.

Where from, first match wins:

1. `base_url=` / `--base-url URL`: a plain directory that serves the remote names
   (`URL/encoder.pt`, `URL/vocab_mini.json`, ...), e.g. a lab file server.
2. `endpoint=` / `--endpoint URL`: a Hugging Face compatible host (a mirror such as
   https://hf-mirror.com); files come from `URL/kuprel/min-dalle/resolve/main/NAME`.
3. the `DALLE_CORE_BASE_URL` environment variable (like 1., for programs that call
   `fetch_model` without arguments, e.g. MinDalle on a lab machine);
4. the `HF_ENDPOINT` environment variable (like 2.; the Hugging Face convention);
5. https://huggingface.co.

Passing both `endpoint` and `base_url` is an error: they say different things.

Two sources, tried in turn: when the first answers HTTP 404 (a file or the whole
repository is gone) the other is tried, unless `fallback=False` / `--no-fallback`.

* "min-dalle": min-dalle's converted files, from the repo kuprel/min-dalle (above).
* "dalle-mini": the originals, in Flax format, from the repos dalle-mini/dalle-mini
  (Mini) or dalle-mini/dalle-mega (Mega): `flax_model.msgpack`, `config.json`,
  `vocab.json`, `merges.txt`; and dalle-mini/vqgan_imagenet_f16_16384:
  `flax_model.msgpack`, `config.json`. They are downloaded (resumably, like the
  others) into `{models_root}/flax/<repo name>/`, converted with `hub.convert` into
  the same layout, and deleted afterwards unless `keep_flax`. No size or sha256 of
  these files was found in public metadata, so they are checked by converting them:
  a cut or foreign file fails with a message naming the parameter. A plain directory
  (`base_url`) serves them as `URL/<repo name>/<file>`, e.g. `URL/dalle-mega/config.json`.
  The converted files are recorded, with their sizes and sha256, in a `converted.json`
  beside them; `fetch` and `verify` check converted files against that record.

A `.part` file is kept after a network failure (the next fetch resumes from it) and
deleted when its content is proven wrong (sha256 or size mismatch), since resuming
wrong bytes can never give the right file.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..weights import MODELS, CheckpointError, ModelFiles, model_files
from .convert import recorded, run_and_report

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_ID = "kuprel/min-dalle"
SOURCES = ("min-dalle", "dalle-mini")
DALLE_MINI_REPOS = {"mini": "dalle-mini/dalle-mini", "mega": "dalle-mini/dalle-mega"}
VQGAN_REPO = "dalle-mini/vqgan_imagenet_f16_16384"
FLAX_DIR = "flax"  # {models_root}/flax/<repo name>/: the Flax downloads, until converted
REVISION = "main"
DEFAULT_MODELS_ROOT = "pretrained"
BASE_URL_ENV = "DALLE_CORE_BASE_URL"
ENDPOINT_ENV = "HF_ENDPOINT"
CHUNK_BYTES = 1 << 20
USER_AGENT = "dalle_core-fetch (urllib)"


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name in the repo, which `ModelFiles` field it fills, and
    what it must look like (None where no exact figure was found)."""

    name: str
    role: str  # "vocab", "merges", "encoder", "decoder" or "detoker"
    size: int | None = None
    sha256: str | None = None


# Sizes and sha256 of the checkpoints are the Git LFS pointers of their upload commits
# in the Hugging Face repo kuprel/min-dalle (each file has exactly one commit there):
#   decoder.pt       commit 6b0462681555ae448dfb9271ad33b80c152f5d8f
#   encoder.pt       commit ff96bccc6f7ed0ffbba7a6427eed72bc5804f9a1
#   detoker.pt       commit a82a78547b0f9781a56e67666ae2ee3abb28d676
#   decoder_mini.pt  commit ea8ca202448533c71c48b982a200f158ed6ce137
#   encoder_mini.pt  commit ddb94355d6e4dac0b8759d7c98ff652098bfbcbd
# (https://huggingface.co/kuprel/min-dalle/commit/<commit>; the sha256 values also show
# on the repo's blob pages, and a copy in the Space JMalott/ai_architecture has the same
# pointers). The tokenizer files are plain Git files: the hub shows only rounded sizes
# (vocab*.json 802 kB, merges*.txt 461 kB), so their sizes stay None and the server's
# Content-Length is trusted for them.
_DETOKER = RemoteFile(
    "detoker.pt", "detoker", 186_899_831,
    "7e1ea14cb2a45661d4599d897779673ff93e2ad4202e311edc0c837e0d86933c",
)
REMOTE_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mega": (
        RemoteFile("vocab.json", "vocab"),
        RemoteFile("merges.txt", "merges"),
        RemoteFile(
            "encoder.pt", "encoder", 2_220_079_602,
            "76e7797b19625122e21138556e06b78cc84686ed5f5e5c42aa53c81ffb2f4bb8",
        ),
        RemoteFile(
            "decoder.pt", "decoder", 2_955_054_938,
            "fc94a4dff25b97575239eb21e1ae3d988beff95470fec9903d5dcad521ab9efa",
        ),
        _DETOKER,
    ),
    "mini": (
        RemoteFile("vocab_mini.json", "vocab"),
        RemoteFile("merges_mini.txt", "merges"),
        RemoteFile(
            "encoder_mini.pt", "encoder", 405_201_458,
            "158e1ff118b6e85c7b03577178758f94a24b6e1625e8f8ee6415fbde020b938b",
        ),
        RemoteFile(
            "decoder_mini.pt", "decoder", 470_515_674,
            "f8343c2bf982cb60d463417facc4debeeaabc9f238a1f7115ac5bdf778ea3901",
        ),
        _DETOKER,
    ),
}


# The originals. No exact size or hash was found for them (the hub's Git LFS pointers
# were not reachable from here), so the server's Content-Length is trusted and the
# conversion is the check.
FLAX_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "bart": (RemoteFile("config.json", "config"), RemoteFile("vocab.json", "vocab"),
             RemoteFile("merges.txt", "merges"), RemoteFile("flax_model.msgpack", "flax")),
    "vqgan": (RemoteFile("config.json", "config"), RemoteFile("flax_model.msgpack", "flax")),
}


class DownloadError(RuntimeError):
    """A file could not be downloaded; the message says which URL and what to do."""

    def __init__(self, message: str, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class _Retryable(Exception):
    """A failure that may go away on its own (dropped connection, 5xx, time-out)."""

    def __init__(self, message: str, status: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.timed_out = timed_out


# ---------------------------------------------------------------------------- where


def resolve_base_url(endpoint: str | None = None, base_url: str | None = None, repo: str = REPO_ID) -> str:
    """The directory URL (ending in '/') that the remote names of `repo` are appended to.

    Explicit arguments beat environment variables, so a flag always wins over a
    setting someone forgot in their shell. A plain directory serves min-dalle's files
    at its top and another repo's in a subfolder named like the repo.
    """
    if endpoint and base_url:
        raise ValueError(
            "give either endpoint (a Hugging Face compatible host) or base_url "
            "(a plain directory of the files), not both"
        )
    base_url = base_url or (None if endpoint else os.environ.get(BASE_URL_ENV))
    if base_url:
        subfolder = "" if repo == REPO_ID else repo.split("/")[-1] + "/"
        return _as_directory(base_url) + subfolder
    return _hub_directory(endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT, repo)


def _as_directory(url: str) -> str:
    if not urllib.parse.urlsplit(url).scheme:
        raise ValueError(f"{url!r} is not a URL; write it with its scheme, e.g. http://host/models/")
    return url.rstrip("/") + "/"


def _hub_directory(endpoint: str, repo: str = REPO_ID) -> str:
    return _as_directory(endpoint) + f"{repo}/resolve/{REVISION}/"


def file_url(remote: RemoteFile, directory: str) -> str:
    return directory + urllib.parse.quote(remote.name)


def plan(model: str, models_root: str | Path) -> list[tuple[RemoteFile, Path]]:
    """Pairs (published file, local path) of `model`; the small tokenizer files come
    first so a wrong mirror shows up before gigabytes are on the way."""
    if model not in REMOTE_FILES:
        raise ValueError(f"unknown model {model!r}; the published models are {MODELS}")
    files = model_files(models_root, model)
    return [(remote, getattr(files, remote.role)) for remote in REMOTE_FILES[model]]


def part_path(path: Path) -> Path:
    """Where the bytes of `path` accumulate until it is complete and checked."""
    return path.with_name(path.name + ".part")


def fetch_command(model: str, models_root: str | Path, source: str | None = None) -> str:
    option = f" --source {source}" if source else ""
    return f"python -m dalle_core fetch --model {model} --models-root {models_root}{option}"


# ---------------------------------------------------------------------------- fetch


def is_complete(path: Path, remote: RemoteFile) -> bool:
    """Present with the published size (any size where none is known), or with the
    size its conversion recorded.

    A file only reaches its final path whole (see `download`), so presence is
    enough when the size is unknown; `verify` does the expensive checks.
    """
    if not path.is_file():
        return False
    size = path.stat().st_size
    entry = recorded(path)
    if entry is not None and entry.get("size") == size:
        return True
    return remote.size is None or size == remote.size


def fetch_model(
    model: str,
    models_root: str | Path = DEFAULT_MODELS_ROOT,
    *,
    source: str = "min-dalle",
    fallback: bool = True,
    endpoint: str | None = None,
    base_url: str | None = None,
    progress: bool = True,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 1.0,
    check_sizes: bool = True,
    keep_flax: bool = False,
) -> ModelFiles:
    """Download the files of `model` that are missing or incomplete; return all paths.

    No URL is even computed when everything is present, so an offline machine with
    the files in place never touches the network. `source` is tried first; when it
    answers HTTP 404 and `fallback` is on, the other source of `SOURCES` is tried.
    `retries` is the number of extra attempts per file after a retryable failure
    (dropped connection, HTTP 5xx or 429, time-out), waiting backoff, 2*backoff,
    4*backoff, ... seconds before each; `timeout` is how many seconds without data make
    an attempt fail. `check_sizes=False` lets the dalle-mini source convert a model of
    other sizes than Mini / Mega (tests, custom models); `keep_flax` keeps its downloads.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    todo = [(remote, path) for remote, path in plan(model, models_root) if not is_complete(path, remote)]
    if not todo:
        return model_files(models_root, model)
    resolve_base_url(endpoint, base_url)  # refuses endpoint + base_url before any request
    order = [source] + ([s for s in SOURCES if s != source] if fallback else [])
    options = dict(progress=progress, retries=retries, timeout=timeout, backoff=backoff)
    failures: list[DownloadError] = []
    for i, name in enumerate(order):
        try:
            if name == "min-dalle":
                _fetch_min_dalle(model, models_root, todo, endpoint, base_url, options)
            else:
                _fetch_dalle_mini(model, models_root, todo, endpoint, base_url, options, check_sizes, keep_flax)
            return model_files(models_root, model)
        except DownloadError as error:
            if error.status != 404:
                raise
            failures.append(error)
            if i + 1 < len(order):
                print(f"{name} answered HTTP 404 ({error.url}); trying the {order[i + 1]} source", file=sys.stderr)
    if len(failures) == 1:
        raise failures[0]
    tried = "\n".join(f"- {name}: {error}" for name, error in zip(order, failures))
    raise DownloadError(f"every source answered HTTP 404:\n{tried}", failures[0].url, 404)


def _fetch_min_dalle(
    model: str, models_root: str | Path, todo: list[tuple[RemoteFile, Path]], endpoint: str | None,
    base_url: str | None, options: dict[str, Any],
) -> None:
    directory = resolve_base_url(endpoint, base_url)
    for remote, path in todo:
        download(file_url(remote, directory), path, size=remote.size, sha256=remote.sha256,
                 hint=fetch_command(model, models_root), **options)


def _fetch_dalle_mini(
    model: str, models_root: str | Path, todo: list[tuple[RemoteFile, Path]], endpoint: str | None,
    base_url: str | None, options: dict[str, Any], check_sizes: bool, keep_flax: bool,
) -> None:
    """Download the Flax originals of the parts still missing, convert them, record them."""
    from .convert import check_flax_config, convert_into

    roles = {remote.role for remote, _ in todo}
    parts = []  # (part, repo) for the parts with a missing file
    if roles - {"detoker"}:
        parts.append(("bart", DALLE_MINI_REPOS[model]))
    if "detoker" in roles:
        parts.append(("vqgan", VQGAN_REPO))
    hint = fetch_command(model, models_root, "dalle-mini")
    folders, origin = {}, {}
    for part, repo in parts:
        directory = resolve_base_url(endpoint, base_url, repo)
        folder = Path(models_root) / FLAX_DIR / repo.split("/")[-1]
        for remote in FLAX_FILES[part]:  # config.json first: a wrong model shows before the gigabytes
            if not (folder / remote.name).is_file():  # only whole files reach their final path
                download(file_url(remote, directory), folder / remote.name, size=remote.size,
                         sha256=remote.sha256, hint=hint, **options)
            if remote.role == "config":
                check_flax_config(part, folder, model if check_sizes else None)
        folders[part], origin["dalle" if part == "bart" else "vqgan"] = folder, directory
    convert_into(folders.get("bart"), folders.get("vqgan"), model, models_root, check_sizes=check_sizes,
                 progress=options["progress"], origin=origin)
    if not keep_flax:
        for part, folder in folders.items():
            for remote in FLAX_FILES[part]:
                (folder / remote.name).unlink(missing_ok=True)
            _remove_empty(folder)
        _remove_empty(Path(models_root) / FLAX_DIR)


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (someone's own files) or already gone
        folder.rmdir()


def download(
    url: str,
    path: str | Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 1.0,
    hint: str = "",
) -> Path:
    """Download `url` to `path` through `path.part`, resuming, retrying and checking.

    `path` appears only complete: an interrupted download leaves at most the .part.
    """
    path = Path(path)
    part = part_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    failure: _Retryable | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _transfer(url, part, size=size, timeout=timeout, progress=progress)
            break
        except _Retryable as error:
            failure = error
    else:
        raise _gave_up(url, part, failure, retries + 1, hint)
    _check_part(url, part, size, sha256, hint, progress)
    os.replace(part, path)
    return path


def _transfer(url: str, part: Path, *, size: int | None, timeout: float, progress: bool) -> None:
    """One attempt: request what is missing of `part` and append it.

    Raises _Retryable for failures worth another try, DownloadError for the others.
    Returns only when `part` holds the whole file (as far as the server says).
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()  # longer than the file can be: it is not a prefix of it
        offset = 0
    if size is not None and offset == size:
        return  # a previous run got every byte; it is checked before use
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        _raise_for_status(url, part, error, offset)
        return  # a 416 that proved the .part complete
    except urllib.error.URLError as error:
        raise _network_failure(error.reason) from None
    except (OSError, http.client.HTTPException) as error:
        raise _network_failure(error) from None
    with response:
        offset, total = _start_position(url, part, response, offset, size)
        _stream(response, part, offset, total, progress, url)


def _raise_for_status(url: str, part: Path, error: urllib.error.HTTPError, offset: int) -> None:
    status = error.code
    error.close()
    if status == 416 and offset:
        total = _total_from_content_range(error.headers.get("Content-Range", ""))
        if total == offset:
            return  # the .part already holds the whole file
        part.unlink(missing_ok=True)
        raise _Retryable(f"HTTP 416 for a resume at byte {offset}; starting over", status)
    if status in (408, 425, 429) or status >= 500:
        raise _Retryable(f"HTTP {status} {error.reason}", status)
    if status == 404:
        raise DownloadError(
            f"HTTP 404 Not Found: {url}\nThe server has no such file. Check the endpoint or "
            "mirror (--endpoint / HF_ENDPOINT, or --base-url for a plain directory): it must "
            "serve the files of the Hugging Face repo kuprel/min-dalle (or, for --source "
            "dalle-mini, dalle-mini/dalle-mini, dalle-mini/dalle-mega and "
            f"{VQGAN_REPO}) under their remote names.",
            url, status,
        )
    raise DownloadError(
        f"HTTP {status} {error.reason}: {url}\nThe server refused the download; check the "
        "URL, and that the mirror needs no login.",
        url, status,
    )


def _network_failure(reason: Any) -> _Retryable:
    timed_out = isinstance(reason, (socket.timeout, TimeoutError))
    return _Retryable("timed out" if timed_out else f"{type(reason).__name__}: {reason}", timed_out=timed_out)


def _start_position(
    url: str, part: Path, response: Any, offset: int, size: int | None
) -> tuple[int, int | None]:
    """Where the response's bytes go in the file, and the file's total size.

    A server that ignores Range answers 200 with the whole file: the .part then
    restarts from zero instead of gaining a second copy of its first bytes.
    """
    headers = response.headers
    _refuse_web_page(url, headers)
    if response.status == 206:
        content_range = headers.get("Content-Range", "")
        start = _start_from_content_range(content_range)
        if start != offset:
            part.unlink(missing_ok=True)
            raise _Retryable(f"the server resumed at byte {start}, not {offset}; starting over")
        total = _total_from_content_range(content_range)
    else:
        offset = 0
        length = headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    if size is not None and total is not None and total != size:
        raise DownloadError(
            f"{url} is {total} bytes but the published file is {size} bytes; the server "
            "sends another file (an old or modified copy?). Check the mirror or URL.",
            url,
        )
    return offset, total


def _refuse_web_page(url: str, headers: Any) -> None:
    """Mirrors and captive portals answer 200 with an HTML page; never save that."""
    if headers.get_content_type() == "text/html":
        raise DownloadError(
            f"{url} answered with a web page, not the file; the URL is probably wrong "
            "or needs a login. Check the endpoint / base URL.",
            url,
        )


def _start_from_content_range(value: str) -> int | None:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _total_from_content_range(value: str) -> int | None:
    # "bytes 100-199/200" or "bytes */200"
    total = value.rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _stream(response: Any, part: Path, offset: int, total: int | None, progress: bool, url: str) -> None:
    """Append the body to `part`, flushing as it goes so a crash keeps what arrived."""
    from tqdm.auto import tqdm

    name = url.rsplit("/", 1)[-1]
    written = offset
    with open(part, "ab" if offset else "wb") as out, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=name, disable=not progress, leave=False,
    ) as bar:
        try:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as error:
            raise _network_failure(error) from None
    if total is not None and written < total:
        raise _Retryable(f"connection closed after {written} of {total} bytes")


def _check_part(url: str, part: Path, size: int | None, sha256: str | None, hint: str, progress: bool) -> None:
    """Refuse a .part whose bytes are not the published file, and delete it."""
    actual = part.stat().st_size
    if size is not None and actual != size:
        part.unlink()
        raise DownloadError(
            f"{url}: got {actual} bytes, expected {size}; the partial file was deleted. "
            f"Run the fetch again{_run(hint)}.",
            url,
        )
    if sha256 is not None:
        digest = file_sha256(part, progress=progress)
        if digest != sha256:
            part.unlink()
            raise DownloadError(
                f"{url}: sha256 {digest} does not match the published {sha256}; the "
                "download was corrupted or the server sends another file. The partial file "
                f"was deleted; run the fetch again{_run(hint)}, or try another mirror.",
                url,
            )


def _gave_up(url: str, part: Path, failure: _Retryable | None, attempts: int, hint: str) -> DownloadError:
    kept = part.stat().st_size if part.exists() else 0
    resume = (
        f" {kept} bytes are kept in {part}; running the fetch again{_run(hint)} resumes "
        "from there (delete that file to start over)."
        if kept else ""
    )
    if failure is not None and failure.timed_out:
        what = f"timed out (no data for the time-out) on each of {attempts} attempt(s)"
        advice = " Check the network, or use a mirror (--endpoint / HF_ENDPOINT), or raise --timeout."
    elif failure is not None and failure.status is not None and failure.status >= 500:
        what = f"failed with HTTP {failure.status} on each of {attempts} attempt(s)"
        advice = " The server has a problem; try again later or use a mirror (--endpoint / HF_ENDPOINT)."
    else:
        what = f"failed {attempts} time(s); last: {failure}"
        advice = " Check the network or use a mirror (--endpoint / HF_ENDPOINT)."
    status = failure.status if failure is not None else None
    return DownloadError(f"download of {url} {what}.{advice}{resume}", url, status)


def _run(hint: str) -> str:
    return f" (`{hint}`)" if hint else ""


def file_sha256(path: str | Path, progress: bool = False) -> str:
    """Hex sha256 of a file, read in chunks (a bar, since 3 GB take several seconds)."""
    from tqdm.auto import tqdm

    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as stream, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
        desc=f"sha256 {path.name}", disable=not progress, leave=False,
    ) as bar:
        while block := stream.read(CHUNK_BYTES):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


# ---------------------------------------------------------------------------- verify


def verify(
    model: str,
    models_root: str | Path = DEFAULT_MODELS_ROOT,
    *,
    check_hash: bool = True,
    check_tensors: bool = True,
    progress: bool = False,
) -> list[str]:
    """Every problem with the local files of `model`, each saying what to do.

    Hashing reads every byte (about 5.4 GB for mega); `check_hash=False` skips it.
    The tensor check opens each checkpoint (memory-mapped) and compares its keys and
    shapes with the package's own modules built on the meta device (no memory for
    weights); while those modules do not exist it only checks that the file opens.
    `check_tensors=False` skips opening the checkpoints.
    """
    command = fetch_command(model, models_root)
    problems: list[str] = []
    for remote, path in plan(model, models_root):
        problem = _file_problem(remote, path, model, command, check_hash, check_tensors, progress)
        if problem:
            problems.append(problem)
    return problems


def _file_problem(
    remote: RemoteFile, path: Path, model: str, command: str, check_hash: bool, check_tensors: bool,
    progress: bool,
) -> str | None:
    redo = f"delete it and run `{command}`"
    if not path.is_file():
        part = part_path(path)
        partial = f" ({part} holds a partial download that the fetch resumes)" if part.exists() else ""
        return f"{path} is missing (published as {remote.name}){partial}; run `{command}`"
    actual = path.stat().st_size
    entry = recorded(path)
    if entry is not None:  # converted here from the Flax originals: its own size and hash
        remote = RemoteFile(f"{remote.name} (converted)", remote.role, entry.get("size"), entry.get("sha256"))
    if remote.size is not None and actual != remote.size:
        return (
            f"{path} has {actual} bytes, the published {remote.name} has {remote.size}: "
            f"truncated or another file; {redo}"
        )
    if actual == 0:
        return f"{path} is empty; {redo}"
    if check_hash and remote.sha256 is not None:
        digest = file_sha256(path, progress=progress)
        if digest != remote.sha256:
            return (
                f"{path} has sha256 {digest}, the published {remote.name} has {remote.sha256}: "
                f"corrupt or another file; {redo}"
            )
    content = _content_problem(remote.role, path, model, check_tensors)
    return f"{content}; {redo}" if content else None


def _content_problem(role: str, path: Path, model: str, check_tensors: bool) -> str | None:
    if role == "vocab":
        return _vocab_problem(path)
    if role == "merges":
        return _merges_problem(path)
    if check_tensors:
        return _checkpoint_problem(role, path, model)
    return None


def _vocab_problem(path: Path) -> str | None:
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{path} is not valid UTF-8 JSON ({error})"
    if not isinstance(vocab, dict) or not vocab or not all(isinstance(v, int) for v in vocab.values()):
        return f"{path} is not a vocabulary (a JSON object of subword -> id)"
    return None


def _merges_problem(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # as the tokenizer reads it
    except UnicodeDecodeError as error:
        return f"{path} is not valid UTF-8 ({error})"
    merges = [line for line in lines[1:] if line.strip()]  # the first line is a header
    if not merges or any(len(line.split()) != 2 for line in merges):
        return f"{path} is not a BPE merges file (a header line, then one pair per line)"
    return None


def _checkpoint_problem(role: str, path: Path, model: str) -> str | None:
    from ..weights import check_state_dict, read_state_dict

    try:
        state = read_state_dict(path)
        module = expected_module(role, model)
        if module is not None:
            check_state_dict(module, state, path)
    except CheckpointError as error:
        return str(error)
    return None


def expected_module(role: str, model: str) -> Any:
    """The package's module for this checkpoint, built on the meta device (shapes only, no memory)."""
    import torch

    from ..config import DalleConfig
    from ..decoder import DalleBartDecoder
    from ..encoder import DalleBartEncoder
    from ..vqgan import VQGanDetokenizer

    with torch.device("meta"):
        if role == "detoker":
            return VQGanDetokenizer()
        config = DalleConfig.from_name(model)
        return DalleBartEncoder(config) if role == "encoder" else DalleBartDecoder(config)


# ---------------------------------------------------------------------------- command line


def add_cli(subparsers: Any) -> None:
    """Register `fetch` and `verify` on an argparse subparsers object; each sets
    `func(args) -> int`, the exit status."""
    fetch = subparsers.add_parser(
        "fetch",
        help="download the checkpoints of a model (only what is missing; resumes)",
        description=(
            "Download the published files into min-dalle's layout: min-dalle's converted files, "
            "or (--source dalle-mini, or after a 404) dalle-mini's Flax originals, converted on "
            "arrival. Already complete files are not touched (no network contact if all are there)."
        ),
    )
    _add_common(fetch)
    source = fetch.add_mutually_exclusive_group()
    source.add_argument(
        "--endpoint", metavar="URL",
        help=(
            "Hugging Face compatible host, e.g. https://hf-mirror.com "
            f"(default: ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT})"
        ),
    )
    source.add_argument(
        "--base-url", metavar="URL",
        help=f"plain directory serving the remote file names, e.g. http://host/models/ (default: ${BASE_URL_ENV})",
    )
    fetch.add_argument(
        "--source", choices=SOURCES, default="min-dalle",
        help="min-dalle: its converted files (kuprel/min-dalle); dalle-mini: the Flax originals, "
             "converted after download. The other is tried when this one answers 404 (default: min-dalle)",
    )
    fetch.add_argument("--no-fallback", action="store_true", help="do not try the other source after a 404")
    fetch.add_argument("--keep-flax", action="store_true",
                       help=f"keep the dalle-mini downloads in MODELS_ROOT/{FLAX_DIR}/ after converting them")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.add_argument("--retries", type=int, default=4, help="extra attempts per file (default 4)")
    fetch.add_argument(
        "--timeout", type=float, default=30.0, help="seconds without data before an attempt fails (default 30)"
    )
    fetch.set_defaults(func=_run_fetch)

    check = subparsers.add_parser(
        "verify",
        help="check the local files of a model (exit status 1 lists the problems)",
        description="Check presence, size, sha256 and tensor shapes of a model's files.",
    )
    _add_common(check)
    check.add_argument("--no-hash", action="store_true", help="skip the sha256 check (fast)")
    check.set_defaults(func=_run_verify)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=MODELS, help="mega (better, 5.4 GB) or mini (1.1 GB)")
    parser.add_argument(
        "--models-root", default=DEFAULT_MODELS_ROOT, metavar="DIR",
        help=f"folder holding dalle_bart_{{mega,mini}}/ and vqgan/ (default: {DEFAULT_MODELS_ROOT})",
    )


def _run_fetch(args: argparse.Namespace) -> int:
    return run_and_report(
        lambda: fetch_model(
            args.model, args.models_root, source=args.source, fallback=not args.no_fallback,
            endpoint=args.endpoint, base_url=args.base_url, progress=not args.quiet,
            retries=args.retries, timeout=args.timeout, keep_flax=args.keep_flax,
        ),
        (DownloadError, ValueError), f"the {args.model} model's files are in place:", args.quiet,
    )


def _run_verify(args: argparse.Namespace) -> int:
    problems = verify(args.model, args.models_root, check_hash=not args.no_hash, progress=True)
    if not problems:
        print(f"the {args.model} model's files under {args.models_root} are complete and readable")
        return 0
    print(f"{len(problems)} problem(s) with the {args.model} model's files:", file=sys.stderr)
    for problem in problems:
        print(f"- {problem}", file=sys.stderr)
    return 1
