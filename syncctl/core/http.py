"""HTTP for every REST connector: retries with backoff and `Retry-After`, a token-bucket rate limit, an
overall deadline per request, links held to the configured origin, token renewal, and messages that are
scrubbed of secrets and control characters. Knows nothing of SQLite or of any one remote's resources.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from syncctl.core.errors import AuthError, NotFoundError, RemoteError, ValidationError
from syncctl.core.sanitize import Scrubber, drop_query_strings, one_line
from syncctl.core.settings import RetryPolicy

log = logging.getLogger("syncctl.client")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
CHUNK = 256 * 1024
MAX_BODY = 512 * 1024 * 1024  # a page larger than this is a broken or hostile server


class TransientError(RemoteError):
    """A failure worth retrying: connection trouble, timeouts, 429 and 5xx."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class RateLimiter:
    """Token bucket: bursts up to the per-minute budget, then one request per 60/budget seconds."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(per_minute)
        self._updated = clock()

    def acquire(self) -> None:
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = self._clock()
        self._tokens = min(float(self.per_minute), self._tokens + (now - self._updated) * rate)
        self._updated = now
        if self._tokens < 1.0:
            wait = (1.0 - self._tokens) / rate
            self._sleep(wait)
            self._tokens = 1.0
            self._updated = self._clock()
        self._tokens -= 1.0


class Auth(Protocol):
    """How a connector authenticates: headers for each request, and one renewal after a 401."""

    def headers(self) -> Mapping[str, str]: ...

    def renew(self) -> bool:
        """Get fresh credentials after a 401; False when there is nothing to renew (a fixed key)."""
        ...


class StaticAuth:
    """A fixed header (an API key): a 401 is final."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def renew(self) -> bool:
        return False


def _unchanged(text: str) -> str:
    return text


def describe_error_body(body: bytes, scrub: Callable[[str], str] = _unchanged) -> str:
    """The remote's own message from any of the usual error shapes; never a raw dump.

    `scrub` runs before the message is cut to length, so a cut never leaves half a secret behind; URLs
    lose their query, where a server may echo credentials in an encoding no scrubber can guess.
    """

    def quoted(text: str, limit: int) -> str:
        return one_line(drop_query_strings(scrub(text)), limit)

    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        if text.lstrip().startswith("<"):
            return "an HTML error page"
        return quoted(text.splitlines()[0], 200)
    parts: list[str] = []

    def collect(value: Any, prefix: str = "", depth: int = 0) -> None:
        if depth > 20 or len(parts) > 50:
            return
        if isinstance(value, str):
            parts.append(f"{prefix}{value}")
        elif isinstance(value, list):
            for item in value:
                collect(item, prefix, depth + 1)
        elif isinstance(value, dict):
            if "httpStatus" in value and "description" in value:  # Sierra's error shape
                parts.append(" - ".join(str(value[k]) for k in ("name", "description") if value.get(k)))
                return
            if "msg" in value and "loc" in value:  # FastAPI's validation detail
                where = (
                    ".".join(str(p) for p in value["loc"] if p != "body")
                    if isinstance(value["loc"], list)
                    else ""
                )
                parts.append(f"{where}: {value['msg']}" if where else str(value["msg"]))
                return
            for key, item in value.items():
                if key in (
                    "error",
                    "error_message",
                    "message",
                    "detail",
                    "description",
                ) or isinstance(item, dict):
                    collect(item, prefix, depth + 1)
                elif key in ("code", "specificCode", "httpStatus", "type"):
                    continue
                else:
                    collect(item, f"{key}: ", depth + 1)
        elif value is not None:
            parts.append(f"{prefix}{value}")

    collect(data)
    return quoted("; ".join(parts), 300)


