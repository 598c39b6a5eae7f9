"""Shared by the benchmark scripts: machine facts, a sandbox in its own process, recording results."""

import os
import platform
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            model,
        )
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kilobytes = int(meminfo.read_text().split()[1])
        memory = f", {kilobytes / 2**20:.0f} GiB"
    system = f"{platform.system()} {platform.machine()}"
    return f"{os.cpu_count()} cores ({model}){memory}, Python {platform.python_version()}, {system}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxProcess:
    """`mls2 sandbox serve` in a process of its own, as a real Qobrix would be."""

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


def record(title: str, lines: list[str]) -> None:
    """Append a dated section to benchmarks/RESULTS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [f"\n## {title} ({stamp})", f"Machine: {machine()}", "", *lines, ""]
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(section))
    print(f"recorded in {RESULTS}")
