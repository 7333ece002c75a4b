"""Start a private JupyterLab server for the browser test, and stop it again.

The server is what a learner gets from ``make lab``, made hermetic: a random token,
loopback only, a free port, and throwaway settings and workspace folders (so a
developer's own layout or settings cannot change what the test sees).
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: User settings written for the test run. Windowing off: JupyterLab 4 otherwise renders
#: only the cells on screen, and the test reads every cell's output from the page.
#: News and update checks off: their pop-ups cover the notebook (and there is no network).
#: Autosave off: a lesson is committed without outputs and the test must never write it.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it listens and the token that opens it."""

    url: str
    token: str
    root: Path

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API (``path`` like ``/api/sessions``); the JSON reply or None."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def page_url(self, notebook: str) -> str:
        """The URL that opens ``notebook`` (relative to the root) alone in a fresh JupyterLab layout.

        ``reset`` starts from the default workspace, so tabs from earlier notebooks are not restored.
        """
        return f"{self.url}/lab/tree/{quote(notebook)}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every session (and its kernel), so lessons do not pile up in memory."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_settings(settings_dir: Path) -> None:
    """Write :data:`LAB_SETTINGS` as JupyterLab user-settings files."""
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def lab_command(root: Path, port: int, token: str, state: Path) -> list[str]:
    """The ``jupyter lab`` command line (with ``--allow-root`` only when running as root)."""
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={state / 'settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read the notebook model
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def lab_environment(profile: str = "quick") -> dict[str, str]:
    """This process's environment (every TLCOURSE_* setting included) with the profile set."""
    return {**os.environ, "TLCOURSE_PROFILE": profile}


def wait_until_up(server: LabServer, process: subprocess.Popen, timeout: float, log: Path) -> None:
    """Poll ``/api/status`` until the server answers; fail with its log if it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, grace: float = 10) -> None:
    """Stop the server: SIGTERM (kernels shut down cleanly), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_lab(root: Path, profile: str = "quick", startup_timeout: float = 90) -> Iterator[LabServer]:
    """Run JupyterLab on ``root`` for the duration of the ``with`` block."""
    with tempfile.TemporaryDirectory(prefix="tlcourse-lab-") as tmp:
        state = Path(tmp)
        write_settings(state / "settings")
        port, token = free_port(), secrets.token_hex(24)
        server = LabServer(url=f"http://127.0.0.1:{port}", token=token, root=root)
        log = state / "lab.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(lab_command(root, port, token, state), env=lab_environment(profile),
                                       stdout=sink, stderr=subprocess.STDOUT, cwd=root)
        try:
            wait_until_up(server, process, startup_timeout, log)
            yield server
        finally:
            stop(process)
