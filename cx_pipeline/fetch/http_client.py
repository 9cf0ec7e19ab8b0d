"""A polite, resilient HTTP client for public review pages (no Dagster here; a resource wraps it).

Why each piece exists:

* robots.txt (protego) is obeyed per host, cached, and its ``Crawl-delay`` lengthens our interval;
* one request in flight per host and at least ``min_interval`` between the end of one request and
  the start of the next, held across threads *and* processes of a run (``fcntl.flock`` on a per-host
  state file), because several Dagster step processes may crawl the same site at once;
* retries with exponential backoff + jitter on transient failures, honouring ``Retry-After``;
* bounded everything: attempts, timeouts, total time per response, response size, redirects;
* redirects only to allowed hosts, so a page can never send us to fetch something else;
* conditional requests (ETag / Last-Modified) so an unchanged page costs a 304;
* block detection (401/403, WAF interstitials, captcha, login walls served with 200): a blocked
  fetch raises :class:`FetchBlocked` carrying the body, never returns an "empty success".
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import hashlib
import os
import random
import re
import socket
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from protego import Protego
from requests.adapters import HTTPAdapter

#: response headers kept on a FetchedPage (lower-case)
KEPT_HEADERS = ("etag", "last-modified", "content-type", "date", "retry-after", "location", "server")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SCAN_BYTES = 300_000  # block markers live in the head / first screen of a page
_TRUNCATED = "x-cx-truncated"  # our own marker on a body cut at the limit on purpose (robots.txt only)


# ----------------------------------------------------------------------------------------------
# data types and errors
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FetchedPage:
    """One HTTP answer, kept whole so the caller can archive exactly what was served."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: datetime
    not_modified: bool = False
    attempts: int = 1
    elapsed: float = 0.0
    redirects: tuple[str, ...] = ()

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class FetchError(Exception):
    """Base of every fetch failure: always names the URL and why, and keeps the served page if any."""

    def __init__(self, url: str, reason: str, *, page: FetchedPage | None = None, attempts: int = 0,
                 status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.page = page
        self.attempts = attempts
        self.status = status if status is not None else (page.status if page else None)
        super().__init__(f"{url}: {reason}")

    @property
    def body(self) -> bytes | None:
        return self.page.body if self.page else None


class FetchBlocked(FetchError):
    """The site refused us (robots.txt, 401/403, WAF, captcha, login wall, persistent 429).

    ``kind`` is one of: robots, http_401, http_403, http_451, waf, captcha, login_wall, rate_limited.
    """

    def __init__(self, url: str, reason: str, *, kind: str, page: FetchedPage | None = None,
                 attempts: int = 0, status: int | None = None) -> None:
        self.kind = kind
        super().__init__(url, reason, page=page, attempts=attempts, status=status)


class RobotsDisallowed(FetchBlocked):
    """robots.txt forbids this URL for our user agent; nothing was requested."""


class PageChanged(FetchError):
    """The page was served but its structure is not what we read (no reviews where expected, parse error)."""

    @classmethod
    def from_page(cls, page: FetchedPage, reason: str) -> PageChanged:
        return cls(page.final_url, reason, page=page, attempts=page.attempts)


class FetchFailed(FetchError):
    """Could not get a usable answer: network errors / 5xx after all retries, other 4xx, timeouts."""


class ResponseTooLarge(FetchFailed):
    """The response exceeded ``max_bytes``; reading stopped there (the partial body is not kept)."""


class RedirectRefused(FetchFailed):
    """A redirect pointed outside the allowed hosts, to a non-http scheme, or past ``max_redirects``."""


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
def utcnow() -> datetime:
    return datetime.now(UTC)


def host_key(url: str) -> str:
    """Rate-limit key: lower-case ``host[:port]`` (different ports are different servers)."""
    return urlsplit(url).netloc.lower()


def canonical_url(url: str) -> str:
    """URL with sorted query parameters, lower-case scheme/host and no fragment (for lookups, dedup)."""
    p = urlsplit(url)
    query = urlencode(sorted(parse_qsl(p.query, keep_blank_values=True)))
    return urlunsplit((p.scheme.lower(), p.netloc.lower(), p.path or "/", query, ""))


def set_query_params(url: str, params: Mapping[str, str]) -> str:
    """``url`` with each of ``params`` set (added, or replacing every existing value)."""
    p = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k not in params]
    pairs.extend(params.items())
    return urlunsplit((p.scheme, p.netloc, p.path, urlencode(pairs), p.fragment))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or utcnow())).total_seconds())


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """``host`` (no port) matches an entry: exact name, or ``*.example.com`` (subdomains and the apex).

    Ports are ignored on purpose: allowed hosts name sites, not servers.
    """
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            apex = entry[2:]
            if host == apex or host.endswith("." + apex):
                return True
        elif host == entry:
            return True
    return False


