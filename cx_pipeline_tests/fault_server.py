"""A scripted, fault-injecting review site on 127.0.0.1 for the fetch and crawl tests.

It serves Trustpilot-like company pages from a tiny template of our own (an HTML shell with a
``__NEXT_DATA__`` block; no fixture page is copied), paginated, with ETag/Last-Modified support,
a robots.txt, and a language filter that behaves like Trustpilot's (without ``languages=all`` only
the default language is shown). Tests script faults per path and page — 429 with Retry-After,
503 bursts, slow and truncated bodies, hangs, oversize pages, off-site redirects, login walls
served with 200, WAF and captcha pages, changed layouts — and read back every request with its
arrival time and Host, to prove the client's rate limit and that nothing was fetched twice.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

FaultKind = Literal[
    "status",  # answer ``status`` with ``headers`` (e.g. 429 + Retry-After, 503, 403, 404)
    "hang",  # wait ``delay`` seconds before answering (client read timeout)
    "slow",  # send the real page in 8 pieces, ``delay`` seconds apart
    "truncate",  # announce the full Content-Length, send half, close the connection
    "oversize",  # send ``size`` bytes (with or without Content-Length)
    "redirect",  # 302 to ``location``
    "login_wall",  # a login form with status 200
    "waf",  # Cloudflare-style block page with ``status`` (403 by default via Fault.waf())
    "captcha",  # captcha interstitial with status 200
    "changed_layout",  # __NEXT_DATA__ without props.pageProps.reviews
    "empty_reviews",  # the normal page but with reviews = []
    "other_page",  # serve page ``serve_page`` instead of the requested one (pagination ignored)
    "drip",  # the real answer one byte every ``delay`` seconds (headers too with ``drip_headers``)
    "body",  # status 200 with ``body`` as it is (a page of our own making, e.g. a broken review)
]

LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
DEFAULT_ROBOTS = "User-agent: *\nAllow: /\n"


@dataclass
class Fault:
    """One scripted misbehaviour; applies to the next ``times`` matching requests (0 = all of them)."""

    kind: FaultKind
    status: int = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    location: str = ""
    size: int = 0
    declare_length: bool = True
    serve_page: int = 1
    times: int = 1
    drip_headers: bool = False
    body: bytes = b""

    @classmethod
    def waf(cls, status: int = 403, times: int = 1) -> Fault:
        return cls("waf", status=status, times=times)


@dataclass
class RequestRecord:
    t: float  # time.time() when the request line arrived
    host: str  # Host header
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    served: str = ""  # "page", "304", "robots", or the fault kind

    @property
    def page(self) -> int:
        return int(self.query.get("page", "1"))


def make_reviews(n: int, *, prefix: str = "r", languages: Sequence[str] = ("da", "no", "sv", "en"),
                 start_day: int = 1) -> list[dict[str, Any]]:
    """``n`` distinct reviews, newest first, ids unique per prefix (24 chars like Trustpilot's)."""
    out = []
    for i in range(n):
        day = start_day + n - i  # newest first
        rid = hashlib.sha1(f"{prefix}-{i}".encode()).hexdigest()[:24]
        out.append({
            "id": rid,
            "rating": 1 + (i % 5),
            "title": f"Review {prefix}{i}",
            "text": f"Text of review {prefix}{i}.\nSecond line.",
            "language": languages[i % len(languages)],
            "dates": {"publishedDate": f"2025-03-{1 + day % 28:02d}T{i % 24:02d}:00:00.000Z",
                      "experiencedDate": "2025-02-01T00:00:00.000Z", "updatedDate": None},
            "consumer": {"id": f"c{prefix}{i}", "displayName": f"Customer {i}", "countryCode": "DK"},
            "reply": None,
            "labels": {"verification": {"isVerified": i % 2 == 0}},
        })
    return out


def render_page(slug: str, reviews: list[dict[str, Any]], *, page: int, total_pages: int, total_count: int,
                languages: str, next_href: str | None, layout: str = "normal") -> bytes:
    """Our tiny Trustpilot-like template: a <link rel=next> and a __NEXT_DATA__ script."""
    props: dict[str, Any] = {
        "businessUnit": {"id": f"bu-{slug}", "displayName": slug.title(), "identifyingName": slug,
                         "numberOfReviews": total_count, "trustScore": 4.1, "stars": 4},
        "filters": {"pagination": {"currentPage": page, "perPage": 5, "totalCount": total_count,
                                   "totalPages": total_pages},
                    "selected": {"languages": languages}},
    }
    if layout == "changed_layout":
        props["reviewCards"] = reviews  # a renamed field: what a redesign looks like to us
    else:
        props["reviews"] = [] if layout == "empty_reviews" else reviews
    data = {"props": {"pageProps": props}, "page": "/review/[businessUnit]",
            "query": {"businessUnit": slug, "page": str(page), "languages": languages}, "buildId": "fault-site"}
    link = f'<link rel="next" href="{html.escape(next_href)}"/>' if next_href else ""
    payload = json.dumps(data).replace("<", "\\u003c")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(slug)} | fault-site trustpilot"
            f"</title>{link}</head><body><h1>{html.escape(slug)}</h1>"
            f'<script id="__NEXT_DATA__" type="application/json">{payload}</script></body></html>').encode()


LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Log in | Reviews</title></head><body>"
              b"<form method=\"post\" action=\"/users/connect\"><input type=\"email\" name=\"email\">"
              b"<input type=\"password\" name=\"password\"><button>Continue</button></form></body></html>")
WAF_PAGE = (b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>"
            b"<div id=\"cf-error-details\"><h1>Sorry, you have been blocked</h1></div></body></html>")
CAPTCHA_PAGE = (b"<!DOCTYPE html><html><head><title>Are you a robot?</title></head><body>"
                b"<script src=\"https://ct.captcha-delivery.com/c.js\"></script></body></html>")


class FaultServer:
    """Serves ``businesses`` (slug → reviews) under ``/review/<slug>`` with scripted faults."""

    def __init__(
        self,
        businesses: Mapping[str, list[dict[str, Any]]] | None = None,
        *,
        per_page: int = 5,
        next_link: Literal["absolute", "relative", "none"] = "absolute",
        default_language: str = "da",
        honour_languages: bool = True,
        robots_txt: str = DEFAULT_ROBOTS,
    ) -> None:
        self.businesses: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in (businesses or {}).items()}
        self.per_page = per_page
        self.next_link = next_link
        self.default_language = default_language
        self.honour_languages = honour_languages
        self.robots_txt = robots_txt
        self.requests: list[RequestRecord] = []
        self._faults: dict[tuple[str, int | None], list[Fault]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    # -- scripting --------------------------------------------------------------------------
    def add_fault(self, path: str, fault: Fault, *, page: int | None = None) -> None:
        """Script ``fault`` for ``path`` (``/review/<slug>`` or ``/robots.txt``), one page or all pages."""
        with self._lock:
            self._faults.setdefault((path, page), []).append(fault)

    def _take_fault(self, path: str, page: int | None) -> Fault | None:
        with self._lock:
            for key in ((path, page), (path, None)):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            queue.pop(0)
                    return fault
        return None

    # -- reading back ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc

    def url(self, slug: str, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{self.base_url}/review/{slug}" + (f"?{q}" if q else "")

    def records(self, path: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def gaps(self, path: str | None = None) -> list[float]:
        """Seconds between consecutive request arrivals (all paths of this server = one host)."""
        times = sorted(r.t for r in self.records(path))
        return [b - a for a, b in itertools.pairwise(times)]

    # -- rendering ---------------------------------------------------------------------------
    def page_body(self, slug: str, page: int, languages: str | None, path: str, layout: str = "normal") -> bytes | None:
        reviews = self.businesses[slug]
        applied = languages if (self.honour_languages and languages) else self.default_language
        selected = reviews if applied == "all" else [r for r in reviews if r["language"] == applied]
        total_pages = max(1, math.ceil(len(selected) / self.per_page))
        if page < 1 or page > total_pages:
            return None
        chunk = selected[(page - 1) * self.per_page: page * self.per_page]
        next_href = None
        if page < total_pages:
            if self.next_link == "absolute":
                next_href = f"{self.base_url}{path}?languages={applied}&page={page + 1}"
            elif self.next_link == "relative":
                next_href = f"{path}?page={page + 1}"  # like locale sites: no languages parameter
        return render_page(slug, chunk, page=page, total_pages=total_pages, total_count=len(selected),
                           languages=applied, next_href=next_href, layout=layout)

    # -- HTTP ----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                arrived = time.time()
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                rec = RequestRecord(arrived, self.headers.get("Host", ""), parts.path, query,
                                    {k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.requests.append(rec)
                try:
                    rec.served = self._serve(parts.path, query)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    self.close_connection = True

            def _serve(self, path: str, query: dict[str, str]) -> str:
                page_no = int(query["page"]) if query.get("page", "").isdigit() else 1
                fault = server._take_fault(path, None if path == "/robots.txt" else page_no)
                if fault is not None:
                    return self._fault(fault, path, query, page_no)
                if path == "/robots.txt":
                    self._send(200, server.robots_txt.encode(), {"Content-Type": "text/plain"})
                    return "robots"
                body = self._page(path, query, page_no)
                if body is None:
                    self._send(404, b"no such page", {"Content-Type": "text/plain"})
                    return "404"
                etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if (inm is not None and inm == etag) or (inm is None and ims == LAST_MODIFIED):
                    self._send(304, b"", {"ETag": etag, "Last-Modified": LAST_MODIFIED})
                    return "304"
                self._send(200, body, {"Content-Type": "text/html; charset=utf-8", "ETag": etag,
                                       "Last-Modified": LAST_MODIFIED})
                return "page"

            def _page(self, path: str, query: dict[str, str], page_no: int, layout: str = "normal") -> bytes | None:
                segments = path.strip("/").split("/")
                if len(segments) != 2 or segments[0] != "review" or segments[1] not in server.businesses:
                    return None
                return server.page_body(segments[1], page_no, query.get("languages"), path, layout)

            def _fault(self, fault: Fault, path: str, query: dict[str, str], page_no: int) -> str:
                if path == "/robots.txt":
                    normal = server.robots_txt.encode()
                else:
                    normal = self._page(path, query, page_no) or b"not found"
                html_type = {"Content-Type": "text/html; charset=utf-8"}
                if fault.kind == "status":
                    no_body = fault.status in (204, 304)  # a body there would corrupt the kept-alive connection
                    self._send(fault.status, b"" if no_body else f"status {fault.status}".encode(),
                               {"Content-Type": "text/plain", **fault.headers})
                elif fault.kind == "drip":
                    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(normal)}\r\n"
                            "Connection: close\r\n\r\n").encode()
                    self.close_connection = True
                    if not fault.drip_headers:
                        self.wfile.write(head)
                        self.wfile.flush()
                        head = b""
                    for i in range(len(head) + len(normal)):
                        self.wfile.write((head + normal)[i:i + 1])
                        self.wfile.flush()
                        time.sleep(fault.delay)
                elif fault.kind == "body":
                    self._send(200, fault.body, html_type)
                elif fault.kind == "hang":
                    time.sleep(fault.delay)
                    self._send(200, normal, html_type)
                elif fault.kind == "slow":
                    self.send_response(200)
                    self.send_header("Content-Type", html_type["Content-Type"])
                    self.send_header("Content-Length", str(len(normal)))
                    self.end_headers()
                    step = math.ceil(len(normal) / 8)
                    for i in range(0, len(normal), step):
                        self.wfile.write(normal[i:i + step])
                        self.wfile.flush()
                        time.sleep(fault.delay)
                elif fault.kind == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Type", html_type["Content-Type"])
                    self.send_header("Content-Length", str(len(normal)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(normal[: len(normal) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif fault.kind == "oversize":
                    self.send_response(200)
                    self.send_header("Content-Type", html_type["Content-Type"])
                    if fault.declare_length:
                        self.send_header("Content-Length", str(fault.size))
                    else:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    block = b"x" * 65536
                    sent = 0
                    while sent < fault.size:
                        n = min(len(block), fault.size - sent)
                        self.wfile.write(block[:n])
                        sent += n
                elif fault.kind == "redirect":
                    self._send(fault.status if fault.status in (301, 302, 303, 307, 308) else 302, b"",
                               {"Location": fault.location})
                elif fault.kind == "login_wall":
                    self._send(200, LOGIN_PAGE, html_type)
                elif fault.kind == "waf":
                    self._send(fault.status, WAF_PAGE, {**html_type, "Server": "cloudflare", "CF-RAY": "0-TEST"})
                elif fault.kind == "captcha":
                    self._send(200, CAPTCHA_PAGE, html_type)
                elif fault.kind in ("changed_layout", "empty_reviews"):
                    self._send(200, self._page(path, query, page_no, fault.kind) or b"", html_type)
                elif fault.kind == "other_page":
                    self._send(200, self._page(path, query, fault.serve_page) or b"", html_type)
                else:  # pragma: no cover - a typo in a test
                    raise ValueError(f"unknown fault {fault.kind}")
                return fault.kind

            def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        return Handler

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
