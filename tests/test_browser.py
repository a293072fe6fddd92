"""The explorer as a learner meets it: JupyterLab in Debian's Chromium, driven by Playwright.

Starts JupyterLab on 127.0.0.1 (random free port, token, temporary config/runtime dirs; the
system data dirs stay visible so the ipywidgets lab extension is found), writes a small notebook
that calls ``interp.explore``, runs all cells, checks the explorer rendered, moves the step
slider and sees the heatmap change, checks that a ``<script>`` / ``onerror`` token is shown as
text and never runs, and saves screenshots under ``test-artifacts/``. The server's whole process
group is stopped in the fixture's teardown.

Skipped (not failed) where ``/usr/bin/chromium`` is missing, except under CI (``CI=true``), where
Chromium is installed by ``.ci/run`` and a missing browser is a failure. Never runs
``playwright install``. ``INTERP_DOCS_SCREENSHOT=1`` also writes ``docs/explorer.png``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
START_TIMEOUT_S = 180       # JupyterLab on a loaded two-core machine can take well over 30 s
UI_TIMEOUT_MS = 180_000
NOTEBOOK = "explorer_check.ipynb"

SETUP_CELL = """\
import numpy as np
import interp

rng = np.random.default_rng(0)
source = ["le", "chat", "<script>window.__pwned = 1</script>",
          '<img src=x onerror="window.__pwned = 1">', "&", "noir"]
target = ["the", "black", "cat", "."]
weights = rng.random((4, 6))
weights /= weights.sum(axis=1, keepdims=True)
examples = [{"id": "ex0", "source": source, "target": target, "attention": weights,
             "attributions": {"integrated_gradients": rng.normal(size=(4, 6)),
                              "saliency": rng.random((4, 6))}},
            {"id": "ex1", "source": ["un", "chien"], "target": ["a", "dog"],
             "attention": np.array([[0.9, 0.1], [0.2, 0.8]])}]"""
EXPLORE_CELL = "interp.explore(examples)"
DONE_CELL = 'print("ALL-CELLS-" + "RAN")'


def _require_browser() -> None:
    ci = os.environ.get("CI", "").lower() == "true"
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (install it with `apt-get update && apt-get install -y chromium`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if ci:
            pytest.fail(f"CI=true but {message}: .ci/run must install it")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook() -> dict:
    def code(src: str) -> dict:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                "source": src}

    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [code(SETUP_CELL), code(EXPLORE_CELL), code(DONE_CELL)],
    }


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels: the whole process group it leads."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[dict]:
    _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    root, config, runtime, ipython = (tmp_path / d for d in ("root", "config", "runtime", "ipython"))
    for d in (root, config, runtime, ipython):
        d.mkdir()
    # No news or update checks: offline, and no notification over the notebook.
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (root / NOTEBOOK).write_text(json.dumps(_notebook()), encoding="utf-8")

    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(runtime),
           "IPYTHONDIR": str(ipython), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = ARTIFACTS / "browser-jupyterlab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT_S} s; see {log_path}")
            time.sleep(0.5)
        yield {"url": f"{base}/lab/tree/{NOTEBOOK}?token={token}", "log": log_path}
    finally:
        _stop(proc)


def _heatmap_src(page) -> str:
    return page.locator(".interp-explorer img.interp-heatmap").first.get_attribute("src") or ""


def test_explorer_in_jupyterlab(jupyterlab: dict) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 1800})
        page.set_default_timeout(UI_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(jupyterlab["url"], wait_until="domcontentloaded")
            page.wait_for_function(
                "() => { const w = window.jupyterapp?.shell?.currentWidget;"
                " return !!(w && w.sessionContext && w.content && w.content.widgets?.length === 3); }")
            page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.ready; }")
            idle = ("() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status"
                    " === 'idle'")
            page.wait_for_function(idle)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            outputs = page.locator(".jp-OutputArea-output")
            expect(outputs.filter(has_text="ALL-CELLS-RAN")).to_have_count(1)
            page.wait_for_function(idle)

            explorer = page.locator(".interp-explorer")
            expect(explorer).to_have_count(1)
            expect(explorer.locator("img.interp-heatmap")).to_be_visible()
            expect(explorer.locator(".interp-example select")).to_be_visible()
            expect(explorer.locator(".interp-method select")).to_be_visible()
            # the static fallback PNG shown beneath the live widget
            expect(page.locator(".jp-RenderedImage img")).to_have_count(1)

            tokens = explorer.locator(".interp-tokens")
            expect(tokens).to_contain_text("<script>window.__pwned = 1</script>")
            expect(tokens).to_contain_text('<img src=x onerror="window.__pwned = 1">')
            expect(tokens).to_contain_text("&")
            assert tokens.locator("script, img").count() == 0
            assert page.evaluate("() => typeof window.__pwned") == "undefined"

            before = _heatmap_src(page)
            assert before
            handle = explorer.locator(".interp-step .noUi-handle")
            handle.focus()
            handle.press("ArrowRight")
            page.wait_for_function(
                "(before) => { const img = document.querySelector('.interp-explorer img.interp-heatmap');"
                " return img && img.src && img.src !== before; }", arg=before)
            expect(explorer.locator(".interp-target b[style*='outline']")).to_have_text("black")
            expect(explorer.locator(".interp-caption")).to_contain_text("step 1 of 3")
            assert page.evaluate("() => typeof window.__pwned") == "undefined"
            assert not errors, f"JavaScript errors on the page: {errors}"

            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            page.screenshot(path=str(ARTIFACTS / "browser-explorer-page.png"), full_page=True)
            if os.environ.get("INTERP_DOCS_SCREENSHOT") == "1":
                (REPO / "docs").mkdir(exist_ok=True)
                shutil.copyfile(ARTIFACTS / "explorer.png", REPO / "docs" / "explorer.png")
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
