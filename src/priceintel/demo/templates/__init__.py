"""The three demo shops' markup: one module per shop renders its product page, `page` the rest.

Product-page hooks (stable; the extractor relies on them):

* amazon (HTML only, no JSON-LD):
  ``<span id="productTitle">``; ``<a id="bylineInfo">Visit the {brand} Store</a>``;
  ``<div id="corePrice_feature_div">`` holding ``<span class="a-price priceToPay"><span
  class="a-offscreen">$12.99</span>…`` and, on promotion, ``<span class="a-price a-text-price"
  data-a-strike="true"><span class="a-offscreen">$15.99</span></span>`` (no price block at all when
  out of stock); ``<div id="availability"><span>In Stock</span></div>`` or
  ``<span>Currently unavailable.</span>``; ``<input type="hidden" id="ASIN" value="...">``;
  ``<table id="productDetails_techSpec_section_1">`` with ``<th>``/``<td>`` rows Brand,
  Item model number (when the mpn is known), ASIN.
* walmart: ``<h1 itemprop="name">`` plus ``<script id="__NEXT_DATA__" type="application/json">``
  with ``props.pageProps.initialData.data.product`` = {usItemId, name, brand?, upc? (12 digits),
  model? (mpn), availabilityStatus "IN_STOCK"|"OUT_OF_STOCK", sellerName "Walmart.com",
  priceInfo {currentPrice: {price, priceString, currencyUnit "USD"} | null,
  wasPrice: {...} | null}}.
* target: ``<script type="application/ld+json">`` schema.org Product {name, sku (TCIN), gtin13,
  mpn?, brand {"@type": "Brand", name}, offers {"@type": "Offer", price (string "12.99", absent
  when there is no price), priceCurrency "USD", availability schema.org InStock|OutOfStock, url}};
  visible ``<h1 data-test="product-title">``, ``<span data-test="product-price">$12.99</span>``
  and on promotion ``<span data-test="product-regular-price">reg $15.99</span>``.

Prices are written ``$1,234.56`` in HTML and ``1234.56`` in JSON. A product page is
``PRODUCT_PAGES[retailer](base_url, item_id, info, in_stock, price, was)`` with ``info`` = the listing's
(url, title, brand, gtin, mpn, category) and ``price`` / ``was`` None when the page shows none.
"""

from __future__ import annotations

from collections.abc import Callable

from priceintel.demo.templates import amazon, target, walmart

#: retailer -> its product-page renderer
PRODUCT_PAGES: dict[str, Callable[[str, str, tuple, bool, float | None, float | None], str]] = {
    "amazon": amazon.product_page,
    "walmart": walmart.product_page,
    "target": target.product_page,
}
