"""A shell's control of the server that runs this data folder's pipeline UI (`mls2 serve`, the demo).

`mls2 pipeline run` finds the server's announcement (`pipelines.ui.announcement`) and asks that
server for the update, as the UI's Run buttons do, instead of running one beside it: the update runs
in the long-lived process that already holds the libraries and the graph, takes its turn at the
pipeline lock there, and shows in the UI as it runs.

A shell imports this before it knows where the update runs: no engine library.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import requests

from conf.settings import DataPaths
from pipelines.ui.announcement import read_announcement

CONNECT_SECONDS = 3.0
ANSWER_SECONDS = 30.0
"""How long a request to the server may wait for its answer (the update's progress stream excepted)."""
SILENCE_SECONDS = 60.0
"""How long the progress stream may say nothing (the server sends a keep-alive while a flow runs)."""
STARTING_SECONDS = 60.0
"""How long after it announced itself a server that does not answer yet is waited for."""
_http = requests.Session()
_http.trust_env = False  # the token goes to this machine's server only: no proxy, no .netrc
SHELL_TRIGGER = "api"
"""What the UI's run list and the event log (cause API_CALL) record for an update a shell sent."""


class ServerUnreachable(Exception):
    """An announcement whose server is gone, or a server that stopped answering."""


class ControlError(Exception):
    """A server that answers but cannot take the update (its reason, as it said it)."""


@dataclass(frozen=True)
class RunningServer:
    url: str
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-MLS2-Trigger": SHELL_TRIGGER}

    def update_page(self, update_id: str) -> str:
        return f"{self.url}/ui/updates/{update_id}"


def announced_server(paths: DataPaths) -> RunningServer | None:
    """The server announced for this folder, once it answers; None when none is announced.
    ServerUnreachable when the announcement is damaged, is another folder's, or its server is gone
    or does not answer; ControlError when it refuses the token."""
    path = paths.server_announcement
    if not path.exists():
        return None
    document = read_announcement(path)
    url, pid, token = document.get("url"), document.get("pid"), document.get("token")
    well_formed = isinstance(url, str) and url.startswith("http") and isinstance(token, str)
    if not (well_formed and type(pid) is int and pid > 0):
        raise ServerUnreachable(f"{path} is not a readable server announcement (a url, a pid and a token)")
    if document.get("data_dir") != str(paths.root.resolve()):
        raise ServerUnreachable(f"{path} announces the server of {document.get('data_dir')} (a copied folder?)")
    if not _alive(pid):
        raise ServerUnreachable(f"the server {path} announces (pid {pid}) has stopped")
    server = RunningServer(url.rstrip("/"), token)
    # A server announces itself before it listens: one started moments ago is waited for.
    deadline = _started(document) + timedelta(seconds=STARTING_SECONDS)
    while True:
        try:
            _answer(server, "GET", "/ui/api/running")
            return server
        except ServerUnreachable:
            if datetime.now(UTC) > deadline or read_announcement(path) != document or not _alive(pid):
                raise
            time.sleep(0.25)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def _started(document: dict) -> datetime:
    try:
        return datetime.fromisoformat(document["started_at"])
    except (KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def _answer(server: RunningServer, method: str, path: str, **request: object) -> dict:
    """The server's JSON answer. ServerUnreachable when it does not answer, or not as this
    product's server; ControlError when it refuses (its reason)."""
    try:
        timeout = (CONNECT_SECONDS, ANSWER_SECONDS)
        response = _http.request(method, f"{server.url}{path}", headers=server.headers(), timeout=timeout, **request)
        answer = response.json() if response.status_code < 400 else None
    except (requests.RequestException, ValueError) as error:
        raise ServerUnreachable(f"no server answers at {server.url} ({type(error).__name__})") from None
    if response.status_code == 401:
        raise ControlError(f"the server at {server.url} refused this folder's token: is it serving another folder?")
    if response.status_code >= 500 or response.status_code == 404:
        raise ServerUnreachable(f"the server at {server.url} answered {_detail(response)}")
    if response.status_code >= 400:
        raise ControlError(_detail(response))
    return answer


def _detail(response: requests.Response) -> str:
    """The reason a refusal gives: the server's errors are OData's (`{"error": {"message"}}`)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    return str(error.get("message") or f"HTTP {response.status_code} from {response.url}")


def start_update(server: RunningServer, action: str, datasets: list[str]) -> str:
    """Ask the server for an update (one of the UI's actions); its id."""
    return _answer(server, "POST", "/ui/api/updates", json={"action": action, "datasets": datasets})["update_id"]


def cancel_update(server: RunningServer, update_id: str) -> None:
    _answer(server, "POST", f"/ui/api/updates/{update_id}/cancel")


def follow_update(server: RunningServer, update_id: str) -> Iterator[tuple[str, dict]]:
    """The update's server-sent events as they come: ("flow", {dataset, state, ...}) for each change
    of a flow, then ("end", {state, error, checks, report})."""
    try:
        response = _http.get(
            f"{server.url}/ui/api/updates/{update_id}/events",
            headers=server.headers(),
            stream=True,
            timeout=(CONNECT_SECONDS, SILENCE_SECONDS),
        )
    except requests.RequestException as error:
        raise ServerUnreachable(f"no server answers at {server.url} ({type(error).__name__})") from None
    with response:
        if response.status_code >= 400:
            raise ControlError(_detail(response))
        event = "message"
        try:
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    yield event, orjson.loads(line.removeprefix("data:"))
                    if event == "end":
                        return
        except requests.RequestException as error:
            raise ControlError(f"the server at {server.url} stopped answering ({type(error).__name__})") from None
    raise ControlError(
        f"the server at {server.url} closed the update's stream before it ended: "
        f"see {server.update_page(update_id)} or `mls2 pipeline events --update {update_id}`"
    )
