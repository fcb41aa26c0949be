"""Get the published checkpoints into min-dalle's layout, resumably, and verify them (`fetch`, `verify`).

A missing file is downloaded into `<file>.part`, resumed by an HTTP `Range` request after a dropped connection
(in this run or a later one), checked (size, and sha256 where published), and only then moved into place. Two
sources, the other tried after an HTTP 404: min-dalle's files, and dalle-mini's Flax originals (convert.py).
Not huggingface_hub's `hf_hub_download`: it deletes its partial file when a download fails, needs the Hub's ETag
and X-Repo-Commit headers (no plain directory as `base_url`), and reads time-out and retries process-wide.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ..tokenizer import read_merges, read_vocab
from ..weights import DEFAULT_MODELS_ROOT, ModelFiles, check_checkpoint, fetch_command, model_files
from .convert import FLAX_CONFIG, FLAX_FILES, VQGAN_REPO_NAME, check_flax_config, convert_into
from .files import CHUNK_BYTES, add_model_options, byte_bar, file_sha256, recorded

DEFAULT_ENDPOINT, REPO_ID = "https://huggingface.co", "kuprel/min-dalle"
BASE_URL_ENV, ENDPOINT_ENV = "DALLE_CORE_BASE_URL", "HF_ENDPOINT"
SOURCES = ("min-dalle", "dalle-mini")
DALLE_MINI_REPOS = {"mini": "dalle-mini/dalle-mini", "mega": "dalle-mini/dalle-mega"}
VQGAN_REPO = f"dalle-mini/{VQGAN_REPO_NAME}"
FLAX_DIR = "flax"  # {models_root}/flax/<repo name>/: the Flax downloads, until converted
TOKENIZER_READERS = {"vocab": read_vocab, "merges": read_merges}  # verify: each raises a ValueError naming the file


class RemoteFile(NamedTuple):
    """One published file: its name in the repo, the `ModelFiles` field it fills, its size and sha256."""
    name: str
    role: str  # "vocab", "merges", "encoder", "decoder" or "detoker"
    size: int | None = None
    sha256: str | None = None


# The Git LFS pointers of the checkpoints' upload commits in kuprel/min-dalle (docs/weights.md names the
# commits). The tokenizer files are plain Git files with no exact size on the hub: Content-Length is trusted.
_PUBLISHED = {
    "encoder.pt": (2_220_079_602, "76e7797b19625122e21138556e06b78cc84686ed5f5e5c42aa53c81ffb2f4bb8"),
    "decoder.pt": (2_955_054_938, "fc94a4dff25b97575239eb21e1ae3d988beff95470fec9903d5dcad521ab9efa"),
    "encoder_mini.pt": (405_201_458, "158e1ff118b6e85c7b03577178758f94a24b6e1625e8f8ee6415fbde020b938b"),
    "decoder_mini.pt": (470_515_674, "f8343c2bf982cb60d463417facc4debeeaabc9f238a1f7115ac5bdf778ea3901"),
    "detoker.pt": (186_899_831, "7e1ea14cb2a45661d4599d897779673ff93e2ad4202e311edc0c837e0d86933c"),
}
REMOTE_FILES: dict[str, tuple[RemoteFile, ...]] = {  # the small tokenizer files first: a wrong mirror shows early
    model: tuple(RemoteFile(name, role, *_PUBLISHED.get(name, (None, None))) for role, name in zip(
        ("vocab", "merges", "encoder", "decoder", "detoker"),
        (f"vocab{suffix}.json", f"merges{suffix}.txt", f"encoder{suffix}.pt", f"decoder{suffix}.pt", "detoker.pt")))
    for model, suffix in (("mega", ""), ("mini", "_mini"))
}


class DownloadError(OSError):
    """A file could not be downloaded; the message says which URL and what to do (the CLI prints it in one line).
    `retryable`: it may go away on its own (a dropped connection, HTTP 5xx or 429, a time-out): try again."""

    def __init__(self, message: str, url: str = "", status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.url, self.status, self.retryable = url, status, retryable


def resolve_base_url(endpoint: str | None = None, base_url: str | None = None, repo: str = REPO_ID) -> str:
    """The directory URL (ending in '/') that `repo`'s remote names are appended to. First match wins: `base_url` (a
    plain directory; other repos in subfolders), `endpoint`, $DALLE_CORE_BASE_URL, $HF_ENDPOINT, huggingface.co."""
    if endpoint and base_url:
        raise ValueError("give either endpoint (a Hugging Face compatible host) or base_url (a plain directory "
                         "of the files), not both")
    url = base_url or (None if endpoint else os.environ.get(BASE_URL_ENV))
    suffix = ("" if repo == REPO_ID else repo.split("/")[-1] + "/") if url else f"{repo}/resolve/main/"
    url = url or endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    if not urllib.parse.urlsplit(url).scheme:
        raise ValueError(f"{url!r} is not a URL; write it with its scheme, e.g. http://host/models/")
    return url.rstrip("/") + "/" + suffix


def plan(model: str, models_root: str | Path) -> list[tuple[RemoteFile, Path]]:
    """Pairs (published file, local path) of `model`."""
    files = model_files(models_root, model)  # refuses an unknown model
    return [(remote, getattr(files, remote.role)) for remote in REMOTE_FILES[model]]


def part_path(path: Path) -> Path:
    """Where the bytes of `path` accumulate until it is complete and checked."""
    return path.with_name(path.name + ".part")


def _expected(remote: RemoteFile, path: Path) -> RemoteFile:
    """The published file, or for a file converted here from the Flax originals its recorded size and hash."""
    entry = recorded(path)
    return remote if entry is None else RemoteFile(f"{remote.name} (converted)", remote.role, entry.get("size"),
                                                   entry.get("sha256"))


def fetch_model(
    model: str, models_root: str | Path = DEFAULT_MODELS_ROOT, *, source: str = "min-dalle", fallback: bool = True,
    endpoint: str | None = None, base_url: str | None = None, progress: bool = True, retries: int = 4,
    timeout: float = 30.0, backoff: float = 1.0, check_sizes: bool = True, keep_flax: bool = False,
) -> ModelFiles:
    """Download the files of `model` ("mini" or "mega") that are missing or incomplete; return all paths.

    No network contact, and no setting read, when every file is in place. `source` goes first, the other after
    an HTTP 404 unless `fallback=False`. A retryable failure is tried `retries` more times after backoff,
    2*backoff, ... seconds; `timeout` is how long without data fails an attempt. `check_sizes=False` lets the
    dalle-mini source convert other sizes than Mini's / Mega's; `keep_flax` keeps its downloads."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    if retries < 0 or not timeout > 0:
        raise ValueError(f"retries must be 0 or more and timeout above 0, got {retries} and {timeout}")
    # only whole files reach their final path, so presence is enough where no size is known
    todo = [(remote, path) for remote, path in plan(model, models_root)
            if not (path.is_file() and _expected(remote, path).size in (None, path.stat().st_size))]
    if not todo:
        return model_files(models_root, model)
    resolve_base_url(endpoint, base_url)  # refuses endpoint + base_url before any request

    def get(repo: str, name: str, path: Path, size: int | None = None, sha256: str | None = None,
            source: str | None = None) -> None:
        download(resolve_base_url(endpoint, base_url, repo) + urllib.parse.quote(name), path, size=size,
                 sha256=sha256, progress=progress, retries=retries, timeout=timeout, backoff=backoff,
                 command=fetch_command(model, models_root) + (f" --source {source}" if source else ""))

    order = [source, *(s for s in SOURCES if fallback and s != source)]
    failures: list[DownloadError] = []
    for i, name in enumerate(order):
        try:
            if name == "min-dalle":
                for remote, path in todo:
                    get(REPO_ID, remote.name, path, remote.size, remote.sha256)
            else:
                _fetch_dalle_mini(model, models_root, {r.role for r, _ in todo}, get, check_sizes, keep_flax, progress)
            return model_files(models_root, model)
        except DownloadError as error:
            if error.status != 404:
                raise
            failures.append(error)
            if i + 1 < len(order):
                print(f"{name} answered HTTP 404 ({error.url}); trying the {order[i + 1]} source", file=sys.stderr)
    if len(failures) > 1:
        tried = "\n".join(f"- {name}: {error}" for name, error in zip(order, failures))
        raise DownloadError(f"every source answered HTTP 404:\n{tried}", failures[0].url, 404)
    raise failures[0]