# ----------------------------------------------------------------------------------------------
# block detection (ours: libraries do not know what a WAF interstitial looks like)
# ----------------------------------------------------------------------------------------------
_WAF_MARKERS: tuple[tuple[str, bytes], ...] = (
    ("cloudflare challenge", b"/cdn-cgi/challenge-platform/"),
    ("cloudflare challenge", b"cf_chl_opt"),
    ("cloudflare challenge", b"cf-chl-"),
    ("cloudflare block", b"attention required! | cloudflare"),
    ("cloudflare block", b"cf-error-details"),
    ("cloudflare challenge", b"<title>just a moment...</title>"),
    ("akamai block", b"errors.edgesuite.net"),
    ("akamai block", b"akamai reference"),
    ("imperva block", b"incapsula incident id"),
    ("aws waf block", b"awswaf"),
)
_CAPTCHA_MARKERS: tuple[tuple[str, bytes], ...] = (
    ("datadome captcha", b"captcha-delivery.com"),
    ("perimeterx captcha", b"px-captcha"),
    ("cloudflare turnstile", b"challenges.cloudflare.com/turnstile"),
    ("cloudflare turnstile", b"class=\"cf-turnstile\""),
    ("hcaptcha", b"class=\"h-captcha\""),
    ("recaptcha v2 widget", b"class=\"g-recaptcha\""),
)
_TITLE = re.compile(rb"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_CAPTCHA_TITLE = re.compile(
    rb"captcha|are you a (?:robot|human)|verify you are (?:a )?human|bot (?:check|detection)|security check", re.I)
_LOGIN_TITLE = re.compile(
    rb"\b(?:log ?in|sign ?in|log ind|logga in|logg inn|kirjaudu|anmelden|einloggen|connexion|se connecter|accedi"
    rb"|iniciar sesi\xc3\xb3n|inloggen)\b", re.I)
_PASSWORD_INPUT = re.compile(rb"<input\b[^>]*\btype\s*=\s*[\"']?password\b", re.I)
#: login endpoints at the root of a site, optionally behind a locale segment (/da-dk/login)
_LOGIN_PATH = re.compile(
    r"^(?:/[a-z]{2}(?:[-_][a-z]{2})?)?/(?:login|log-in|signin|sign-in|sign_in|users/connect|auth|account/login)(?:/|$)",
    re.I)


def detect_block(status: int, headers: Mapping[str, str], body: bytes, final_url: str) -> tuple[str, str] | None:
    """``(kind, reason)`` when the answer is a refusal rather than the page; None when it looks real.

    Markers are deliberately specific: real Trustpilot pages embed an invisible reCAPTCHA badge and
    "Log in" links (``/users/connect``), so those alone must not count as blocked.
    """
    head = body[:_SCAN_BYTES].lower()
    lower_headers = {k.lower(): v for k, v in headers.items()}
    server = lower_headers.get("server", "").lower()
    if lower_headers.get("cf-mitigated", "").lower() == "challenge":
        return "waf", f"HTTP {status}: Cloudflare challenge (cf-mitigated: challenge)"
    for label, marker in _WAF_MARKERS:
        if marker in head:
            return "waf", f"HTTP {status}: {label} page (marker {marker.decode()!r})"
    for label, marker in _CAPTCHA_MARKERS:
        if marker in head:
            return "captcha", f"HTTP {status}: {label} served instead of the page (marker {marker.decode()!r})"
    title_m = _TITLE.search(head)
    title = title_m.group(1).strip() if title_m else b""
    if title and _CAPTCHA_TITLE.search(title):
        return "captcha", f"HTTP {status}: captcha page (title {title.decode('utf-8', 'replace')!r})"
    if status == 401:
        return "http_401", "HTTP 401 unauthorized: the page needs a login"
    if status == 403:
        vendor = " (Akamai)" if "akamai" in server else " (Cloudflare)" if "cloudflare" in server else ""
        return "http_403", f"HTTP 403 forbidden{vendor}: the site refuses this client"
    if status == 451:
        return "http_451", "HTTP 451 unavailable for legal reasons"
    if 200 <= status < 300:
        path = urlsplit(final_url).path
        if _LOGIN_PATH.match(path):
            return "login_wall", f"HTTP {status}: served a login page ({path})"
        if _PASSWORD_INPUT.search(head):
            return "login_wall", f"HTTP {status}: page asks for a password (login wall served with {status})"
        if title and _LOGIN_TITLE.search(title):
            return "login_wall", f"HTTP {status}: login page (title {title.decode('utf-8', 'replace')!r})"
    return None