def retry_after_seconds(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    try:
        value = float(raw) if raw and raw.isascii() else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return max(0.0, value)


def _constant(name: str) -> str:
    """NaN and Infinity in a JSON body are kept as the text they were, so they store and print faithfully."""
    return name


def decode_json(content: bytes) -> Any:
    """JSON from a remote: valid UTF-8, bounded nesting, no float NaN/Infinity (kept as text)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_constant)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def same_origin(url: str, base: str) -> bool:
    """Whether `url` has the scheme, host and port of `base` (default ports made explicit)."""
    a, b = urlsplit(url), urlsplit(base)

    def port(parts: Any) -> int | None:
        try:
            found: int | None = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
            return found
        except ValueError:
            return None

    return (a.scheme.lower(), (a.hostname or "").lower(), port(a)) == (
        b.scheme.lower(),
        (b.hostname or "").lower(),
        port(b),
    )


class HttpClient:
    """One remote's HTTP: every request of a connector goes through `request`."""

    remote_name = "the remote"

    def __init__(
        self,
        base_uri: str,
        *,
        auth: Auth,
        secrets: Scrubber,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.host = urlsplit(self.base_uri).netloc
        self.auth = auth
        self.scrub = secrets
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(0)
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        self._sleep = sleep
        self._clock = clock
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    def message(self, text: str) -> str:
        """A message that may quote a server: scrubbed of secrets, one printable line."""
        return one_line(self.scrub(text), 600)

    def url(self, path: str) -> str:
        return f"{self.base_uri}/{path.lstrip('/')}"

    def follow(self, current: str, link: str) -> str:
        """A link from a response, resolved against `current`, held to the configured origin: the
        credentials go nowhere else, not even to the same host over plain http."""
        target = urljoin(current, link)
        if not same_origin(target, self.base_uri):
            shown = drop_query_strings(target)  # its query may carry anything, our key in any encoding
            raise RemoteError(
                self.message(f"{self.remote_name} sent a link to another origin, not followed: {shown}"),
                url=current,
            )
        return target

    # -- one request, with retries ---------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, self.retry.retry_after_cap)
        # Exponential backoff with jitter, so many cron jobs hitting one API do not retry in lockstep.
        initial = self.retry.backoff_initial
        exponential = initial * 2.0 ** (state.attempt_number - 1)
        return float(min(self.retry.backoff_max, exponential + random.uniform(0, initial)))

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("attempt %d failed (%s); retrying in %.1fs", state.attempt_number, error, delay)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        data: Mapping[str, str] | None = None,
        retryable: bool = True,
        authenticated: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request; transient failures are retried when the request is safe to repeat, and a 401
        renews the credentials once."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts if retryable else 1)
            | stop_after_delay(self.retry.max_seconds),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._send_once, method, url, params, body, data, authenticated, headers)
        except AuthError:
            if not authenticated or not self.auth.renew():
                raise
        return retrying(self._send_once, method, url, params, body, data, authenticated, headers)

    def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        data: Mapping[str, str] | None,
        authenticated: bool,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        self.limiter.acquire()
        self.requests_sent += 1
        sent_headers = {**(self.auth.headers() if authenticated else {}), **(headers or {})}
        where = f"{method} {url}"
        started = self._clock()
        deadline = self.timeout[0] + self.timeout[1]
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=body,
                data=data,
                headers=sent_headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
            response._content = self._read_body(response, started + deadline, where)
        except requests.Timeout:
            raise TransientError(
                self.message(f"{self.host} did not answer in time ({where})"), url=url
            ) from None
        except requests.ConnectionError as exc:
            what = "broke off the response" if "IncompleteRead" in str(exc) else "cannot be reached"
            raise TransientError(self.message(f"{self.host} {what} ({where})"), url=url) from None
        except requests.RequestException as exc:
            raise TransientError(
                self.message(f"{self.host} sent a broken response to {where} ({exc.__class__.__name__})"),
                url=url,
            ) from None
        status = response.status_code
        if status < 300:
            return response
        detail = describe_error_body(response.content, self.scrub)
        suffix = f": {detail}" if detail else ""
        if 300 <= status < 400:
            raise RemoteError(
                self.message(f"{self.host} answered a redirect ({status}) to {where}, not followed")
            )
        if status == 401:
            raise AuthError(self.auth_failure(status), status=status, url=url)
        if status in RETRYABLE_STATUS:
            raise TransientError(
                self.message(f"{self.host} answered {status} to {where}{suffix}"),
                status=status,
                url=url,
                retry_after=retry_after_seconds(response) if status in (429, 503) else None,
            )
        self.raise_for_status(status, where, detail, url)
        raise RemoteError(
            self.message(f"{self.host} answered {status} to {where}{suffix}"), status=status, url=url
        )

    def _read_body(self, response: requests.Response, deadline: float, where: str) -> bytes:
        """The whole body, as it arrives. Each read returns what one socket read brought (`read1`), so a
        server trickling a byte at a time, every read well within the read timeout, still meets the
        overall deadline; a chunk-sized read would wait for the whole chunk first."""
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read1(CHUNK, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if self._clock() > deadline:
                    response.close()
                    raise requests.Timeout("overall deadline")
                if size > MAX_BODY:
                    response.close()
                    raise RemoteError(
                        self.message(f"{self.host} sent a body over {MAX_BODY} bytes ({where})")
                    )
        # The requests exceptions `iter_content` raises for these, so they are reported as before; except a
        # read timeout, which is what it says (iter_content calls it a connection error).
        except urllib3.exceptions.ReadTimeoutError:
            raise requests.Timeout("read timeout") from None
        except urllib3.exceptions.ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(exc) from None
        return b"".join(chunks)

    def auth_failure(self, status: int) -> str:
        return (
            f"authentication failed: {self.remote_name} refused the credentials ({status} from {self.host})"
        )

    def raise_for_status(self, status: int, where: str, detail: str, url: str) -> None:
        """The connector's own mapping of client errors; the default knows 404 and 400/422."""
        if status == 404:
            raise NotFoundError(self.message(f"not found: {where}"), status=status, url=url)
        if status in (400, 422):
            raise ValidationError(
                self.message(f"{self.remote_name} refused {where}: {detail or 'bad request'}"),
                status=status,
                url=url,
            )

    def json(self, response: requests.Response) -> Any:
        try:
            return decode_json(response.content)
        except ValueError as exc:
            if response.content.lstrip()[:1] in (b"{", b"["):
                reason = str(exc)
            else:
                reason = (
                    f"{describe_error_body(response.content, self.scrub) or 'an empty body'} instead of JSON"
                )
            raise RemoteError(
                self.message(f"{self.remote_name} answered {reason} at {response.url}"), url=response.url
            ) from None
