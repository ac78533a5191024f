"""Behaviour of the emulated news site: feeds, pages, robots.txt and conditional GET."""

from __future__ import annotations

from urllib.robotparser import RobotFileParser

import requests
from lxml import etree, html

from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario


def _get(world: WorldServer, path: str, **headers: str) -> requests.Response:
    return requests.get(world.url + path, headers=headers, timeout=5)


def test_robots_txt_disallows_private_paths_and_names_a_crawl_delay(tiny: WorldServer) -> None:
    response = _get(tiny, "/robots.txt")
    assert response.headers["content-type"].startswith("text/plain")
    robots = RobotFileParser()
    robots.parse(response.text.splitlines())
    assert robots.crawl_delay("FreshLMBot") == 1
    assert not robots.can_fetch("FreshLMBot", f"{tiny.url}/search?q=x")
    assert not robots.can_fetch("FreshLMBot", f"{tiny.url}/private/staff.html")
    assert not robots.can_fetch("BadBot", f"{tiny.url}/news/feeds/all.rss")
    for allowed in (
        "/news/feeds/all.rss",
        "/news/tech/tech-one.html",
        "/api/v1/timelines/public",
        "/api/query",
    ):
        assert robots.can_fetch("FreshLMBot", tiny.url + allowed), allowed


def test_article_page_has_the_text_inside_realistic_chrome(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    response = _get(tiny, "/news/tech/tech-one.html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = html.fromstring(response.content)
    article = page.xpath("//article")[0]
    body = article.xpath(".//div[@itemprop='articleBody']/p/text()")
    assert body == [f"Paragraph {n} of tech-one with the real article text." for n in range(5)]
    # Around the article: the chrome a boilerplate remover must strip.
    assert page.xpath("//nav") and page.xpath("//footer")
    assert page.xpath("//*[@id='cookie-banner']")
    assert len(page.xpath("//*[contains(@class, 'ad-slot')]")) >= 3
    assert page.xpath("//article//*[contains(@class, 'ad-slot')]")  # one inside the body
    assert len(page.xpath("//script")) >= 3
    ld = page.xpath("//script[@type='application/ld+json']/text()")[0]
    assert '"@type": "NewsArticle"' in ld and '"datePublished": "2026-11-02T08:00:00Z"' in ld
    # Related links are earlier stories of the section: absolute, and never from the future.
    related = page.xpath("//aside[@class='related']//a/@href")
    assert related == [f"{tiny.url}/news/tech/old-tech.html"]
    assert page.xpath("//link[@rel='canonical']/@href") == [f"{tiny.url}/news/tech/tech-one.html"]


def test_unpublished_articles_are_404_until_their_time(tiny: WorldServer) -> None:
    assert _get(tiny, "/news/tech/tech-one.html").status_code == 404
    tiny.clock.set(tiny_scenario.DAY2)
    assert _get(tiny, "/news/tech/tech-one.html").status_code == 200
    assert _get(tiny, "/news/tech/tech-three.html").status_code == 404
    assert _get(tiny, "/news/tech/nonexistent.html").status_code == 404


def test_feed_links_are_absolute_from_the_public_url() -> None:
    public = "https://courier.example.org"
    with WorldServer(tiny_scenario.build(), start="day:3", public_url=public) as world:
        feed = etree.fromstring(_get(world, "/news/feeds/all.rss").content)
        links = [e.text for e in feed.iter("link")] + [e.text for e in feed.iter("guid")]
        assert links and all(link.startswith(public + "/") for link in links)
        page = _get(world, "/news/tech/tech-one.html").text
        assert f'href="{public}/news/tech/"' in page and world.url not in page


def test_conditional_get_answers_304_until_new_items_appear(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    first = _get(tiny, "/news/feeds/all.rss")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert modified == "Mon, 02 Nov 2026 10:00:00 GMT"  # the newest visible story
    assert _get(tiny, "/news/feeds/all.rss", **{"If-None-Match": etag}).status_code == 304
    assert _get(tiny, "/news/feeds/all.rss", **{"If-Modified-Since": modified}).status_code == 304
    # Moving the clock without new content keeps the validators valid.
    tiny.clock.set(tiny_scenario._at(tiny_scenario.DAY2, 7))
    same = _get(tiny, "/news/feeds/all.rss", **{"If-None-Match": etag})
    assert same.status_code == 304 and same.headers["ETag"] == etag and not same.content
    # New stories: a 200 with a new ETag and a later Last-Modified.
    tiny.clock.set(tiny_scenario._at(tiny_scenario.DAY2, 11))
    changed = _get(tiny, "/news/feeds/all.rss", **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.headers["Last-Modified"] == "Tue, 03 Nov 2026 10:00:00 GMT"
    assert _get(tiny, "/news/feeds/all.rss", **{"If-Modified-Since": modified}).status_code == 200


def test_article_pages_revalidate_too(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    page = _get(tiny, "/news/tech/tech-two.html")
    etag = page.headers["ETag"]
    assert page.headers["Last-Modified"] == "Mon, 02 Nov 2026 09:00:00 GMT"
    tiny.clock.set(tiny_scenario.DAY3)  # later stories do not change this page...
    assert _get(tiny, "/news/tech/tech-one.html").status_code == 200
    # ...but tech-two's update (day 2, 09:00) does: its Last-Modified moves.
    updated = _get(tiny, "/news/tech/tech-two.html", **{"If-None-Match": etag})
    assert updated.status_code == 200
    assert updated.headers["Last-Modified"] == "Tue, 03 Nov 2026 09:00:00 GMT"


def test_feeds_list_the_newest_items_of_their_sections(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY3 + (tiny_scenario.DAY2 - tiny_scenario.DAY1))
    rss = etree.fromstring(_get(tiny, "/news/feeds/tech.rss").content)
    titles = [i.findtext("title") for i in rss.iter("item")]
    assert titles == [
        "Story tech-four",
        "Story tech-three",
        "Story tech-two",
        "Story tech-one",
        "Story old-tech",
    ]
    item = next(rss.iter("item"))
    assert item.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Mira Okonjo"
    assert "Paragraph 0 of tech-four" in item.findtext(
        "{http://purl.org/rss/1.0/modules/content/}encoded"
    )


def test_front_and_section_pages(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    front = html.fromstring(_get(tiny, "/").content)
    hrefs = front.xpath("//li[@class='teaser']/a/@href")
    assert f"{tiny.url}/news/local/local-one.html" in hrefs
    assert f"{tiny.url}/news/tech/tech-three.html" not in hrefs
    feeds = front.xpath("//link[@rel='alternate']/@href")
    assert f"{tiny.url}/news/feeds/local.atom" in feeds
    section = html.fromstring(_get(tiny, "/news/local/").content)
    assert section.xpath("//li[@class='teaser']/a/@href") == [
        f"{tiny.url}/news/local/local-one.html"
    ]
