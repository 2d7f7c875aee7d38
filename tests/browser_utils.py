"""Helpers for the browser tests: run-folder fixtures, a Voila server stopped by PID, headless Debian chromium.

The browser is Debian's `chromium` (`/usr/bin/chromium`, installed by `.ci/run`), driven through the PyPI
`playwright` package with `executable_path`: playwright never downloads a browser here.
Without chromium the browser tests skip locally and FAIL when CI is set.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CREDIT_RL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_browser():
    "Skip (locally) or fail (CI) when chromium or playwright is missing."
    problems = []
    if not CHROMIUM.is_file(): problems.append(f"{CHROMIUM} not found (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError: problems.append("the PyPI package playwright is not installed (pip install playwright)")
    if not problems: return
    reason = "browser test needs " + "; ".join(problems)
    if in_ci(): pytest.fail(reason + " — CI is set, so this is an error, not a skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_browser():
    "A headless Debian chromium driven by playwright (module-scoped)."
    require_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try: yield browser
        finally: browser.close()


@dataclass
class ConsoleLog:
    "Every browser console message and uncaught page error, kept whole (nothing is filtered here)."
    messages: list[dict] = field(default_factory=list)  # {"type", "text", "url"}; page errors have type "pageerror"

    def attach(self, page):
        page.on("console", lambda msg: self.messages.append(
            {"type": msg.type, "text": msg.text, "url": msg.location.get("url", "")}))
        page.on("pageerror", lambda exc: self.messages.append({"type": "pageerror", "text": str(exc), "url": page.url}))
        return page

    @property
    def errors(self) -> list[dict]:
        return [m for m in self.messages if m["type"] in ("error", "pageerror")]

    def dump(self, path: Path):
        path.write_text("\n".join(f"{m['type']}: {m['text']} @ {m['url']}" for m in self.messages))


def block_outside_requests(page, allowed_hosts=("127.0.0.1",)) -> list[str]:
    "Abort every request to a host not in `allowed_hosts` (data: and file: URLs pass); returns the blocked URLs."
    blocked = []
    def route(r):
        url = r.request.url
        if url.startswith(("data:", "file:")) or urlparse(url).hostname in allowed_hosts: r.continue_()
        else:
            blocked.append(url)
            r.abort()
    page.route("**/*", route)
    return blocked


# --- run folders, in the layout credit_rl.book.runs writes ------------------------------------------------------

def write_run(root: Path, name: str, returns: dict[str, np.ndarray] | None, *, status: str = "succeeded",
              started: str = "2026-11-25T10:00:00+00:00", profile: str = "smoke", seed: int = 0,
              error: str | None = None) -> Path:
    """Write one run folder `<root>/runs/<name>-<run_id[:12]>/` as credit_rl.book.runs does.

    `returns` maps policy -> array (n_eval_seeds, n_steps) of daily decimal returns; None writes no
    time series and no metrics (a failed run). Metrics are those of the seed-mean daily return, as the app plots."""
    from credit_rl.metrics import summary
    payload = json.dumps({"name": name, "started": started, "returns": {k: np.asarray(v).tolist() for k, v in (returns or {}).items()}})
    run_id = hashlib.sha256(payload.encode()).hexdigest()
    folder = Path(root) / "runs" / f"{name}-{run_id[:12]}"
    folder.mkdir(parents=True)
    finished = None if status == "running" else started.replace("10:00:00", "10:01:00")
    meta = {"run_id": run_id, "name": name, "template": "train_ppo", "profile": profile,
            "params_file": f"params/{name}.yaml", "status": status, "started": started,
            "finished": finished, "duration_s": None if finished is None else 60.0, "seed": seed, "error": error}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    (folder / "params.yaml").write_text(f"seed: {seed}\nname: {name}\n")
    (folder / "notebook.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (folder / "log.txt").write_text(f"{name}: {status}\n")
    if returns is None: return folder
    frames, metrics = [], {}
    for policy, by_seed in returns.items():
        by_seed = np.atleast_2d(np.asarray(by_seed, float))
        positions = np.ones_like(by_seed) if policy == "passive" else np.sign(np.cumsum(by_seed, axis=1))
        for eval_seed, (ret, pos) in enumerate(zip(by_seed, positions)):
            frames.append(pd.DataFrame({"policy": policy, "eval_seed": eval_seed, "step": np.arange(len(ret)),
                                        "return": ret, "position": pos}))
        metrics[policy] = summary(by_seed.mean(axis=0), weights=positions.mean(axis=0))
    pd.concat(frames, ignore_index=True).to_parquet(folder / "timeseries.parquet", index=False)
    (folder / "metrics.json").write_text(json.dumps({"policies": metrics}, indent=1))
    return folder


def expected_last_equity(returns_by_seed: np.ndarray) -> float:
    "Last point of the app's equity curve: compounded mean (over eval seeds) daily return."
    return float(np.prod(1 + np.asarray(returns_by_seed, float).mean(axis=0)))


# --- servers -------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 90.0):
    "Wait until 127.0.0.1:port accepts connections; fail early with the server log if the process died."
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1): return
        except OSError: time.sleep(0.25)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def start_voila(notebook: Path, port: int, env: dict, log: Path) -> subprocess.Popen:
    "Serve `notebook` with `credit_rl.book.figures.voila_command` on 127.0.0.1:port; output goes to `log`."
    from credit_rl.book.figures import voila_command
    with open(log, "wb") as out:
        return subprocess.Popen(voila_command(notebook, port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> list[int]:
    """Stop a server we started, by PID: terminate, then kill after `grace_s`; then its own children (kernels)
    the same way. Returns the PIDs stopped."""
    import psutil
    try: children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess: children = []
    stopped = [proc.pid]
    if proc.poll() is None:
        proc.terminate()
        try: proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace_s)
    for child in children:
        if not child.is_running(): continue
        stopped.append(child.pid)
        child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive: child.kill()
    return stopped
