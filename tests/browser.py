"""Open an HTML file in headless Chromium and report what a reader would see.

Chromium is driven through Debian's chromedriver with the W3C WebDriver HTTP API over
urllib, so no Python package is needed. Both come from apt (``chromium``,
``chromium-driver``) and are installed on first use when missing.

    from browser import inspect_page
    page = inspect_page("report.html", "shot.png")
    # {"card_count", "images_total", "images_broken", "console_errors", "load_ms", "external_requests", "scripts"}
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PACKAGES = ("chromium", "chromium-driver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
# Collected in the page once it has loaded.
PAGE_STATE = """
const imgs = Array.from(document.images);
const nav = performance.getEntriesByType('navigation')[0];
return {
  card_count: document.querySelectorAll('.concept-card').length,
  images_total: imgs.length,
  images_broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.alt || i.src).slice(0, 120)),
  load_ms: nav ? nav.loadEventEnd - nav.startTime : null,
  external_requests: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:')),
  scripts: document.scripts.length,
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
};
"""


def cannot_install() -> str | None:
    """Why Chromium can be neither found nor installed here (no apt-get, not root), or None."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return None
    if not shutil.which("apt-get"):
        return f"{CHROMIUM} or {CHROMEDRIVER} is missing and there is no apt-get to install {' '.join(PACKAGES)}"
    if os.geteuid() != 0:
        return f"{CHROMIUM} or {CHROMEDRIVER} is missing and installing {' '.join(PACKAGES)} with apt-get needs root"
    return None


def ensure_chromium() -> None:
    """Install Chromium and chromedriver with apt when either is missing; raise with apt's output on failure."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    reason = cannot_install()
    if reason:
        raise RuntimeError(reason)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """A chromedriver process and one browser session; ``with WebDriver() as wd:`` always ends both."""

    def __init__(self, timeout: float = 60):
        self.timeout = timeout
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="mmconcepts-chromium-")
        self.log = Path(self.profile) / "chromedriver.log"
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", f"--log-path={self.log}"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.session = None

    def __enter__(self) -> WebDriver:
        try:
            self._wait_ready()
            caps = {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={self.profile}/profile"]},
                "goog:loggingPrefs": {"browser": "ALL"},
                "timeouts": {"pageLoad": int(self.timeout * 1000), "script": int(self.timeout * 1000)},
            }
            self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        url = f"http://127.0.0.1:{self.port}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout + 30) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"chromedriver {method} {path}: {e.code} {e.read().decode()[:2000]}") from None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromedriver exited ({self.proc.returncode}): {self._log_tail()}")
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except (urllib.error.URLError, ConnectionError, RuntimeError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"chromedriver not ready after {self.timeout} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"

    def cmd(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def close(self) -> None:
        if self.session:
            try:
                self._call("DELETE", f"/session/{self.session}")
            except (urllib.error.URLError, ConnectionError, RuntimeError):
                pass
            self.session = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def inspect_page(html_path, screenshot_path=None, *, timeout: float = 60) -> dict:
    """Load a local HTML file headless; count its concept cards, broken images and console errors.

    Returns card_count, images_total, images_broken (alt or src of each image that did
    not decode), console_errors (SEVERE browser log entries: script errors, failed
    loads, blocked requests), load_ms (navigation start to load event), external_requests
    (resources not from data: URIs) and scripts (number of <script> elements). With
    ``screenshot_path``, a PNG of the whole page is written there.
    """
    ensure_chromium()
    url = Path(html_path).resolve().as_uri()
    with WebDriver(timeout) as wd:
        wd.cmd("POST", "/url", {"url": url})
        state = wd.cmd("POST", "/execute/sync", {"script": PAGE_STATE, "args": []})
        logs = wd.cmd("POST", "/se/log", {"type": "browser"})
        if screenshot_path:
            # Chromedriver's CDP passthrough can capture beyond the viewport: the whole page in one PNG.
            clip = {"x": 0, "y": 0, "width": state["width"], "height": state["height"], "scale": 1}
            shot = wd.cmd(
                "POST",
                "/goog/cdp/execute",
                {"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": True, "clip": clip}},
            )
            Path(screenshot_path).write_bytes(base64.b64decode(shot["data"]))
    del state["width"], state["height"]
    state["console_errors"] = [e["message"] for e in logs if e.get("level") == "SEVERE"]
    return state