def _fetch_dalle_mini(model: str, models_root: str | Path, roles: set[str], get: Callable[..., None],
                      check_sizes: bool, keep_flax: bool, progress: bool) -> None:
    """Download the Flax originals of the parts with a missing file (DALL·E's BART, the VQGAN) into
    `{models_root}/flax/<repo name>/`, convert them into the layout, then delete them unless `keep_flax`."""
    repos = {"bart": DALLE_MINI_REPOS[model]} if roles - {"detoker"} else {}
    if "detoker" in roles:
        repos["vqgan"] = VQGAN_REPO
    folders = {}
    for part, repo in repos.items():
        folders[part] = folder = Path(models_root) / FLAX_DIR / repo.split("/")[-1]
        for name in FLAX_FILES[part]:  # config.json first: a wrong model shows before the gigabytes
            if not (folder / name).is_file():  # only whole files reach their final path
                get(repo, name, folder / name, source="dalle-mini")
            if name == FLAX_CONFIG:
                check_flax_config(part, folder, model if check_sizes else None)
    convert_into(folders.get("bart"), folders.get("vqgan"), model, models_root, check_sizes=check_sizes,
                 progress=progress, origin=repos)
    if not keep_flax:
        for part, folder in folders.items():
            for name in FLAX_FILES[part]:
                (folder / name).unlink(missing_ok=True)
        for folder in (*folders.values(), Path(models_root) / FLAX_DIR):
            with contextlib.suppress(OSError):  # not empty (someone's own files) or already gone
                folder.rmdir()


