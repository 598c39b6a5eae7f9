"""The sandbox in a process of its own, as a real Qobrix would be (benchmarks, crash tests)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxProcess:
    """`mls2 sandbox serve` started in a subprocess and stopped on exit."""

    def __init__(self, *, properties: int, seed: int = 1, workers: int = 1, extra: list[str] | None = None) -> None:
        self.port = free_port()
        command = [
            str(Path(sys.executable).with_name("mls2")), "sandbox", "serve", "--port", str(self.port),
            "--properties", str(properties), "--seed", str(seed), "--workers", str(workers), *(extra or []),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/api/v2"

    def __enter__(self) -> "SandboxProcess":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited: {self.process.stderr.read()}")
            try:
                requests.get(f"{self.url}/_sandbox/state", timeout=2).raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("sandbox did not start within 60 s")

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
