"""`nurture dev` for real: the Temporal dev server with its UI, the worker, the API and the local
endpoints start on loopback; an enrollment started from the CLI sends through the local Gmail
endpoint (`nurture outbox` shows it); Ctrl-C stops every child; a restart resumes the running
enrollment from the state folder; a busy port gets a clear message."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TWO_STEPS = """
kind: sequence
id: restart-check
name: Restart check
settings: {eligible_days: every_day}
steps:
  - type: email
    subject: "First {{ contact.firstname }}"
    body: "one"
  - type: email
    delay: 12s
    thread_with: null
    subject: "Second {{ contact.firstname }}"
    body: "two"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    e.update({
        "NURTURE_HOME": str(tmp_path / "home"),
        "NURTURE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "NURTURE_TEMPORAL_UI_PORT": str(free_port()),
        "NURTURE_API_PORT": str(free_port()),
        "NURTURE_SENDGRID_PORT": str(free_port()),
        "NURTURE_GMAIL_PORT": str(free_port()),
        "COLUMNS": "200",
    })
    return e


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "nurture.cli.main", *args], env=env, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"nurture {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def start_dev(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    fh = log.open("a")
    proc = subprocess.Popen([sys.executable, "-m", "nurture.cli.main", "dev"], env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nurture dev exited {proc.returncode}: {log.read_text()}")
        if "dev stack is up" in log.read_text():
            return proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"nurture dev did not start: {log.read_text()}")


def stop_dev(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    return proc.wait(timeout=60)


def wait_for(predicate, timeout: float = 60, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return False
    except OSError:
        return True


def test_dev_stack_runs_restarts_with_state_and_stops_cleanly(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    (tmp_path / "restart.yaml").write_text(TWO_STEPS.replace("    thread_with: null\n", ""))
    dev = start_dev(env, log)
    try:
        ui = urllib.request.urlopen(f"http://127.0.0.1:{env['NURTURE_TEMPORAL_UI_PORT']}/", timeout=10)
        assert ui.status == 200
        health = urllib.request.urlopen(f"http://127.0.0.1:{env['NURTURE_API_PORT']}/healthz", timeout=5)
        assert json.load(health) == {"ok": True}

        cli(env, "apply", str(tmp_path / "restart.yaml"))
        cli(env, "users", "add", "rep@acme.test", "--name", "Rep")
        cli(env, "inbox", "connect", "rep@acme.test", "--local")
        cli(env, "records", "upsert", "contact", "-s", "email=ada@globex.test", "-s", "firstname=Ada")
        out = cli(env, "enroll", "sequence", "restart-check", "--contact", "ada@globex.test", "--sender", "rep@acme.test", "--json").stdout
        enrollment_id = json.loads(out)[0]["enrollment"]["enrollment_id"]

        def outbox() -> list[dict]:
            return json.loads(cli(env, "outbox", "--json").stdout)

        first = wait_for(lambda: outbox(), what="the first email in the outbox")
        assert first[0]["subject"] == "First Ada" and first[0]["to"] == ["ada@globex.test"]
        assert "First Ada" in cli(env, "outbox").stdout
    finally:
        code = stop_dev(dev)
    assert code == 0, log.read_text()
    for key in ("NURTURE_API_PORT", "NURTURE_TEMPORAL_UI_PORT", "NURTURE_GMAIL_PORT"):
        assert port_closed(int(env[key])), f"{key} still open after Ctrl-C"
    assert port_closed(int(env["NURTURE_TEMPORAL_ADDRESS"].rsplit(":", 1)[1]))

    # The second step is still due: the restarted stack resumes the enrollment from disk.
    status = json.loads(cli(env, "enrollments", "list", "--json").stdout)
    assert status[0]["status"] == "active"
    dev = start_dev(env, log)
    try:
        second = wait_for(lambda: [m for m in outbox() if m["subject"] == "Second Ada"], what="the second email after restart")
        assert len(second) == 1
        done = wait_for(lambda: json.loads(cli(env, "status", enrollment_id, "--json").stdout)["enrollment"]["status"] == "finished",
                        what="the enrollment to finish")
        assert done
    finally:
        assert stop_dev(dev) == 0


def test_busy_port_gets_a_clear_message(env: dict[str, str]) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", int(env["NURTURE_API_PORT"])))
    holder.listen()
    try:
        proc = cli(env, "dev", check=False)
    finally:
        holder.close()
    assert proc.returncode == 2
    assert f"port {env['NURTURE_API_PORT']} for the HTTP API is already in use" in proc.stderr
    assert "NURTURE_API_PORT" in proc.stderr and "Traceback" not in proc.stderr
