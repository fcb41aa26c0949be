"""Serve the built explorer on 127.0.0.1 (make explorer), gzip-compressed as a static host would.

    .venv/bin/python explorer/serve.py [--page build/explorer] [--site site] [--port 8000]

/explorer/... is the page (build/explorer/); any other path is looked up in the static site
(site/, from `make html`), so the page's links to the notebooks' HTML pages work once the site
is built. Files are sent gzip-compressed to a browser that accepts it (Content-Encoding: gzip),
as most static hosts send them, so what the browser reports as transferred is what a host serves.
The page itself needs nothing of this server: any static server works (docs/explorer.md).
"""
from __future__ import annotations

import argparse
import gzip
import http.server
import mimetypes
import sys
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
COMPRESSED_TYPES = ("text/", "application/javascript", "application/json", "application/wasm",
                    "application/octet-stream", "image/svg+xml")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/octet-stream", ".onnx")


@lru_cache(maxsize=64)
def compressed(path: Path, mtime: float) -> bytes:
    """gzip level 6 (the default of gzip, nginx's gzip_comp_level aside): cached per file version."""
    return gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)


class Handler(http.server.SimpleHTTPRequestHandler):
    page: Path
    site: Path

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise here
        pass

    def resolve(self) -> Path | None:
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/explorer"):
            return None
        if path.startswith("/explorer/"):
            root, rest = self.page, path[len("/explorer/"):]
        else:
            root, rest = self.site, path.lstrip("/")
        target = (root / rest).resolve()
        if target.is_dir():
            target = target / "index.html"
        if root.resolve() not in (target, *target.parents) or not target.is_file():
            return Path()
        return target

    def do_GET(self) -> None:
        target = self.resolve()
        if target is None:
            self.send_response(302)
            self.send_header("Location", "/explorer/")
            self.end_headers()
            return
        if target == Path():
            self.send_error(404)
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        body = target.read_bytes()
        is_gzip = "gzip" in self.headers.get("Accept-Encoding", "") and kind.startswith(COMPRESSED_TYPES)
        if is_gzip:
            body = compressed(target, target.stat().st_mtime)
        self.send_response(200)
        self.send_header("Content-Type", kind + ("; charset=utf-8" if kind.startswith("text/") else ""))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        if is_gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_error(405)


def make_server(page: Path, site: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server on 127.0.0.1:port (0: a free port) for `page` at /explorer/ and `site` elsewhere."""
    handler = type("ExplorerHandler", (Handler,), {"page": page.resolve(), "site": site.resolve()})
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page", type=Path, default=ROOT / "build" / "explorer")
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if not (args.page / "index.html").is_file():
        print(f"error: {args.page} holds no built page; run `make explorer` (or explorer/build.py)", file=sys.stderr)
        return 1
    try:
        server = make_server(args.page, args.site, args.port)
    except OSError as error:  # the port is taken: any free one
        print(f"port {args.port} is not free ({error.strerror}); using another", flush=True)
        server = make_server(args.page, args.site, 0)
    port = server.server_address[1]
    print(f"the explorer: http://127.0.0.1:{port}/explorer/  (Ctrl+C stops the server)", flush=True)
    if not (args.site / "index.html").is_file():
        print("  (the notebook links need the static site: run `make html` to build site/)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
