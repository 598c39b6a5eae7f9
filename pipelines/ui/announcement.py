"""The announcement of the server that runs this data folder's pipeline UI (`mls2 serve`, the demo).

While it serves, the process writes `state/server.json`: its URL, its pid and a random token,
readable by the folder's owner only. A shell sending the token is let into the UI's API
(`pipelines.ui.control` is that shell's side). Whoever reads the token can run the pipeline on the
folder's files anyway, so it opens nothing the folder does not.
"""

import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

from conf.files import write_atomically
from conf.settings import DataPaths


def local_url(host: str, port: int) -> str:
    """Where a shell on this machine reaches a server listening on `host`:`port`."""
    reachable = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{reachable}]:{port}" if ":" in reachable else f"http://{reachable}:{port}"


@contextmanager
def announced(paths: DataPaths, url: str) -> Iterator[None]:
    """Announce this process as the folder's server while it serves; the announcement goes with it
    (unless another server has announced itself since), also when SIGTERM stops the server."""
    document = {
        "url": url,
        "pid": os.getpid(),
        "data_dir": str(paths.root.resolve()),
        "token": secrets.token_urlsafe(32),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomically(paths.server_announcement, orjson.dumps(document), mode=0o600)

    def withdraw() -> None:
        if read_announcement(paths.server_announcement).get("pid") == os.getpid():
            paths.server_announcement.unlink(missing_ok=True)

    def stopped(signum: int, frame: object) -> None:
        # uvicorn stops a server on SIGTERM, then raises the signal again with the handler it found:
        # this one withdraws the announcement, then does what the handler before it did.
        withdraw()
        if callable(before):
            before(signum, frame)
            return
        signal.signal(signum, before)
        signal.raise_signal(signum)

    # A handler not installed from Python reads as None: the default action, as far as Python can tell.
    before = signal.signal(signal.SIGTERM, stopped) or signal.SIG_DFL
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
        withdraw()


def announced_token(paths: DataPaths) -> str:
    """The token of the server announced for this folder, "" when none is (read at each request:
    every worker process of a server checks the one token its supervisor announced)."""
    token = read_announcement(paths.server_announcement).get("token")
    return token if isinstance(token, str) else ""


def read_announcement(path: Path) -> dict:
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return document if isinstance(document, dict) else {}
