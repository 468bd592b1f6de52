"""The layers of `priceintel.scrape.extract` and the per-page machinery they share (internal modules).

Layers, in the order `extract` runs them (the first writer of a field wins):

- `structured`: (a) schema.org JSON-LD, (b) embedded JSON state, (c) adapter selectors, (c2) microdata and
  OpenGraph;
- `heuristics`: (d) itemprop/meta prices, the likeliest printed price (`candidates`: which of the page's
  prices is the product's current one; the page's currency), title, stock;
- `sku`: the retailer's reference as printed.

Machinery: `page` (parsing, the thread-local page context and memo), `select` (CSS / XPath selection),
`fields` (the accumulated fields and their methods), `text` (one walk over <body> for the visible text).
"""
