"""One family of errors for everything that can go wrong talking to Qobrix or landing data."""


class IngestionError(Exception):
    """Base of every ingestion failure; the CLI prints its message and exits non-zero."""


class QobrixError(IngestionError):
    """A Qobrix call failed after its retries. Names the entity, page and cause."""

    def __init__(self, message: str, *, entity: str | None = None, page: int | None = None, status: int | None = None):
        where = ", ".join(part for part in (entity and f"entity {entity}", page and f"page {page}") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.entity = entity
        self.page = page
        self.status = status


class QobrixAuthError(QobrixError):
    """Qobrix refused the credentials (401/403); retrying cannot help."""


class MalformedResponseError(QobrixError):
    """Qobrix answered 200 with a body that is not the documented envelope, even after retries.

    Carries the body so it can be landed raw: bronze keeps what arrived, whatever it is.
    """

    def __init__(self, message: str, *, entity: str | None = None, page: int | None = None, body: bytes = b"") -> None:
        super().__init__(message, entity=entity, page=page)
        self.body = body


class LandingError(IngestionError):
    """The landing zone could not be written."""
