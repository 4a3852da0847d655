"""Browser fixtures: the built fixture site served on 127.0.0.1, and Debian's chromium driven by
Playwright (it cannot download its own browser here). Every request that is not to
127.0.0.1 is blocked and recorded; a test fails if any was attempted."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = ROOT / "test-output"

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"chromium is not installed at {CHROMIUM} (make browser installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a page left mid-download: not a fault
        pass


@pytest.fixture(scope="session")
def base_url(site_project):
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site_project / "site"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def serve(folder: Path):
    server = QuietServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="session")
def real_site(tmp_path_factory) -> Path:
    """The real knowledge base (papers/, runnable/, results/, templates) built into a copy, so
    faults that only real pages have are seen; the repository itself is not written to."""
    import os

    from kb.site.build import build

    os.environ.setdefault("KB_VENDOR_CACHE", str(ROOT / ".cache" / "npm"))
    project = tmp_path_factory.mktemp("real") / "project"
    for folder in ("papers", "runnable", "results", "kb/data", "site_src/templates"):
        if (ROOT / folder).is_dir():
            shutil.copytree(
                ROOT / folder,
                project / folder,
                ignore=shutil.ignore_patterns("__pycache__", "*.tmp"),
            )
    for name in ("mkdocs.yml", "package.json", "package-lock.json"):
        shutil.copyfile(ROOT / name, project / name)
    return build(project)


@pytest.fixture(scope="session")
def real_url(real_site):
    server, url = serve(real_site)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page; ``page.foreign`` lists blocked requests, ``page.errors`` console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.foreign, p.errors = [], []

    def route(r):
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            p.foreign.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    p.on("console", lambda m: m.type == "error" and p.errors.append(m.text))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    yield p
    foreign = list(p.foreign)
    context.close()
    assert not foreign, f"requests to other hosts were attempted: {foreign}"


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