# ----------------------------------------------------------------------------------------------
# cross-process per-host rate limit
# ----------------------------------------------------------------------------------------------
class HostRateLimiter:
    """At most one request in flight per host, and ``interval`` seconds from the end of one to the next.

    State is one small file per host under ``state_dir`` holding the wall-clock time before which
    the next request must not start; ``fcntl.flock`` makes the read-wait-request-write sequence
    exclusive across processes, a ``threading.Lock`` across threads. Holding the lock for the whole
    request (not just the start) guarantees the gap as seen by the server, and makes a backoff
    (``defer``) apply to every worker of the run, not only the one that got the 429.
    """

    def __init__(self, state_dir: str | os.PathLike[str], *, max_wait: float = 600.0) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.max_wait = max_wait  # a clock jump or stale file never parks us longer than this
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _thread_lock(self, host: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(host, threading.Lock())

    def _path(self, host: str) -> Path:
        safe = re.sub(r"[^a-z0-9._-]", "_", host.lower())[:100]
        return self.state_dir / f"{safe}-{hashlib.sha1(host.encode()).hexdigest()[:8]}.lock"

    @contextlib.contextmanager
    def slot(self, host: str, interval: float) -> Iterator[_Slot]:
        """Wait for the host's turn, yield while the request runs, then book the next turn."""
        with self._thread_lock(host):
            fd = os.open(self._path(host), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                not_before = _read_float(fd)
                wait = min(not_before - time.time(), self.max_wait)
                if wait > 0:
                    time.sleep(wait)
                s = _Slot(interval)
                try:
                    yield s
                finally:
                    end = time.time()
                    _write_float(fd, max(end + s.interval, end + s.extra_delay))
            finally:
                os.close(fd)  # closing releases the flock

    def next_allowed(self, host: str) -> float:
        """Wall-clock time before which the host must not be contacted (for tests and logging)."""
        path = self._path(host)
        if not path.exists():
            return 0.0
        fd = os.open(path, os.O_RDONLY)
        try:
            return _read_float(fd)
        finally:
            os.close(fd)


@dataclass
class _Slot:
    interval: float
    extra_delay: float = 0.0

    def defer(self, seconds: float) -> None:
        """Push the host's next turn at least ``seconds`` past the end of this request (backoff)."""
        self.extra_delay = max(self.extra_delay, seconds)


def _read_float(fd: int) -> float:
    raw = os.pread(fd, 64, 0)
    try:
        return float(raw.decode().strip() or 0.0)
    except ValueError:
        return 0.0


def _write_float(fd: int, value: float) -> None:
    data = f"{value:.6f}".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


# ----------------------------------------------------------------------------------------------
# a wall-clock deadline enforced while the response is being read
# ----------------------------------------------------------------------------------------------
class _Deadline:
    """Shuts down the connection of a request still running at its deadline.

    Socket timeouts bound each ``recv`` only, so a server dripping one byte a second (TLS handshake,
    headers or body) is never timed out, and a check between reads comes only after a read returns. A
    timer thread that shuts the socket down wakes the blocked read at the deadline, whatever phase the
    request is in. The connection classes below register every socket a request uses (see
    ``_WatchedConnection``); we keep a duplicate descriptor of each, so the shutdown reaches the connection
    even after TLS took over the original socket object, and can never hit a descriptor number that was
    closed and handed to someone else meanwhile.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._armed = True
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()
        _current.deadline = None
        with self._lock:
            for dup in self._socks:
                dup.close()  # our duplicate only: the connection itself stays open for keep-alive
            self._socks.clear()

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
        self._timer.cancel()

    def register(self, sock: socket.socket | None) -> None:
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return
        try:
            dup = socket.socket(fileno=os.dup(fd))
        except OSError:
            return
        with self._lock:
            self._socks.append(dup)
            if self.fired:  # connected after the deadline: cut it at once
                _shutdown(dup)

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.fired = True
            for dup in self._socks:
                _shutdown(dup)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


def _watch(sock: socket.socket | None) -> None:
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.register(sock)


class _WatchedConnection:
    """Mixin: hands each socket to the running request's :class:`_Deadline` (new and reused connections)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def getresponse(self):  # type: ignore[no-untyped-def]
        _watch(getattr(self, "sock", None))
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections a :class:`_Deadline` can cut (direct and via an HTTP proxy)."""

    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # type: ignore[no-untyped-def]
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


# ----------------------------------------------------------------------------------------------
# the interface
# ----------------------------------------------------------------------------------------------
@runtime_checkable
class HttpClient(Protocol):
    """What the crawler needs: a GET that returns the page or raises a :class:`FetchError`."""

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchedPage: ...


@dataclass(frozen=True)
class ClientConfig:
    """Every knob of :class:`PoliteHttpClient`; defaults are the production politeness settings."""

    user_agent: str
    allowed_hosts: tuple[str, ...] | None = None  # None: only the host of the URL being fetched
    state_dir: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "cx_pipeline-http-state"))
    min_interval: float = 1.0  # seconds between requests to one host (≤ 1 request/s)
    max_crawl_delay: float = 30.0  # robots.txt Crawl-delay is honoured up to this
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_response_time: float = 120.0  # whole body; defeats slow-drip responses
    max_bytes: int = 15 * 1024 * 1024
    max_attempts: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 120.0  # a longer Retry-After is reported, not slept through
    max_redirects: int = 5
    robots_ttl: float = 24 * 3600.0
    robots_error_ttl: float = 300.0  # an unreachable robots.txt is asked again soon, not after a day
    robots_max_bytes: int = 512 * 1024
    trust_env: bool = True  # proxies from the environment


class BaseHttpClient(ABC):
    """Shared classification so local and real clients report blocks the same way."""

    @abstractmethod
    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchedPage: ...

    @staticmethod
    def _check(page: FetchedPage) -> FetchedPage:
        """Raise for blocked / unusable answers; return the page otherwise (never an empty success)."""
        if page.not_modified:
            return page
        block = detect_block(page.status, page.headers, page.body, page.final_url)
        if block:
            kind, reason = block
            raise FetchBlocked(page.url, reason, kind=kind, page=page, attempts=page.attempts)
        if page.status == 429:
            raise FetchBlocked(page.url, f"HTTP 429 rate limited after {page.attempts} attempt(s)",
                               kind="rate_limited", page=page, attempts=page.attempts)
        if not 200 <= page.status < 300:
            tries = f" after {page.attempts} attempts" if page.attempts > 1 else ""
            raise FetchFailed(page.url, f"HTTP {page.status}{tries}", page=page, attempts=page.attempts)
        if not page.body:
            raise FetchFailed(page.url, f"HTTP {page.status} with an empty body", page=page, attempts=page.attempts)
        return page


class PoliteHttpClient(BaseHttpClient):
    """The real client (requests + urllib3). Thread-safe: one ``requests.Session`` per thread."""

    def __init__(self, config: ClientConfig) -> None:
        if not config.user_agent or not re.search(r"https?://|@|mailto:", config.user_agent):
            raise ValueError("user_agent must name the crawler and a contact (a URL or an e-mail address), "
                             f"got {config.user_agent!r}")
        self.config = config
        self.limiter = HostRateLimiter(config.state_dir)
        self._local = threading.local()
        self._robots: dict[str, tuple[float, Protego | None, str, bool]] = {}  # origin → (at, parser, note, down)
        self._robots_locks: dict[str, threading.Lock] = {}
        self._robots_guard = threading.Lock()
        self.robots_token = config.user_agent.split("/", 1)[0].split()[0]

    # -- plumbing --------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.trust_env = self.config.trust_env
            for prefix in ("http://", "https://"):
                s.mount(prefix, _DeadlineAdapter())
            s.headers.update({"User-Agent": self.config.user_agent,
                              "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
                              "Accept-Encoding": "gzip, deflate"})
            self._local.session = s
        return s

    def close(self) -> None:
        s = getattr(self._local, "session", None)
        if s is not None:
            s.close()
            self._local.session = None

    def _allowed(self, url: str, origin_url: str) -> bool:
        host = urlsplit(url).hostname or ""
        allowed = self.config.allowed_hosts
        if allowed is None:
            return host == (urlsplit(origin_url).hostname or "")
        return host_allowed(host, allowed)

    # -- robots.txt ------------------------------------------------------------------------
    def _robots_for(self, url: str) -> tuple[Protego | None, str, bool]:
        """(parser or None for disallow-all, note, host unreachable) for the origin of ``url``, cached."""
        p = urlsplit(url)
        origin = f"{p.scheme}://{p.netloc}"
        with self._robots_guard:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            cached = self._robots.get(origin)
            if cached:
                ttl = self.config.robots_ttl if cached[1] is not None else self.config.robots_error_ttl
                if time.time() - cached[0] < ttl:
                    return cached[1], cached[2], cached[3]
            parser, note, down = self._fetch_robots(origin)
            self._robots[origin] = (time.time(), parser, note, down)
            return parser, note, down

    def _fetch_robots(self, origin: str) -> tuple[Protego | None, str, bool]:
        """RFC 9309: 4xx → no restrictions; 5xx / unreachable → assume everything disallowed.

        A file over ``robots_max_bytes`` is read up to the limit and that part is parsed (RFC 9309 §2.5
        allows it): ignoring it would turn ``Disallow: /`` followed by padding into allow-all.
        """
        robots_url = f"{origin}/robots.txt"
        limit = self.config.robots_max_bytes
        try:
            page = self._fetch(robots_url, origin_url=robots_url, max_bytes=limit,
                               interval=self.config.min_interval, truncate=True)
        except RedirectRefused as exc:
            return None, f"robots.txt redirect refused ({exc.reason}): treated as disallow-all", False
        except FetchFailed as exc:
            down = exc.status is None
            return None, f"robots.txt unreachable ({exc.reason}): treated as disallow-all", down
        if 400 <= page.status < 500:
            return Protego.parse(""), f"robots.txt HTTP {page.status}: no restrictions", False
        if not 200 <= page.status < 300:  # 5xx, a 304 we never asked for, a redirect without Location
            return None, f"robots.txt HTTP {page.status}: treated as disallow-all", False
        body, note = page.body, "robots.txt parsed"
        if _TRUNCATED in page.headers:
            body = body[: body.rfind(b"\n") + 1]  # a rule cut mid-line could mean something else
            note = f"robots.txt larger than {limit} bytes: its first {len(body)} bytes parsed"
        return Protego.parse(body.decode("utf-8", "replace")), note, False

    def crawl_delay(self, url: str) -> float:
        """Our interval for the host of ``url``: configured minimum, raised by robots.txt Crawl-delay."""
        parser, _, _ = self._robots_for(url)
        interval = self.config.min_interval
        if parser is not None:
            delay = parser.crawl_delay(self.robots_token)
            if delay:
                interval = max(interval, min(float(delay), self.config.max_crawl_delay))
            rate = parser.request_rate(self.robots_token)
            if rate and rate.requests:
                interval = max(interval, min(rate.seconds / rate.requests, self.config.max_crawl_delay))
        return interval

    def can_fetch(self, url: str) -> tuple[bool, str]:
        """Whether robots.txt lets our token fetch ``url``, and why (FetchFailed when the host is down)."""
        parser, note, down = self._robots_for(url)
        if down:
            raise FetchFailed(url, f"host unreachable: {note}")
        if parser is None:
            return False, note
        return bool(parser.can_fetch(url, self.robots_token)), note

    # -- GET -------------------------------------------------------------------------------
    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            headers: Mapping[str, str] | None = None) -> FetchedPage:
        """Fetch ``url`` politely; raise FetchBlocked / FetchFailed instead of returning a bad page.

        ``headers`` are extra request headers (an API key for a keyed API): sent, never stored on the page,
        so a secret stays out of the raw archive and the fetch metadata (which keep the URL).
        """
        p = urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise FetchFailed(url, "not an http(s) URL")
        if self.config.allowed_hosts is not None and not host_allowed(p.hostname, self.config.allowed_hosts):
            raise RedirectRefused(url, f"host {p.hostname!r} is not among the allowed hosts")
        ok, note = self.can_fetch(url)
        if not ok:
            raise RobotsDisallowed(url, f"robots.txt disallows this URL for {self.robots_token!r} ({note})",
                                   kind="robots")
        request_headers: dict[str, str] = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        page = self._fetch(url, origin_url=url, max_bytes=self.config.max_bytes, interval=self.crawl_delay(url),
                           extra_headers=request_headers, check_robots=True)
        if page.not_modified and not (etag or last_modified):
            raise FetchFailed(url, "HTTP 304 Not Modified to a request that sent no validator (no If-None-Match, "
                              "no If-Modified-Since): there is no stored copy it could refer to, so nothing was "
                              "read", page=page, attempts=page.attempts)
        if page.not_modified and not page.etag and etag:
            page = replace(page, headers={**page.headers, "etag": etag})
        return self._check(page)

    def _fetch(self, url: str, *, origin_url: str, max_bytes: int, interval: float,
               extra_headers: Mapping[str, str] | None = None, check_robots: bool = False,
               truncate: bool = False) -> FetchedPage:
        """Follow allowed redirects; every hop is its own rate-limited, retried request."""
        started = time.monotonic()
        hops: list[str] = []
        current = url
        total_attempts = 0
        while True:
            status, headers, body, attempts = self._request_with_retries(current, max_bytes, interval,
                                                                         extra_headers or {}, truncate)
            total_attempts += attempts
            if status in REDIRECT_STATUSES and headers.get("location"):
                target = urljoin(current, headers["location"])
                hops.append(current)
                tp = urlsplit(target)
                if tp.scheme not in ("http", "https"):
                    raise RedirectRefused(url, f"redirect to a non-http URL {target!r}", attempts=total_attempts,
                                          status=status)
                if not self._allowed(target, origin_url):
                    raise RedirectRefused(url, f"redirect to {target!r}: host {tp.hostname!r} is not allowed",
                                          attempts=total_attempts, status=status)
                if len(hops) > self.config.max_redirects:
                    raise RedirectRefused(url, f"more than {self.config.max_redirects} redirects",
                                          attempts=total_attempts, status=status)
                if check_robots:
                    ok, note = self.can_fetch(target)
                    if not ok:
                        raise RobotsDisallowed(url, f"redirected to {target!r}, which robots.txt disallows ({note})",
                                               kind="robots", attempts=total_attempts)
                current = target
                continue
            return FetchedPage(
                url=url, final_url=current, status=status, headers=headers, body=body, fetched_at=utcnow(),
                not_modified=status == 304, attempts=total_attempts, elapsed=time.monotonic() - started,
                redirects=tuple(hops),
            )

    def _request_with_retries(self, url: str, max_bytes: int, interval: float, extra_headers: Mapping[str, str],
                              truncate: bool = False) -> tuple[int, dict[str, str], bytes, int]:
        cfg = self.config
        host = host_key(url)
        last_error = "no attempt made"
        for attempt in range(1, cfg.max_attempts + 1):
            retry_after: float | None = None
            with self.limiter.slot(host, interval) as slot:
                try:
                    status, headers, body = self._request_once(url, max_bytes, extra_headers, truncate)
                except ResponseTooLarge as exc:
                    exc.attempts = attempt
                    raise
                except _TooSlow as exc:
                    raise FetchFailed(url, str(exc), attempts=attempt) from exc
                except (requests.exceptions.SSLError, requests.exceptions.InvalidURL,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
                    raise FetchFailed(url, f"{type(exc).__name__}: {exc}", attempts=attempt) from exc
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                    status = 0
                    headers, body = {}, b""
                if status and status not in RETRY_STATUSES:
                    return status, headers, body, attempt
                if status:
                    # a WAF answering 403/503 with a challenge is a block, not a transient error
                    block = detect_block(status, headers, body, url)
                    if block and block[0] in ("waf", "captcha"):
                        return status, headers, body, attempt
                    last_error = f"HTTP {status}"
                    retry_after = parse_retry_after(headers.get("retry-after"))
                    if retry_after is not None and retry_after > cfg.max_retry_after:
                        page = FetchedPage(url, url, status, headers, body, utcnow(), attempts=attempt)
                        reason = (f"HTTP {status} with Retry-After {retry_after:.0f}s, more than max_retry_after "
                                  f"{cfg.max_retry_after:.0f}s: not waiting")
                        if status == 429:
                            raise FetchBlocked(url, reason, kind="rate_limited", page=page, attempts=attempt)
                        raise FetchFailed(url, reason, page=page, attempts=attempt)
                if retry_after is not None:
                    slot.defer(retry_after)  # the server's wish holds for every worker, even if we stop here
                if attempt == cfg.max_attempts:
                    if status:
                        return status, headers, body, attempt  # _check turns it into FetchBlocked/FetchFailed
                    raise FetchFailed(url, f"gave up after {attempt} attempts: {last_error}", attempts=attempt)
                backoff = min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1))
                delay = retry_after if retry_after is not None else backoff * (0.5 + random.random() / 2)
                slot.defer(delay)  # every worker of the run waits, not only this one
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_once(self, url: str, max_bytes: int, extra_headers: Mapping[str, str],
                      truncate: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One GET, read whole within ``max_response_time`` (a watchdog cuts it at the deadline).

        ``truncate``: past ``max_bytes`` keep the first ``max_bytes`` instead of refusing (robots.txt).
        """
        cfg = self.config
        size = 0
        with _Deadline(cfg.max_response_time) as deadline:
            try:
                with self.session.get(url, headers=dict(extra_headers),
                                      timeout=(cfg.connect_timeout, cfg.read_timeout),
                                      stream=True, allow_redirects=False) as resp:
                    headers = {k: resp.headers[k] for k in KEPT_HEADERS if k in resp.headers}
                    for k in ("cf-mitigated", "cf-ray"):
                        if k in resp.headers:
                            headers[k] = resp.headers[k]
                    declared = resp.headers.get("content-length")
                    if not truncate and declared and declared.isdigit() and int(declared) > max_bytes:
                        raise ResponseTooLarge(url, f"Content-Length {declared} exceeds the limit of {max_bytes} "
                                               "bytes", status=resp.status_code)
                    chunks: list[bytes] = []
                    for chunk in resp.iter_content(chunk_size=64 * 1024):
                        if size + len(chunk) > max_bytes:
                            if truncate:
                                chunks.append(chunk[: max_bytes - size])
                                size = max_bytes
                                headers[_TRUNCATED] = str(max_bytes)
                                break
                            raise ResponseTooLarge(url, f"body exceeds the limit of {max_bytes} bytes (stopped "
                                                   "reading)", status=resp.status_code)
                        size += len(chunk)
                        chunks.append(chunk)
                    deadline.disarm()
                    if deadline.fired:  # the cut may read as a clean end of a body without Content-Length
                        raise _TooSlow(cfg.max_response_time, size)
                    return resp.status_code, headers, b"".join(chunks)
            except (ResponseTooLarge, _TooSlow):
                raise
            except Exception as exc:
                if deadline.fired:
                    raise _TooSlow(cfg.max_response_time, size) from exc
                raise


class _TooSlow(Exception):
    """The response was not complete at the ``max_response_time`` deadline (a slow drip, a stalled server)."""

    def __init__(self, seconds: float, size: int) -> None:
        self.seconds = seconds
        self.size = size
        super().__init__(f"deadline of {seconds:g}s passed: response not complete after {seconds:g}s "
                         f"({size} body bytes read); not retried, a dripping server would do it again")


# ----------------------------------------------------------------------------------------------
# offline client
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalResponse:
    """A canned answer for :class:`LocalPagesClient`."""

    body: bytes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class LocalPagesClient(BaseHttpClient):
    """Serves saved pages from memory or a folder, with the same 304 and block semantics, no sockets.

    Lookups use :func:`canonical_url`, so query parameter order does not matter. Unknown URLs
    answer 404 (raised as FetchFailed), like a site past its last page.
    """

    def __init__(self, pages: Mapping[str, bytes | str | Path | LocalResponse]) -> None:
        self._pages: dict[str, LocalResponse] = {}
        for url, value in pages.items():
            if isinstance(value, LocalResponse):
                resp = value
            elif isinstance(value, Path):
                resp = LocalResponse(value.read_bytes(), headers={"content-type": _guess_type(value)})
            elif isinstance(value, str):
                resp = LocalResponse(value.encode("utf-8"), headers={"content-type": "text/html; charset=utf-8"})
            else:
                resp = LocalResponse(bytes(value))
            self._pages[canonical_url(url)] = resp
        self.requested: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], base_url: str) -> LocalPagesClient:
        """Each file ``<folder>/<path>`` answers ``<base_url>/<path>`` (also without a .html/.json suffix);
        a ``urls.tsv`` (URL<TAB>file) adds URLs with query strings."""
        root = Path(folder)
        pages: dict[str, bytes | str | Path | LocalResponse] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "urls.tsv":
                rel = path.relative_to(root).as_posix()
                pages[base_url.rstrip("/") + "/" + rel] = path
                if path.suffix.lower() in (".html", ".htm", ".json"):  # saved pages drop their extension
                    pages.setdefault(base_url.rstrip("/") + "/" + rel[: -len(path.suffix)], path)
        manifest = root / "urls.tsv"
        if manifest.exists():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("#"):
                    url, name = line.split("\t", 1)
                    pages[url.strip()] = root / name.strip()
        return cls(pages)

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchedPage:
        with self._lock:
            self.requested.append(url)
        resp = self._pages.get(canonical_url(url))
        if resp is None:
            resp = LocalResponse(b"not found", status=404, headers={"content-type": "text/plain"})
        headers = {k.lower(): v for k, v in resp.headers.items()}
        if resp.status == 200 and "etag" not in headers:
            headers["etag"] = f'"{hashlib.sha256(resp.body).hexdigest()[:32]}"'
        not_modified = resp.status == 200 and (
            (etag is not None and etag == headers.get("etag"))
            or (etag is None and last_modified is not None and last_modified == headers.get("last-modified")))
        page = FetchedPage(url=url, final_url=url, status=304 if not_modified else resp.status, headers=headers,
                           body=b"" if not_modified else resp.body, fetched_at=utcnow(), not_modified=not_modified)
        return self._check(page)


