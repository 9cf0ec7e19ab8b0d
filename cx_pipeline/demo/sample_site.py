"""A Trustpilot-style review site on 127.0.0.1 for the demo and the end-to-end tests.

It renders the sample reviews in ``sample_data/review_site/*.yaml`` as company pages carrying a
``__NEXT_DATA__`` block, paginates them, and behaves like the real site where it matters to a
crawler: without ``languages=all`` it shows only Danish reviews (as locale sites do), it serves a
robots.txt, and it answers 404 past the last page. The real HTTP fetch path runs against it.

It also serves the demo brand's app reviews (``sample_data/review_site/appstore/*.yaml``) as an
Apple-style customer-reviews RSS JSON feed, ``/{country}/rss/customerreviews/page={n}/id={app}/
sortBy=mostRecent/json``: newest first, ``{"label": …}``-wrapped values, feed links pointing at the XML
variant as Apple's do, a feed without ``entry`` past the last page, and Apple's plain-text answer past
page 10.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

SAMPLE_SITE_DIR = Path(__file__).resolve().parent.parent / "sample_data" / "review_site"
APPSTORE_DIR_NAME = "appstore"
APPSTORE_PATH = re.compile(r"^/([a-z]{2})/rss/customerreviews/(?:page=(\d+)/)?id=(\d+)(?:/sortBy=mostRecent)?/json$",
                           re.I)
APPSTORE_DEPTH_LIMIT = "CustomerReviews RSS page depth is limited to 10"
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
                        # reviews are listed newest first, as Trustpilot's default "recency" order
                        "selected": {"languages": languages, "date": None, "stars": None, "sort": "recency"},
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


def _label(value: Any) -> dict[str, Any]:
    return {"label": "" if value is None else str(value)}


@dataclass
class SampleApp:
    """One app's reviews per store country, rendered like Apple's customer-reviews JSON feed."""

    app: dict[str, Any]
    stores: dict[str, list[dict[str, Any]]]
    per_page: int

    @classmethod
    def load(cls, path: Path) -> SampleApp:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        stores = {str(cc).lower(): sorted(revs, key=lambda r: str(r["updated"]), reverse=True)
                  for cc, revs in data["stores"].items()}
        return cls(app=data["app"], stores=stores, per_page=int(data.get("per_page", 50)))

    @property
    def app_id(self) -> str:
        return str(self.app["id"])

    @property
    def reviews(self) -> list[dict[str, Any]]:
        return [r for revs in self.stores.values() for r in revs]

    def render(self, *, country: str, page: int, host: str) -> tuple[int, str, str]:
        """(status, body, content type) for one feed page."""
        if page > 10:
            return 200, APPSTORE_DEPTH_LIMIT, "text/plain; charset=utf-8"
        reviews = self.stores.get(country, [])
        last = max(1, math.ceil(len(reviews) / self.per_page))
        chunk = reviews[(page - 1) * self.per_page : page * self.per_page] if page >= 1 else []
        base = f"http://{host}/{country}/rss/customerreviews"

        def xml_link(rel: str, n: int | None) -> dict[str, Any]:
            desc = f"urlDesc=/customerreviews/id={self.app_id}/json"
            href = "" if n is None else f"{base}/page={n}/id={self.app_id}/sortby=mostrecent/xml?{desc}"
            return {"attributes": {"rel": rel, "href": href}}

        feed: dict[str, Any] = {
            "author": {"name": _label("iTunes Store"), "uri": _label("http://www.apple.com/itunes/")},
            "updated": _label("2026-11-24T05:00:00-07:00"),
            "rights": _label("Copyright 2008 Apple Inc."),
            "title": _label("iTunes Store: Customer Reviews"),
            "icon": _label("http://itunes.apple.com/favicon.ico"),
            "link": [
                {"attributes": {"rel": "alternate", "type": "text/html",
                                "href": f"http://{host}/WebObjects/MZStore.woa/wa/viewGrouping?cc={country}"}},
                {"attributes": {"rel": "self",
                                "href": f"{base}/page={page}/id={self.app_id}/sortby=mostrecent/json"}},
                xml_link("first", 1 if reviews else None),
                xml_link("last", last if reviews else None),
                xml_link("previous", max(1, page - 1) if reviews else None),
                xml_link("next", min(last, page + 1) if reviews else None),
            ],
            "id": _label(f"{base}/page={page}/id={self.app_id}/sortby=mostrecent/json"),
        }
        if chunk:
            feed["entry"] = [self._entry(r, country, host) for r in chunk]
        return 200, json.dumps({"feed": feed}, ensure_ascii=False), "application/json; charset=utf-8"

    def _entry(self, r: dict[str, Any], country: str, host: str) -> dict[str, Any]:
        vote_sum, vote_count = r.get("votes", [0, 0])
        return {
            "author": {"uri": _label(f"http://{host}/{country}/reviews/id{r['user']}"), "name": _label(r["nick"]),
                       "label": ""},
            "updated": _label(r["updated"]),
            "im:rating": _label(r["rating"]),
            "im:version": _label(r["version"]),
            "id": _label(r["id"]),
            "title": _label(r["title"]),
            "content": {"label": r["content"], "attributes": {"type": "text"}},
            "link": {"attributes": {"rel": "related",
                                    "href": f"http://{host}/{country}/review?id={self.app_id}&type=Purple%20Software"}},
            "im:voteSum": _label(vote_sum),
            "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
            "im:voteCount": _label(vote_count),
        }


def load_apps(folder: Path = SAMPLE_SITE_DIR) -> dict[str, SampleApp]:
    """The sample apps by App Store id (``<folder>/appstore/*.yaml``)."""
    out = {}
    for path in sorted((folder / APPSTORE_DIR_NAME).glob("*.yaml")):
        app = SampleApp.load(path)
        out[app.app_id] = app
    return out


def load_businesses(folder: Path = SAMPLE_SITE_DIR) -> dict[str, SampleBusiness]:
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        b = SampleBusiness.load(path)
        out[b.domain] = b
    return out


#: the port the bundled sources file expects when CX_SAMPLE_SITE_URL is not set (``cx-pipeline serve-sample-site``)
DEFAULT_PORT = 8765


class SampleSiteServer:
    """Serves the sample businesses on 127.0.0.1 in a background thread; ``port=0`` takes a free port (the demo and
    the tests), ``DEFAULT_PORT`` is where the bundled sources file looks for it."""

    def __init__(self, folder: Path = SAMPLE_SITE_DIR, *, port: int = 0) -> None:
        self.businesses = load_businesses(folder)
        self.apps = load_apps(folder)
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
                feed = APPSTORE_PATH.match(parts.path)
                if feed:
                    app = server.apps.get(feed.group(3))
                    if app is None:
                        return self._send(404, "not found", "text/plain")
                    status, body, ctype = app.render(country=feed.group(1).lower(), page=int(feed.group(2) or 1),
                                                     host=self.headers.get("Host", "127.0.0.1"))
                    return self._send(status, body, ctype)
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

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def page_urls(self) -> list[str]:
        """The first page of every sample business and app feed, as the bundled sources file lists them."""
        pages = [f"{self.base_url}/review/{domain}" for domain in self.businesses]
        pages += [f"{self.base_url}/{cc}/rss/customerreviews/page=1/id={app_id}/sortBy=mostRecent/json"
                  for app_id, app in self.apps.items() for cc in app.stores]
        return pages

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
