"""Shared by the benchmark scripts: machine facts and recording results."""

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from ingestion.sandbox.process import SandboxProcess, free_port

__all__ = ["SandboxProcess", "free_port", "machine", "record"]

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


def record(title: str, lines: list[str]) -> None:
    """Append a dated section to benchmarks/RESULTS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [f"\n## {title} ({stamp})", f"Machine: {machine()}", "", *lines, ""]
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(section))
    print(f"recorded in {RESULTS}")
