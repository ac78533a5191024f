"""The news site: RSS 2.0 and Atom 1.0 section feeds, article pages in realistic chrome, robots.txt.

Paths:

* each scenario :class:`~sandbox.model.Feed` at its ``path`` (RSS 2.0 with ``dc:creator``
  and ``content:encoded``, or Atom 1.0), listing the newest :data:`FEED_ITEMS` visible articles;
* ``/news/<section>/<slug>.html``: the article page, 404 until it is published;
* ``/``, ``/news/<section>/``: front and section pages linking to articles and feeds;
* ``/robots.txt``: disallows :data:`DISALLOWED` and names a crawl delay;
* ``/search`` and ``/private/...``: pages a polite crawler never fetches (robots.txt says so).

Every page is a pure function of what is visible at "now", and the dates inside it are item
dates, never "now"; so the ETag (a hash of the body) and Last-Modified (the newest visible
item) change exactly when visible content changes, and conditional GETs stay correct across
clock moves. From the first story of a scenario day listed in a feed's ``malformed_on_days``
until the next day's first story, that feed is served truncated and not well-formed, like a
CMS failing mid-render (the Reuters fixture).
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from urllib.parse import quote

from lxml import etree

from sandbox.http_messages import Request, Response, iso_seconds, rfc822_date
from sandbox.model import Article, Feed, Scenario

FEED_ITEMS = 50
RELATED_LINKS = 3
DISALLOWED = ("/private/", "/search", "/_world/")

ATOM = "http://www.w3.org/2005/Atom"
DC = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


class NewsSite:
    """Renders the scenario's articles as a news site at ``base_url``."""

    def __init__(
        self,
        scenario: Scenario,
        base_url: str,
        crawl_delay: float = 1.0,
        site_name: str | None = None,
    ):
        self.scenario = scenario
        self.base_url = base_url.rstrip("/")
        self.crawl_delay = crawl_delay
        self.site_name = site_name or _site_name(scenario)
        everything = (*scenario.archive, *scenario.articles)
        self.sections = sorted({a.section for a in everything})
        self._by_path = {self.article_path(a): a for a in everything}
        self._feeds = {f.path: f for f in scenario.feeds}

    # --- URLs --------------------------------------------------------------------------------

    @staticmethod
    def article_path(article: Article) -> str:
        return f"/news/{article.section}/{article.slug}.html"

    def url(self, path: str) -> str:
        return self.base_url + quote(path)

    # --- routing -------------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        """Whether ``path`` belongs to the news site (everything but the APIs and /_world/)."""
        return not (path.startswith("/api/") or path.startswith("/_world/"))

    def handle(self, request: Request, now: datetime) -> Response:
        path = request.path
        if path == "/robots.txt":
            return Response.text(self.robots_txt())
        if path in self._feeds:
            return self.feed_response(self._feeds[path], now)
        if path in ("/", "/index.html"):
            return self._page(self.front_page(now), self._newest(now))
        match = re.fullmatch(r"/news/([a-z0-9-]+)/?", path)
        if match and match.group(1) in self.sections:
            return self._page(self.section_page(match.group(1), now), self._newest(now))
        article = self._by_path.get(path)
        if article is not None and article.published_at <= now:
            return self._page(self.article_page(article, now), _modified(article, now))
        if path == "/search":
            query = request.param("q") or ""
            return Response.text(
                self._chrome("Search", f"<p>No results for {_e(query)}.</p>"),
                content_type=HTML_TYPE,
            )
        if path.startswith("/private/"):
            return Response.text(
                self._chrome("Staff area", "<p>Staff only. Please sign in.</p>"),
                content_type=HTML_TYPE,
            )
        return Response.text(
            self._chrome("Page not found", "<p>We could not find that page.</p>"),
            404,
            HTML_TYPE,
        )

    def _page(self, body: str, last_modified: datetime | None) -> Response:
        response = Response.text(body, content_type=HTML_TYPE)
        response.last_modified = last_modified
        return response

    def _newest(self, now: datetime) -> datetime | None:
        visible = self.scenario.articles_at(now)
        return max((_modified(a, now) for a in visible), default=None)

    # --- robots.txt ------------------------------------------------------------------------

    def robots_txt(self) -> str:
        lines = [
            f"# robots.txt for {self.site_name}",
            "User-agent: *",
            f"Crawl-delay: {self.crawl_delay:g}",
            *(f"Disallow: {p}" for p in DISALLOWED),
            "",
            "# A scraper that ignored our terms.",
            "User-agent: BadBot",
            "Disallow: /",
            "",
        ]
        return "\n".join(lines)

    # --- feeds -------------------------------------------------------------------------------

    def feed_items(self, feed: Feed, now: datetime) -> list[Article]:
        return self.scenario.articles_at(now, feed.sections)[:FEED_ITEMS]

    def feed_response(self, feed: Feed, now: datetime) -> Response:
        items = self.feed_items(feed, now)
        body = self.rss(feed, items, now) if feed.format == "rss" else self.atom(feed, items, now)
        if self._broken(feed, now):
            body = _truncate_like_a_failing_cms(body)
        response = Response(200, body, RSS_TYPE if feed.format == "rss" else ATOM_TYPE)
        response.last_modified = max((_modified(a, now) for a in items), default=None)
        return response

    def _broken(self, feed: Feed, now: datetime) -> bool:
        """Whether ``feed`` is served broken at ``now``.

        The site's CMS breaks while publishing day N's stories and stays broken until the first
        story of the next day: keyed on the newest visible story's day rather than on the
        clock's date, so the nightly crawl that runs after day N (whatever time it runs) sees
        the broken feed, and the crawl of the night before does not.
        """
        if not feed.malformed_on_days:
            return False
        newest = self.scenario.articles_at(now)[:1]
        day = self.scenario.day_of(newest[0].published_at) if newest else None
        return day is not None and day.number in feed.malformed_on_days

    def _feed_home(self, feed: Feed) -> str:
        return self.url(f"/news/{feed.sections[0]}/" if len(feed.sections) == 1 else "/")

    def rss(self, feed: Feed, items: list[Article], now: datetime) -> bytes:
        """RSS 2.0 with the Atom self link, ``dc:creator`` and ``content:encoded``."""
        rss = etree.Element(
            "rss", version="2.0", nsmap={"atom": ATOM, "dc": DC, "content": CONTENT}
        )
        channel = etree.SubElement(rss, "channel")
        _text(channel, "title", feed.title)
        _text(channel, "link", self._feed_home(feed))
        _text(channel, "description", f"The latest stories from {self.site_name}")
        _text(channel, "language", "en")
        _text(channel, "copyright", f"Copyright {self.site_name}")
        etree.SubElement(
            channel,
            f"{{{ATOM}}}link",
            href=self.url(feed.path),
            rel="self",
            type="application/rss+xml",
        )
        if items:
            newest = max(_modified(a, now) for a in items)
            _text(channel, "pubDate", rfc822_date(newest))
            _text(channel, "lastBuildDate", rfc822_date(newest))
        _text(channel, "generator", "FreshLM sandbox world")
        image = etree.SubElement(channel, "image")
        _text(image, "url", self.url("/static/logo.png"))
        _text(image, "title", feed.title)
        _text(image, "link", self._feed_home(feed))
        for article in items:
            link = self.url(self.article_path(article))
            item = etree.SubElement(channel, "item")
            _text(item, "title", article.title)
            _text(item, "link", link)
            _text(item, "guid", link).set("isPermaLink", "true")
            _text(item, "pubDate", rfc822_date(article.published_at))
            _text(item, f"{{{DC}}}creator", article.author)
            if article.language != "en":
                _text(item, f"{{{DC}}}language", article.language)
            for category in (article.section, *article.tags):
                _text(item, "category", category)
            _text(item, "description", f"<p>{_e(article.summary)}</p>")
            encoded = etree.SubElement(item, f"{{{CONTENT}}}encoded")
            encoded.text = etree.CDATA(_body_html(article))
        return etree.tostring(rss, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def atom(self, feed: Feed, items: list[Article], now: datetime) -> bytes:
        """Atom 1.0 with ``summary`` and ``content`` as escaped HTML."""
        root = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
        root.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        _text(root, f"{{{ATOM}}}id", self.url(feed.path))
        _text(root, f"{{{ATOM}}}title", feed.title)
        _text(root, f"{{{ATOM}}}subtitle", f"The latest stories from {self.site_name}")
        newest = max((_modified(a, now) for a in items), default=self.scenario.start)
        _text(root, f"{{{ATOM}}}updated", iso_seconds(newest))
        etree.SubElement(
            root,
            f"{{{ATOM}}}link",
            rel="self",
            href=self.url(feed.path),
            type="application/atom+xml",
        )
        etree.SubElement(
            root, f"{{{ATOM}}}link", rel="alternate", href=self._feed_home(feed), type="text/html"
        )
        author = etree.SubElement(root, f"{{{ATOM}}}author")
        _text(author, f"{{{ATOM}}}name", self.site_name)
        _text(root, f"{{{ATOM}}}generator", "FreshLM sandbox world")
        _text(root, f"{{{ATOM}}}logo", self.url("/static/logo.png"))
        _text(root, f"{{{ATOM}}}rights", f"Copyright {self.site_name}")
        for article in items:
            link = self.url(self.article_path(article))
            entry = etree.SubElement(root, f"{{{ATOM}}}entry")
            if article.language != "en":
                entry.set("{http://www.w3.org/XML/1998/namespace}lang", article.language)
            _text(entry, f"{{{ATOM}}}id", link)
            _text(entry, f"{{{ATOM}}}title", article.title)
            etree.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=link, type="text/html")
            _text(entry, f"{{{ATOM}}}published", iso_seconds(article.published_at))
            _text(entry, f"{{{ATOM}}}updated", iso_seconds(_modified(article, now)))
            author = etree.SubElement(entry, f"{{{ATOM}}}author")
            _text(author, f"{{{ATOM}}}name", article.author)
            for category in (article.section, *article.tags):
                etree.SubElement(entry, f"{{{ATOM}}}category", term=category)
            _text(entry, f"{{{ATOM}}}summary", f"<p>{_e(article.summary)}</p>").set("type", "html")
            _text(entry, f"{{{ATOM}}}content", _body_html(article)).set("type", "html")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    # --- HTML pages --------------------------------------------------------------------------

    def article_page(self, article: Article, now: datetime) -> str:
        """The article inside realistic chrome: nav, cookie banner, ads, scripts, related links."""
        url = self.url(self.article_path(article))
        modified = _modified(article, now)
        ld = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": article.title,
            "description": article.summary,
            "datePublished": iso_seconds(article.published_at),
            "dateModified": iso_seconds(modified),
            "author": [{"@type": "Person", "name": article.author}],
            "publisher": {"@type": "NewsMediaOrganization", "name": self.site_name},
            "articleSection": article.section,
            "keywords": list(article.tags),
            "inLanguage": article.language,
            "mainEntityOfPage": url,
        }
        # '</' inside JSON in a <script> would end the script early.
        ld_json = json.dumps(ld, ensure_ascii=False).replace("</", "<\\/")
        paragraphs = [f"<p>{_e(p)}</p>" for p in article.paragraphs]
        if len(paragraphs) > 3:
            # Ads and "read more" boxes inside the body are what boilerplate removal must drop.
            paragraphs.insert(
                2,
                '<aside class="ad-slot ad-inline" data-ad-unit="inarticle-1">'
                "<span>Advertisement</span></aside>",
            )
        body_html = "\n    ".join(paragraphs)
        section_url = self.url(f"/news/{article.section}/")
        related = [
            a
            for a in self.scenario.articles_at(article.published_at, [article.section])
            if a.slug != article.slug
        ][:RELATED_LINKS]
        related_html = "".join(
            f'<li><a href="{self.url(self.article_path(a))}">{_e(a.title)}</a></li>'
            for a in related
        )
        tags_html = "".join(
            f'<li><a href="{self.url("/search")}?q={quote(t)}">{_e(t)}</a></li>'
            for t in article.tags
        )
        main = f"""
<article class="story" itemscope itemtype="https://schema.org/NewsArticle">
  <header class="story-header">
    <p class="kicker"><a href="{section_url}">{_e(article.section.title())}</a></p>
    <h1 itemprop="headline">{_e(article.title)}</h1>
    <p class="standfirst">{_e(article.summary)}</p>
    <p class="byline">By <span itemprop="author">{_e(article.author)}</span></p>
    <time itemprop="datePublished" datetime="{iso_seconds(article.published_at)}">
      {article.published_at:%d %B %Y, %H:%M} UTC</time>
  </header>
  <div class="story-body" itemprop="articleBody">
    {body_html}
  </div>
  <ul class="story-tags">{tags_html}</ul>
</article>
<aside class="related"><h2>More from {_e(article.section.title())}</h2>
  <ul>{related_html}</ul></aside>
<div class="ad-slot ad-mpu" data-ad-unit="sidebar-1"><span>Advertisement</span></div>
<section class="newsletter"><h2>Get the Courier in your inbox</h2>
  <form action="{self.url("/newsletter")}" method="post">
    <input type="email" name="email" placeholder="you@example.com"><button>Sign up</button>
  </form>
</section>"""
        head_extra = f"""
  <meta name="description" content="{_e(article.summary)}">
  <meta name="author" content="{_e(article.author)}">
  <meta property="og:type" content="article">
  <meta property="og:title" content="{_e(article.title)}">
  <meta property="og:url" content="{url}">
  <meta property="article:published_time" content="{iso_seconds(article.published_at)}">
  <meta property="article:section" content="{_e(article.section)}">
  <link rel="canonical" href="{url}">
  <script type="application/ld+json">{ld_json}</script>"""
        return self._chrome(article.title, main, head_extra, lang=article.language)

    def front_page(self, now: datetime) -> str:
        latest = self.scenario.articles_at(now)[:30]
        return self._chrome(self.site_name, self._teasers("Latest stories", latest))

    def section_page(self, section: str, now: datetime) -> str:
        latest = self.scenario.articles_at(now, [section])[:30]
        return self._chrome(section.title(), self._teasers(section.title(), latest))

    def _teasers(self, heading: str, articles: list[Article]) -> str:
        items = "".join(
            f'<li class="teaser"><a href="{self.url(self.article_path(a))}">{_e(a.title)}</a>'
            f'<p>{_e(a.summary)}</p><time datetime="{iso_seconds(a.published_at)}"></time></li>'
            for a in articles
        )
        return f'<section class="teasers"><h1>{_e(heading)}</h1><ul>{items}</ul></section>'

    def _chrome(self, title: str, main: str, head_extra: str = "", lang: str = "en") -> str:
        nav = "".join(
            f'<li><a href="{self.url(f"/news/{s}/")}">{_e(s.title())}</a></li>'
            for s in self.sections
        )
        feeds = "".join(
            f'\n  <link rel="alternate" type="application/{f.format}+xml" '
            f'title="{_e(f.title)}" href="{self.url(f.path)}">'
            for f in self.scenario.feeds
        )
        return f"""<!DOCTYPE html>
<html lang="{_e(lang)}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{_e(title)} | {_e(self.site_name)}</title>{head_extra}{feeds}
  <link rel="stylesheet" href="{self.url("/static/site.css")}">
  <script async src="{self.url("/static/ads.js")}"></script>
  <script>window.dataLayer = window.dataLayer || [];
    dataLayer.push({{"event": "pageview", "site": "courier"}});</script>
</head>
<body>
<div id="cookie-banner" class="cookie-consent" role="dialog">
  <p>We use cookies to personalise content and ads and to analyse our traffic.</p>
  <button class="accept">Accept all</button> <button class="reject">Reject</button>
</div>
<header class="site-header">
  <a class="logo" href="{self.url("/")}">{_e(self.site_name)}</a>
  <nav class="site-nav"><ul>{nav}</ul></nav>
  <form class="site-search" action="{self.url("/search")}">
    <input name="q" placeholder="Search"></form>
</header>
<div class="ad-slot ad-leaderboard" data-ad-unit="top"><span>Advertisement</span></div>
<main id="content">{main}
</main>
<footer class="site-footer">
  <p>&copy; {_e(self.site_name)}. All rights reserved.</p>
  <ul><li><a href="{self.url("/about")}">About us</a></li>
    <li><a href="{self.url("/privacy")}">Privacy</a></li>
    <li><a href="{self.url("/contact")}">Contact</a></li></ul>
</footer>
<script>document.querySelector('#cookie-banner .accept').onclick =
  function () {{ document.cookie = 'consent=1'; }};</script>
</body>
</html>
"""


def _modified(article: Article, now: datetime) -> datetime:
    """When the article last changed, as visible at ``now`` (a future update is not visible)."""
    if article.updated_at is not None and article.updated_at <= now:
        return max(article.updated_at, article.published_at)
    return article.published_at


def _body_html(article: Article) -> str:
    return "".join(f"<p>{_e(p)}</p>" for p in article.paragraphs)


def _text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def _site_name(scenario: Scenario) -> str:
    # Feed titles read "<site>: <section>"; the scenario has no separate site name.
    for feed in scenario.feeds:
        if ":" in feed.title:
            return feed.title.split(":", 1)[0].strip()
    return scenario.name


def _truncate_like_a_failing_cms(body: bytes) -> bytes:
    """Cut the feed after its channel header and append the CMS's error comments.

    The result is what the recorded Reuters failure looks like: a feed that starts well, has no
    items and no closing tags, so a strict XML parser rejects it.
    """
    cut = body.find(b"<item>")
    if cut < 0:
        cut = body.find(b"<entry")
    if cut < 0:
        cut = len(body) // 2
    return (
        body[:cut]
        + b"<!--Property passed to loop is null--><!-- Exception rendering module on server  -->"
    )
