"""`weisu demo`'s processes and ports: a taken port stops it before any crawl, a killed demo leaves no
simulator behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner
from waiting import wait_until

from cli import app
from fixtures.serving import LOOPBACK, free_port, port_is_free
from settings import PROJECT_ROOT

runner = CliRunner()

#: The demo without its crawl: both simulators started as run_demo starts them, then an app served in
#: the foreground as run_demo serves the review app, until the process is killed.
DEMO_CHILDREN = """
import json, sys
from pathlib import Path
from starlette.applications import Starlette
from demo import DemoPorts, demo_children, serve_until_stopped
ports = DemoPorts(*map(int, sys.argv[1:4]))
with demo_children(ports, Path(sys.argv[4])) as children:
    print(json.dumps([child.pid for child in children]), flush=True)
    serve_until_stopped(Starlette(), ports.review)
"""


def _is_gone(pid: int) -> bool:
    """No such process, or only its exit status left for a parent to collect."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _free_demo_base() -> int:
    """A port P with P, P+10, P+20 and the next set up (P+1, P+11, P+21) all free."""
    for _ in range(50):
        base = free_port()
        if base + 21 < 65536 and all(port_is_free(base + o) for o in (0, 1, 10, 11, 20, 21)):
            return base
    raise AssertionError("no free demo ports found")


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int], list[int]]]:
    """A demo without its crawl: (process, the simulators' pids, [review app, simulator, dispatch ports])."""
    ports = [free_port(), free_port(), free_port()]
    command = [sys.executable, "-c", DEMO_CHILDREN, *map(str, ports), str(tmp_path / "dispatch.db")]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    pids = json.loads(process.stdout.readline())
    # Killed while serving, as a real demo would be (uvicorn has its own SIGTERM handling).
    wait_until(lambda: not port_is_free(ports[0]), 15, "the demo's review app port to be taken")
    try:
        yield process, pids, ports
    finally:
        process.kill()
        process.wait()
        for pid in pids:  # only if the test failed: never leave a simulator behind
            if not _is_gone(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_the_demo_leaves_no_simulator_running_and_frees_their_ports(
    demo_process: tuple[subprocess.Popen[str], list[int], list[int]], sig: signal.Signals
) -> None:
    process, pids, ports = demo_process
    assert [_is_gone(pid) for pid in pids] == [False, False]
    assert [port_is_free(port) for port in ports] == [False, False, False]

    process.send_signal(sig)

    # SIGTERM unwinds the demo, which stops its children; after SIGKILL the children stop by themselves.
    assert process.wait(timeout=15) == (128 + signal.SIGTERM if sig == signal.SIGTERM else -signal.SIGKILL)
    wait_until(lambda: all(_is_gone(pid) for pid in pids), 5, f"the simulators {pids} to exit")
    wait_until(lambda: all(port_is_free(port) for port in ports), 5, f"the ports {ports} to be free")


def test_a_child_whose_parent_is_gone_stops_itself_without_the_kernels_help() -> None:
    # The portable path (any POSIX system): the child watches whether it was re-parented. Told to watch
    # a pid that is not its parent, it sees at once what it would see after the parent's death.
    code = "import time\nfrom fixtures.serving import exit_with_parent\nexit_with_parent(-1)\ntime.sleep(60)"
    child = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, timeout=15, check=False)
    assert child.returncode == -signal.SIGTERM


def _hold(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((LOOPBACK, port))
    sock.listen()
    return sock


@pytest.mark.parametrize(
    ("offset", "name"), [(0, "review app"), (10, "platform simulator"), (20, "dispatch simulator")]
)
def test_a_taken_port_stops_the_demo_in_one_line_before_it_crawls(
    monkeypatch: pytest.MonkeyPatch, offset: int, name: str
) -> None:
    def prepare(*args: object) -> None:
        raise AssertionError("the demo crawled although a port was taken")

    monkeypatch.setattr("demo.prepare", prepare)
    base = _free_demo_base()
    with _hold(base + offset):
        result = runner.invoke(app, ["demo", "--port", str(base)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu demo: port {base + offset} ({name}) is taken: choose other ports with "
        f"`make demo PORT={base + 1}` (`weisu demo --port {base + 1}`: review app {base + 1}, "
        f"simulators {base + 11} and {base + 21})\n"
    )


def test_make_demo_passes_port_through() -> None:
    # --no-print-directory: under `make test` this make is nested and would add "Leaving directory".
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "demo", "PORT=8001"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry_run.stdout.splitlines()[-1] == ".venv/bin/weisu demo --port 8001"
