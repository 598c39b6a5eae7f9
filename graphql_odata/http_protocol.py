"""The HTTP protocol the API is served with: uvicorn's httptools protocol, with the requests its
parser refuses before the app sees them (malformed, or a request line or headers longer than it
reads) answered in OData's error shape with `OData-Version` instead of uvicorn's plain text."""

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from graphql_odata.odata.errors import ODATA_VERSION, ODataError
from graphql_odata.odata.wire import dumps
from graphql_odata.request_limits import MAX_URL_BYTES

HTTP_PROTOCOL = "graphql_odata.http_protocol:ODataHttpToolsProtocol"
"""For uvicorn's `http` setting (an import string, so worker processes load it too)."""
UNREADABLE = (
    "the request could not be read: it is malformed, or its URL or headers are longer than this server "
    f"reads (URLs of up to {MAX_URL_BYTES:,} bytes are answered)"
)


class ODataHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = dumps(ODataError(400, UNREADABLE).body())
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"odata-version: " + ODATA_VERSION.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
