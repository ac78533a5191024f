"""Main-text extraction from article pages: the world's realistic page and hostile HTML."""

from __future__ import annotations

from datetime import UTC, datetime

from crawlers.parsers.articles import extract_article
from crawlers.parsers.html_text import html_to_text


def test_world_article_page_yields_only_the_story(world_at_start):
    article = world_at_start.scenario.articles[0]
    page = world_at_start.news.article_page(article, world_at_start.clock.now()).encode()
    result = extract_article(page, url="https://courier.example/a.html")
    assert result.extractor == "trafilatura"
    for paragraph in article.paragraphs:
        assert paragraph in result.text
    for chrome in ("cookies", "Advertisement", "Sign up", "dataLayer", "All rights reserved"):
        assert chrome not in result.text
    assert result.title == article.title
    assert result.author == article.author
    assert result.published == article.published_at.astimezone(UTC)


SCRIPT_HEAVY = """<!DOCTYPE html><html lang="de"><head><title>T</title>
<script>var secret = "SCRIPT-TEXT"; document.write('<p>INJECTED</p>');</script>
<style>body { content: "STYLE-TEXT"; }</style></head><body>
<script src="x.js"></script><noscript>NOSCRIPT-TEXT</noscript>
<article><h1>Hostile page</h1><script>alert("INLINE")</script>
<p>Only this sentence is the article text and it is long enough to be kept as content.</p>
<style>.x{}</style><template><p>TEMPLATE-TEXT</p></template></article>
<script>for(;;){}</script></body></html>"""


def test_html_full_of_scripts_gives_only_article_text():
    result = extract_article(SCRIPT_HEAVY.encode())
    assert "Only this sentence is the article text" in result.text
    for leak in ("SCRIPT", "STYLE", "INJECTED", "INLINE", "NOSCRIPT", "TEMPLATE", "alert"):
        assert leak not in result.text
    assert result.language == "de"


def test_fallback_to_article_element_when_trafilatura_finds_nothing():
    page = (
        b"<html><body><nav>Menu</nav><article><p>Short.</p><aside>Ad</aside></article>"
        b"</body></html>"
    )
    result = extract_article(page)
    assert result.text == "Short."
    assert result.extractor in ("trafilatura", "article-fallback")


def test_empty_or_binary_pages_give_no_text_and_no_exception():
    assert extract_article(b"").text == ""
    assert extract_article(b"\x89PNG\r\n\x1a\n\x00\x00garbage").extractor in (
        "none",
        "article-fallback",
        "trafilatura",
    )


def test_latin1_page_is_decoded():
    page = (
        '<html><head><meta charset="iso-8859-1"></head><body><article>'
        "<p>Não há notícias.</p></article></body></html>"
    )
    assert "Não há notícias." in extract_article(page.encode("latin-1")).text


def test_html_to_text_keeps_paragraphs_breaks_and_links():
    html = (
        '<p>Hello <a href="https://x.example/long"><span class="invisible">https://</span>'
        '<span class="ellipsis">x.example/lo</span><span class="invisible">ng</span></a><br />'
        "next line</p><p>second &amp; last</p><script>evil()</script>"
    )
    assert html_to_text(html) == "Hello https://x.example/long\nnext line\n\nsecond & last"
    assert html_to_text("") == "" and html_to_text("plain") == "plain"


def test_published_date_comes_from_metadata():
    page = (
        '<html><head><meta property="article:published_time" content="2026-11-02T08:15:00Z">'
        "</head><body><article><p>Text of the story that is long enough to count.</p>"
        "</article></body></html>"
    )
    assert extract_article(page).published == datetime(2026, 11, 2, 8, 15, tzinfo=UTC)


def test_json_ld_nested_too_deeply_is_skipped_and_the_text_kept():
    deep = "[" * 100_000 + "]" * 100_000
    page = (
        f'<html lang="en"><head><script type="application/ld+json">{deep}</script></head>'
        "<body><article><h1>Harbour</h1><p>The Tessford harbour board approved the winter "
        "ferry plan on Monday after a long debate among its members.</p></article></body></html>"
    )
    article = extract_article(page, url="https://news.example/harbour")
    assert "winter ferry plan" in article.text
