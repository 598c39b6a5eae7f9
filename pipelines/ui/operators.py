"""The people who may run the pipeline from the UI (`mls2 operators add`), kept apart from the API's
clients: a small JSON file under MLS2_DATA_DIR/state with a salted scrypt hash of each password.
"""

import hashlib
import hmac
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson

from conf.files import write_atomically

OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
"""scrypt's cost: about 50 ms and 16 MB per check, which makes guessing slow and a login still quick."""
UNKNOWN_OPERATOR_SALT = bytes(16)
"""Salt of the hash checked for a name that is not an operator: answering as slowly as a wrong
password does not tell which names exist."""


class OperatorError(ValueError):
    """A name, password or registry the person adding an operator must fix."""


def _hash(password: str, salt: bytes) -> str:
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def _matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(computed.hex(), digest)


class OperatorRegistry:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            document = orjson.loads(self.path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise OperatorError(f"the operator registry {self.path} is not JSON ({error}); fix or remove it") from None
        if not isinstance(document, dict):
            raise OperatorError(f"the operator registry {self.path} is not a map of operators; fix or remove it")
        return document

    def names(self) -> list[str]:
        return sorted(self._read())

    def add(self, name: str, password: str, *, replace: bool = False) -> None:
        """Register `name` (or, with `replace`, give it a new password)."""
        if not OPERATOR_NAME.match(name):
            raise OperatorError(f"operator name {name!r}: letters, digits and . _ @ - only, at most 64")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise OperatorError(f"a password of at least {MIN_PASSWORD_LENGTH} characters, please")
        operators = self._read()
        if name in operators and not replace:
            raise OperatorError(f"operator {name} exists: give --replace to set a new password")
        operators[name] = {"password_hash": _hash(password, os.urandom(16)), "added": datetime.now(UTC).isoformat()}
        self._write(operators)

    def remove(self, name: str) -> None:
        operators = self._read()
        if name not in operators:
            raise OperatorError(f"no operator {name}")
        del operators[name]
        self._write(operators)

    def _write(self, operators: dict) -> None:
        """Replace the registry whole, readable by its owner only."""
        write_atomically(self.path, orjson.dumps(operators, option=orjson.OPT_INDENT_2), mode=0o600)

    def verify(self, name: str, password: str) -> bool:
        """Whether `password` is `name`'s; as slow for a name that is not an operator."""
        entry = self._read().get(name)
        if entry is None:
            _hash(password, UNKNOWN_OPERATOR_SALT)
            return False
        return _matches(password, entry["password_hash"])
