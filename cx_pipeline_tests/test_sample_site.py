from __future__ import annotations

import requests

from cx_pipeline.demo.sample_site import SampleSiteServer
from cx_pipeline.sources import get_format


def test_sample_site_paginates_and_filters_languages_like_the_real_site() -> None:
    fmt = get_format("trustpilot")
    with SampleSiteServer() as site:
        url = f"{site.base_url}/review/nordlys-shop.dk?languages=all"
        seen = []
        while url:
            r = requests.get(url, timeout=5)
            assert r.status_code == 200
            parsed = fmt.parse(r.content, location=r.url)
            assert parsed.page.language_filter == "all"
            seen += parsed.measures["native_id"].to_list()
            url = parsed.page.next_url
        assert len(seen) == len(set(seen)) == 24
        danish_only = fmt.parse(
            requests.get(f"{site.base_url}/review/nordlys-shop.dk", timeout=5).content, location="x"
        )
        assert danish_only.page.language_filter == "da"
        assert set(danish_only.measures["language"]) == {"da"}
        assert (
            requests.get(f"{site.base_url}/review/nordlys-shop.dk?languages=all&page=9", timeout=5).status_code == 404
        )
        assert "Disallow: /users/" in requests.get(f"{site.base_url}/robots.txt", timeout=5).text
