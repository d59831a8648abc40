"""Model text as safe HTML: markdown-it-py (raw HTML off) then nh3 with a short allow-list.

Raw HTML in a response is shown as text; links keep only http(s)/mailto targets and get
``rel="noopener noreferrer nofollow"``; images are not allowed at all, so no response can load
anything or run script. The page's Content-Security-Policy is a second fence.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

__all__ = ["render_markdown"]

_TAGS = {
    "p", "br", "hr", "pre", "code", "blockquote", "ul", "ol", "li", "em", "strong", "del",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRS = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}


@functools.lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> Markup:
    """Return ``text`` rendered from markdown to sanitized HTML.

    >>> str(render_markdown("<script>alert(1)</script> **hi**"))
    '<p>&lt;script&gt;alert(1)&lt;/script&gt; <strong>hi</strong></p>\\n'
    """
    html = _md().render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)
