"""Shared data and helpers of the import tests."""

from __future__ import annotations

import sqlalchemy as sa

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">
  <channel>
    <title>Shop</title>
    <item>
      <g:id>A1</g:id>
      <title>Blender 500 W</title>
      <link>https://shop.example.com/a1</link>
      <g:price>15.00 USD</g:price>
      <g:gtin>4006381333931</g:gtin>
      <g:shipping><g:country>US</g:country><g:price>4.99 USD</g:price></g:shipping>
    </item>
    <item>
      <g:id>A2</g:id>
      <g:title>Toaster</g:title>
      <g:price>20.00 USD</g:price>
    </item>
  </channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
  <title>Shop</title>
  <entry>
    <g:id>B1</g:id>
    <title>Kettle</title>
    <link href="https://shop.example.com/b1"/>
    <g:price>9.99 EUR</g:price>
  </entry>
</feed>
"""


def query(engine: sa.Engine, sql: str, **params) -> list[dict]:
    """Rows of a query as dicts."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    """Rows of a query as tuples."""
    return [tuple(r.values()) for r in query(engine, sql)]
