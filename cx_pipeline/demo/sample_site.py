"""A Trustpilot-style review site on 127.0.0.1 for the demo and the end-to-end tests.

It renders the sample reviews in ``sample_data/review_site/*.yaml`` as company pages carrying a
``__NEXT_DATA__`` block, paginates them, and behaves like the real site where it matters to a
crawler: without ``languages=all`` it shows only Danish reviews (as locale sites do), it serves a
robots.txt, and it answers 404 past the last page. The real HTTP fetch path runs against it.
"""

from __future__ import annotations

import html
import json
import math
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

SAMPLE_SITE_DIR = Path(__file__).resolve().parent.parent / "sample_data" / "review_site"
DEFAULT_LANGUAGE = "da"
ROBOTS_TXT = "User-agent: *\nDisallow: /users/\nAllow: /review/\n"


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) == 10:  # a date: Trustpilot gives experienced dates as midnight UTC
        return f"{value}T00:00:00.000Z"
    return value.replace("Z", ".000Z") if value.endswith("Z") and "." not in value else value


def _review_json(r: dict[str, Any]) -> dict[str, Any]:
    reply = r.get("reply")
    return {
        "id": r["id"],
        "filtered": False,
        "pending": False,
        "text": r["text"],
        "rating": r["rating"],
        "labels": {
            "merged": None,
            "verification": {
                "isVerified": bool(r.get("verified")),
                "verificationSource": "invitation" if r.get("verified") else "organic",
            },
        },
        "title": r["title"],
        "likes": 0,
        "source": "Organic",
        "dates": {
            "experiencedDate": _iso(r.get("experienced")),
            "publishedDate": _iso(r["published"]),
            "updatedDate": _iso(r.get("updated")),
            "submittedDate": None,
        },
        "consumer": {
            "id": f"sample-{r['consumer']}",
            "displayName": f"Sample Customer {r['consumer'][1:]}",
            "countryCode": r.get("country"),
            "isVerified": bool(r.get("verified")),
            "numberOfReviews": 1,
        },
        "reply": None
        if not reply
        else {
            "message": reply["message"],
            "publishedDate": _iso(reply["published"]),
            "updatedDate": None,
        },
        "language": r["language"],
        "location": None,
    }


@dataclass
class SampleBusiness:
    domain: str
    business: dict[str, Any]
    reviews: list[dict[str, Any]]
    per_page: int

    @classmethod
    def load(cls, path: Path) -> SampleBusiness:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        reviews = sorted(data["reviews"], key=lambda r: r["published"], reverse=True)
        return cls(
            domain=data["business"]["identifyingName"],
            business=data["business"],
            reviews=reviews,
            per_page=int(data.get("per_page", 20)),
        )

    def render(self, *, page: int, languages: str, base_path: str) -> str | None:
        selected = self.reviews if languages == "all" else [r for r in self.reviews if r["language"] == languages]
        total_pages = max(1, math.ceil(len(selected) / self.per_page))
        if page < 1 or page > total_pages:
            return None
        chunk = selected[(page - 1) * self.per_page : page * self.per_page]
        stars = {str(k): sum(1 for r in self.reviews if r["rating"] == k) for k in range(1, 6)}
        langs = sorted({r["language"] for r in self.reviews})
        next_data = {
            "props": {
                "pageProps": {
                    "pageUrl": f"{base_path}?languages={languages}&page={page}",
                    "businessUnit": {**self.business, "numberOfReviews": len(self.reviews)},
                    "reviews": [_review_json(r) for r in chunk],
                    "filters": {
                        "pagination": {
                            "currentPage": page,
                            "perPage": self.per_page,
                            "totalCount": len(selected),
                            "totalPages": total_pages,
                        },
                        "selected": {"languages": languages, "date": None, "stars": None},
                        "totalNumberOfReviews": len(self.reviews),
                        "reviewStatistics": {
                            "ratings": {
                                "total": len(self.reviews),
                                "one": stars["1"],
                                "two": stars["2"],
                                "three": stars["3"],
                                "four": stars["4"],
                                "five": stars["5"],
                            },
                            "reviewLanguages": [
                                {"isoCode": code, "reviewCount": sum(1 for r in self.reviews if r["language"] == code)}
                                for code in langs
                            ],
                        },
                    },
                }
            },
            "page": "/review/[businessUnit]",
            "query": {"businessUnit": self.domain, "languages": languages, "page": str(page)},
            "buildId": "cx-sample-site-1",
        }
        payload = json.dumps(next_data, ensure_ascii=False).replace("<", "\\u003c")
        next_link = ""
        if page < total_pages:
            next_link = f'<link rel="next" href="{html.escape(base_path)}?languages={languages}&amp;page={page + 1}"/>'
        cards = "\n".join(
            f'<article data-service-review-card-paper="true"><h2>{html.escape(r["title"])}</h2>'
            f"<p>{html.escape(r['text'])}</p></article>"
            for r in chunk
        )
        return (
            f'<!DOCTYPE html><html lang="da"><head><meta charset="utf-8"/>'
            f"<title>{html.escape(self.business['displayName'])} anmeldelser | Trustpilot (sample)</title>"
            f"{next_link}</head>"
            f"<body><main>{cards}</main>"
            f'<script id="__NEXT_DATA__" type="application/json">{payload}</script></body></html>'
        )


def load_businesses(folder: Path = SAMPLE_SITE_DIR) -> dict[str, SampleBusiness]:
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        b = SampleBusiness.load(path)
        out[b.domain] = b
    return out


class SampleSiteServer:
    """Serves the sample businesses on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, folder: Path = SAMPLE_SITE_DIR) -> None:
        self.businesses = load_businesses(folder)
        self.requests: list[tuple[str, str]] = []  # (path with query, user agent)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("User-Agent", "")))
                parts = urlsplit(self.path)
                if parts.path == "/robots.txt":
                    return self._send(200, ROBOTS_TXT, "text/plain")
                segments = parts.path.strip("/").split("/")
                if len(segments) != 2 or segments[0] != "review" or segments[1] not in server.businesses:
                    return self._send(404, "not found", "text/plain")
                query = parse_qs(parts.query)
                try:
                    page = int(query.get("page", ["1"])[0])
                except ValueError:
                    page = 0
                languages = query.get("languages", [DEFAULT_LANGUAGE])[0]
                body = server.businesses[segments[1]].render(page=page, languages=languages, base_path=parts.path)
                if body is None:
                    return self._send(404, "no such page", "text/plain")
                return self._send(200, body, "text/html; charset=utf-8")

            def _send(self, status: int, body: str, ctype: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SampleSiteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