def download(url: str, path: str | Path, *, size: int | None = None, sha256: str | None = None,
             progress: bool = True, retries: int = 4, timeout: float = 30.0, backoff: float = 1.0,
             command: str = "python -m dalle_core fetch") -> Path:
    """Download `url` to `path` through `<path>.part`, resuming, retrying and checking; `path` appears only whole.
    The .part outlives a network failure, so that the next run (`command`) resumes it, unless its bytes are wrong."""
    path, failure = Path(path), DownloadError("no attempt")
    part = part_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _transfer(url, part, size, timeout, progress)
            break
        except DownloadError as error:
            if not error.retryable:
                raise
            failure = error
    else:
        kept = part.stat().st_size if part.exists() else 0
        resume = f" {kept} bytes are kept in {part}; running `{command}` again resumes from there (delete that " \
                 "file to start over)." if kept else ""
        raise DownloadError(f"download of {url} failed on each of {retries + 1} attempt(s), last: {failure}. Check "
                            "the network, try again later, raise --timeout, or use a mirror (--endpoint / "
                            f"HF_ENDPOINT).{resume}", url, failure.status)
    if wrong := _mismatch(part, size, sha256, progress=progress):
        part.unlink()
        raise DownloadError(f"the download of {url} {wrong}: it was corrupted or the server sends another file. "
                            f"The partial file was deleted; run `{command}` again, or try another mirror.", url)
    os.replace(part, path)
    return path


def _mismatch(path: Path, size: int | None, sha256: str | None, check_hash: bool = True,
              progress: bool = False) -> str | None:
    """How the bytes at `path` differ from the published file's: in size, else in sha256 (None: they do not)."""
    if size is not None and (actual := path.stat().st_size) != size:
        return f"has {actual} bytes, not the published {size}"
    if check_hash and sha256 is not None and (digest := file_sha256(path, progress)) != sha256:
        return f"has sha256 {digest}, not the published {sha256}"
    return None


def _transfer(url: str, part: Path, size: int | None, timeout: float, progress: bool) -> None:
    """One attempt: request what `part` lacks and append it; returns when `part` holds the whole file, as far
    as the server says."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()  # longer than the file: not a prefix of it
        offset = 0
    if size is not None and offset == size:
        return  # an earlier run got every byte; they are checked before use
    headers = {"User-Agent": "dalle_core-fetch (urllib)", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            if _content_range(error.headers)[1] == offset:
                return  # the .part already holds the whole file
            part.unlink()
            raise _retry(f"HTTP 416 for a resume at byte {offset}; starting over", 416) from None
        if error.code in (408, 425, 429) or error.code >= 500:
            raise _retry(f"HTTP {error.code} {error.reason}", error.code) from None
        raise DownloadError(f"HTTP {error.code} {error.reason}: {url}\n" + (
            "The server has no such file. Check the endpoint or mirror (--endpoint / HF_ENDPOINT, or --base-url for "
            "a plain directory): it must serve the repo's files under their remote names." if error.code == 404 else
            "The server refused the download; check the URL, and that the mirror needs no login."), url, error.code
        ) from None
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        raise _retry(error.reason if isinstance(error, urllib.error.URLError) else error) from None
    with response:
        if response.headers.get_content_type() == "text/html":  # a login or error page sent as 200: never save it
            raise DownloadError(f"{url} answered with a web page, not the file; the URL is probably wrong or needs "
                                "a login. Check the endpoint / base URL.", url)
        if response.status == 206:
            start, total = _content_range(response.headers)
            if start != offset:
                part.unlink(missing_ok=True)
                raise _retry(f"the server resumed at byte {start}, not {offset}; starting over")
        else:  # a server that ignores Range answers 200 with the whole file: the .part starts over
            length = response.headers.get("Content-Length") or ""
            start, total = 0, int(length) if length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{url} is {total} bytes but the published file is {size} bytes; the server sends "
                                "another file (an old or modified copy?). Check the mirror or URL.", url)
        with open(part, "ab" if start else "wb") as out, byte_bar(part.stem, total, progress, start) as bar:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)  # each chunk reaches the file: a crash keeps what arrived
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise _retry(error) from None
            written = out.tell()
    if total is not None and written < total:
        raise _retry(f"connection closed after {written} of {total} bytes")


def _content_range(headers: Any) -> tuple[int | None, int | None]:
    """(first byte, total size) of `Content-Range: bytes 100-199/200` or `bytes */200`."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (headers.get("Content-Range") or "").strip())
    return (None, None) if match is None else tuple(None if g in (None, "*") else int(g) for g in match.groups())


