"""A client of a Confluent-compatible schema registry: the writer schemas of Confluent
wire-format messages by id, and the registration of the annotated schemas xmatch writes.

Endpoints (Confluent Schema Registry API v1): ``GET /schemas/ids/{id}`` and
``POST /subjects/{subject}/versions``. Answers are cached: ids are immutable.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request

from xmatch.errors import InputError, XmatchError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(XmatchError):
    """The registry did not answer (a transient condition: the stream waits and retries)."""


class _Status(Exception):
    """An HTTP error answer of the registry: its status and message."""

    def __init__(self, code: int, message: str):
        super().__init__(f"HTTP {code} {message}".strip())
        self.code = code


class SchemaRegistry:
    """A Confluent-compatible schema registry at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, timeout: float = 10.0):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"schema registry URL {url!r} is not http(s)://host:port")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._texts: dict[int, str | None] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def schema_text(self, schema_id: int) -> str | None:
        """The schema registered under ``schema_id`` (None if the registry has none)."""
        with self._lock:
            if schema_id in self._texts:
                return self._texts[schema_id]
        try:
            answer = self._call("GET", f"/schemas/ids/{schema_id}")
        except _Status as error:
            if error.code == 404:
                return None
            raise RegistryUnavailable(f"schema registry {self.url}: {error}") from None
        text = answer.get("schema")
        if not isinstance(text, str):
            raise RegistryUnavailable(f"schema registry {self.url}: the answer for id "
                                      f"{schema_id} has no schema")
        with self._lock:
            self._texts[schema_id] = text
        return text

    def register(self, subject: str, text: str) -> int:
        """The id of ``text`` under ``subject``, registering it if it is new."""
        key = (subject, text)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        try:
            answer = self._call("POST", path, {"schema": text})
        except _Status as error:
            if error.code in (409, 422):  # incompatible or invalid: the user must decide
                raise InputError(f"schema registry {self.url} refused the schema for subject "
                                 f"{subject}: {error}") from None
            raise RegistryUnavailable(f"schema registry {self.url}: {error}") from None
        schema_id = answer.get("id")
        if not isinstance(schema_id, int):
            raise RegistryUnavailable(f"schema registry {self.url}: registering under "
                                      f"{subject} answered no id")
        with self._lock:
            self._ids[key] = schema_id
            self._texts[schema_id] = text
        return schema_id

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": CONTENT_TYPE,
                                                  "Accept": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                raise _Status(error.code, _message(error)) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise RegistryUnavailable(f"schema registry {self.url} did not answer {method} "
                                      f"{path}: {getattr(error, 'reason', error)}") from None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read()).get("message", "")
    except (ValueError, OSError, AttributeError):
        return ""
