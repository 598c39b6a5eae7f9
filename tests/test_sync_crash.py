"""A sync killed with SIGKILL mid-flight, then run again, ends with every record landed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conf.settings import load_settings
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxWorld
from ingestion.sandbox.process import SandboxProcess
from ingestion.state import SyncState
from tests.landing_checks import assert_everything_landed

pytestmark = pytest.mark.slow


def test_kill_9_mid_sync_then_rerun_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with SandboxProcess(properties=4000, seed=5) as sandbox:
        env = {
            **os.environ,
            "QOBRIX_API_BASE_URL": sandbox.base_url,
            "QOBRIX_API_USER": SANDBOX_API_USER,
            "QOBRIX_API_KEY": SANDBOX_API_KEY,
            "MLS2_DATA_DIR": str(data),
            "MLS2_MAX_IN_FLIGHT": "2",
        }
        mls2 = str(Path(sys.executable).with_name("mls2"))
        first = subprocess.Popen([mls2, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(list(data.glob("landing/properties/*/*/page-*.jsonl.gz"))) < 12:
            assert first.poll() is None, f"the sync ended before it could be killed: {first.stderr.read()}"
            assert time.monotonic() < deadline, "the sync landed nothing in 120 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        state = SyncState(data / "state" / "sync_state.sqlite")
        interrupted = state.unfinished_sync()
        assert interrupted is not None and interrupted.status == "running"
        assert state.watermarks() == [], "a killed sync moves no watermark"
        state.close()

        second = subprocess.run([mls2, "sync"], env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr
        assert "resumed" in second.stderr and interrupted.sync_id in second.stderr

    settings = load_settings(mls2_data_dir=data)
    assert_everything_landed(settings, SandboxWorld(seed=5, properties=4000))
    state = SyncState(settings.sync_state_path)
    assert state.recent_syncs(1)[0].status == "succeeded" and state.watermark("properties").modified