def _retry(reason: Any, status: int | None = None) -> DownloadError:
    """A failure worth another attempt, said in a few words (the last one ends up in the final message)."""
    if not isinstance(reason, str):
        reason = "timed out" if isinstance(reason, TimeoutError) else f"{type(reason).__name__}: {reason}"
    return DownloadError(reason, status=status, retryable=True)


def verify(model: str, models_root: str | Path = DEFAULT_MODELS_ROOT, *, check_hash: bool = True,
           check_tensors: bool = True, progress: bool = False) -> list[str]:
    """Every problem with the local files of `model`, one message each, saying what to do; [] means usable.
    Hashing reads every byte (5.4 GB for mega; `check_hash=False` skips it). A tokenizer file must parse, and a
    checkpoint fit the package's module built on the meta device (`check_tensors=False` skips that)."""
    command, problems = fetch_command(model, models_root), []
    for remote, path in plan(model, models_root):
        if not path.is_file():
            part = part_path(path)
            partial = f" ({part} holds a partial download that the fetch resumes)" if part.exists() else ""
            problems.append(f"{path} is missing (published as {remote.name}){partial}; run `{command}`")
            continue
        remote = _expected(remote, path)
        try:
            if wrong := _mismatch(path, remote.size, remote.sha256, check_hash, progress):
                problems.append(f"{path} {wrong} ({remote.name}): truncated, corrupt or another file; delete it "
                                f"and run `{command}`")
            elif remote.role in TOKENIZER_READERS:
                TOKENIZER_READERS[remote.role](path)
            elif check_tensors:
                check_checkpoint(path, remote.role, model)
        except ValueError as error:  # the readers' errors; CheckpointError is one too
            problems.append(f"{error}; delete it and run `{command}`")
    return problems


def add_cli(subparsers: Any) -> None:
    """Register `fetch` and `verify` on an argparse subparsers object; each sets `func(args) -> int`."""
    fetch = subparsers.add_parser("fetch", help="download a model's missing files into min-dalle's layout (resumable)")
    check = subparsers.add_parser("verify", help="check a model's files: presence, size, sha256, tensor shapes")
    for parser in (fetch, check):
        add_model_options(parser, "mega (better, 5.4 GB) or mini (1.1 GB)")
    where = fetch.add_mutually_exclusive_group()
    where.add_argument("--endpoint", metavar="URL", help="Hugging Face compatible host, e.g. https://hf-mirror.com "
                                                         f"(default: ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT})")
    where.add_argument("--base-url", metavar="URL", help="plain directory serving the remote file names, e.g. "
                                                         f"http://host/models/ (default: ${BASE_URL_ENV})")
    fetch.add_argument("--source", choices=SOURCES, default="min-dalle",
                       help="min-dalle: its converted files (kuprel/min-dalle); dalle-mini: the Flax originals, "
                            "converted after download. The other is tried after a 404 (default: %(default)s)")
    fetch.add_argument("--no-fallback", action="store_true", help="do not try the other source after a 404")
    fetch.add_argument("--keep-flax", action="store_true", help=f"keep the Flax downloads (MODELS_ROOT/{FLAX_DIR}/)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.add_argument("--retries", type=int, default=4, help="extra attempts per file (default %(default)s)")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds without data that fail an attempt")
    fetch.set_defaults(func=_run_fetch)
    check.add_argument("--no-hash", action="store_true", help="skip the sha256 check (fast)")
    check.set_defaults(func=_run_verify)


def _run_fetch(args: argparse.Namespace) -> int:
    files = fetch_model(args.model, args.models_root, source=args.source, fallback=not args.no_fallback,
                        endpoint=args.endpoint, base_url=args.base_url, progress=not args.quiet,
                        retries=args.retries, timeout=args.timeout, keep_flax=args.keep_flax)
    if not args.quiet:
        print(f"the {args.model} model's files are in place:", *(f"  {path}" for path in files), sep="\n")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    problems = verify(args.model, args.models_root, check_hash=not args.no_hash, progress=True)
    if not problems:
        print(f"the {args.model} model's files under {args.models_root} are complete and readable")
        return 0
    print(f"{len(problems)} problem(s) with the {args.model} model's files:", *(f"- {p}" for p in problems),
          sep="\n", file=sys.stderr)
    return 1