def _guess_type(path: Path) -> str:
    return {".json": "application/json", ".txt": "text/plain"}.get(path.suffix.lower(), "text/html; charset=utf-8")


# ----------------------------------------------------------------------------------------------
# many hosts at once
# ----------------------------------------------------------------------------------------------
def fetch_many(client: HttpClient, urls: Iterable[str], *, max_hosts: int = 4) -> dict[str, FetchedPage | FetchError]:
    """Fetch ``urls`` with up to ``max_hosts`` hosts in parallel, each host's URLs in order.

    The per-host limiter would serialize same-host requests anyway; grouping keeps threads from
    queueing on one host while another sits idle.
    """
    by_host: dict[str, list[str]] = {}
    for url in urls:
        by_host.setdefault(host_key(url), []).append(url)
    results: dict[str, FetchedPage | FetchError] = {}
    lock = threading.Lock()

    def run(host_urls: list[str]) -> None:
        for u in host_urls:
            try:
                out: FetchedPage | FetchError = client.get(u)
            except FetchError as exc:
                out = exc
            with lock:
                results[u] = out

    with ThreadPoolExecutor(max_workers=max(1, max_hosts), thread_name_prefix="fetch-host") as pool:
        for future in [pool.submit(run, group) for group in by_host.values()]:
            future.result()
    return results


__all__ = [
    "ClientConfig", "FetchBlocked", "FetchError", "FetchFailed", "FetchedPage", "HostRateLimiter", "HttpClient",
    "LocalPagesClient", "LocalResponse", "PageChanged", "PoliteHttpClient", "RedirectRefused", "ResponseTooLarge",
    "RobotsDisallowed", "canonical_url", "detect_block", "fetch_many", "host_key", "parse_retry_after",
    "set_query_params",
]
