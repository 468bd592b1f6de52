"""shops.yaml: valid files load, every invalid entry is one line naming file, shop and field; unknown shops fall
back to a matching adapter with default politeness and a warning; custom adapters from a Python file."""

from __future__ import annotations

import pytest

from priceintel import config
from priceintel.scrape import get_adapter
from priceintel.scrape.shops import (
    DEFAULT_REQUESTS_PER_SECOND,
    Shop,
    ShopsError,
    default_shops_path,
    load_shops,
    retailer_from_url,
    shop_for,
)

VALID = """
shops:
  acme:
    base_url: https://www.acme.example/
    adapter: generic
    requests_per_second: 0.5
    concurrency: 2
    user_agent: acme-watch/1.0
    render_js: true
    country: gb
    currency: GBP
    sitemap: https://www.acme.example/sitemap.xml
    search_url: https://www.acme.example/search?q={query}&ean={gtin}
    category_urls: [https://www.acme.example/c/kettles]
  amazon:
    base_url: https://www.amazon.com/
    adapter: amazon
    requests_per_second: 1
  bare:
    base_url: http://127.0.0.1:8999/
"""


def _write(tmp_path, text, name="shops.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads_with_defaults(tmp_path):
    shops = load_shops(_write(tmp_path, VALID))
    assert list(shops) == ["acme", "amazon", "bare"]
    acme = shops["acme"]
    assert acme.name == "acme" and acme.host == "acme.example"
    assert acme.requests_per_second == 0.5 and acme.concurrency == 2 and acme.render_js is True
    assert acme.country == "GB" and acme.currency == "GBP" and acme.user_agent == "acme-watch/1.0"
    assert acme.category_urls == ["https://www.acme.example/c/kettles"]
    assert acme.get_adapter() is get_adapter("generic") and acme.retailer == "generic"
    assert acme.search(gtin="4006381333931", query="steel kettle") == (
        "https://www.acme.example/search?q=steel+kettle&ean=4006381333931"
    )
    assert acme.search(query="kettle") is None  # the template needs a GTIN too
    assert shops["amazon"].requests_per_second == 1.0 and shops["amazon"].retailer == "amazon"
    bare = shops["bare"]
    assert bare.adapter == "generic" and bare.requests_per_second == DEFAULT_REQUESTS_PER_SECOND
    assert bare.concurrency == 1 and bare.render_js is False and bare.currency is None and bare.search() is None


def test_default_path_and_the_shipped_example(tmp_path, monkeypatch):
    monkeypatch.delenv("PRICEINTEL_SHOPS", raising=False)
    assert default_shops_path() == config.PROJ_ROOT / "config" / "shops.yaml"
    shipped = load_shops()
    assert {"amazon", "walmart", "target"} <= set(shipped)
    assert all(s.retailer == s.name for s in shipped.values())  # each uses its own adapter
    assert all(0 < s.requests_per_second <= 1 for s in shipped.values())  # polite by default
    monkeypatch.setenv("PRICEINTEL_SHOPS", str(_write(tmp_path, VALID)))
    assert default_shops_path() == tmp_path / "shops.yaml"
    assert set(load_shops()) == {"acme", "amazon", "bare"}


def _one_shop(body: str) -> str:
    return "shops:\n  acme:\n" + "".join(f"    {line}\n" for line in body.strip().splitlines())


BASE = "base_url: https://acme.example/"
BAD_ENTRIES = [
    (f"{BASE}\nrequests_per_second: -1", "field requests_per_second: must be > 0 (got -1)"),
    (f"{BASE}\nrequests_per_second: fast", "field requests_per_second: must be a number (got 'fast')"),
    (f"{BASE}\nconcurrency: 0", "field concurrency: must be >= 1 (got 0)"),
    (f"{BASE}\nconcurrency: 2.5", "field concurrency: must be a whole number (got 2.5)"),
    (f"{BASE}\nrender_js: 'yes'", "field render_js: must be true or false (got 'yes')"),
    (f"{BASE}\nrequests_per_secnd: 2", "field requests_per_secnd: unknown key (a typo?); known keys: base_url,"),
    (f"{BASE}\ncurrency: XYZ", "field currency: must be an ISO 4217 currency code"),
    (f"{BASE}\ncurrency: usd", "field currency: must be an ISO 4217 currency code"),
    (f"{BASE}\ncountry: ZZ", "field country: must be an ISO 3166 alpha-2 country code"),
    (f"{BASE}\ncountry: USA", "field country: must be an ISO 3166 alpha-2 country code"),
    ("adapter: generic", "field base_url: is required"),
    ("base_url: ftp://acme.example/", "field base_url: must be an absolute http(s) URL (got 'ftp://acme.example/')"),
    (f"{BASE}\nadapter: amazn", "field adapter: must be one of amazon, generic, target, walmart"),
    (f"{BASE}\nadapter: nowhere.py", "field adapter: adapter file"),
    (f"{BASE}\nsearch_url: https://acme.example/s?sku={{sku}}", "field search_url: must use one or more of"),
    (f"{BASE}\nsearch_url: https://acme.example/s", "field search_url: must use one or more of"),
    (f"{BASE}\ncategory_urls: [/c/kettles]", "field category_urls: must be an absolute http(s) URL"),
    (f"{BASE}\nuser_agent: ''", "field user_agent: must be a non-empty single line"),
    (f"{BASE}\nname: other", "field name: unknown key (the shop's name is its key)"),
]


@pytest.mark.parametrize(("body", "expected"), BAD_ENTRIES, ids=[e[1].split(":")[0] for e in BAD_ENTRIES])
def test_each_invalid_entry_is_one_line_naming_file_shop_and_field(tmp_path, body, expected):
    path = _write(tmp_path, _one_shop(body))
    with pytest.raises(ShopsError) as err:
        load_shops(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: shop 'acme', {expected}"), msg


def test_message_names_the_file_relative_to_the_project(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    path = _write(tmp_path / "config", _one_shop(f"{BASE}\nrequests_per_second: -1"))
    monkeypatch.setattr(config, "PROJ_ROOT", tmp_path)
    monkeypatch.delenv("PRICEINTEL_SHOPS", raising=False)
    assert default_shops_path() == path
    with pytest.raises(ShopsError) as err:
        load_shops()
    assert str(err.value) == "config/shops.yaml: shop 'acme', field requests_per_second: must be > 0 (got -1)"


def test_several_problems_give_one_line_each(tmp_path):
    text = _one_shop(f"{BASE}\nrequests_per_second: 0\ncurrency: EURO") + "  beta:\n    render_js: 1\n"
    path = _write(tmp_path, text)
    with pytest.raises(ShopsError) as err:
        load_shops(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 4, lines
    assert all(line.startswith(f"{path}: shop ") for line in lines)
    assert any("shop 'beta', field base_url: is required" in line for line in lines)
    assert any("shop 'beta', field render_js: must be true or false (got 1)" in line for line in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shop:\n  acme: {}\n", "unknown top-level key(s) ['shop'] (only `shops:` is allowed)"),
        ("shops: [acme]\n", "`shops:` must map shop names to their settings, got list"),
        ("shops:\n  acme: [1, 2]\n", "shop 'acme': expected a mapping of settings, got list"),
        ("shops: {acme: [\n", "not valid YAML"),
        ("- 1\n", "expected a mapping with a `shops:` key, got list"),
    ],
)
def test_malformed_files(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ShopsError) as err:
        load_shops(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ShopsError, match="shops file not found"):
        load_shops(tmp_path / "nope.yaml")


def test_adapter_from_a_python_file(tmp_path):
    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "kettle.py").write_text(
        "from priceintel.scrape.adapters.base import Adapter\n"
        "ADAPTER = Adapter(name='kettleshop_test', url_pattern=r'/kettleshop/k/(?P<item_id>\\d+)',\n"
        "                  selectors={'price': '.kprice'})\n"
    )
    (tmp_path / "adapters" / "pots.py").write_text(
        "from dataclasses import dataclass\n"
        "from priceintel.scrape.adapters.base import Adapter\n"
        "@dataclass(frozen=True)\n"
        "class Pots(Adapter):\n"
        "    name: str = 'potshop_test'\n"
        "    url_pattern: str = r'/pot-(?P<item_id>[a-z]+)'\n"
    )
    (tmp_path / "adapters" / "empty.py").write_text("X = 1\n")
    path = _write(
        tmp_path,
        "shops:\n"
        "  kettles: {base_url: 'http://127.0.0.1:9001/', adapter: adapters/kettle.py}\n"
        "  pots: {base_url: 'http://127.0.0.1:9002/', adapter: adapters/pots.py}\n",
    )
    shops = load_shops(path)
    kettle = shops["kettles"].get_adapter()
    assert kettle.name == "kettleshop_test" and kettle.item_id_from_url("http://x/kettleshop/k/42") == "42"
    assert get_adapter("kettleshop_test") is kettle  # registered: extract(retailer=...) finds it
    assert shops["pots"].retailer == "potshop_test"
    assert shops["pots"].get_adapter().item_id_from_url("http://x/pot-big") == "big"
    assert load_shops(path)["kettles"].retailer == "kettleshop_test"  # loading twice is fine
    bad = _write(tmp_path, "shops:\n  e: {base_url: 'http://127.0.0.1:9003/', adapter: adapters/empty.py}\n", "b.yaml")
    with pytest.raises(ShopsError) as err:
        load_shops(bad)
    assert str(err.value).startswith(f"{bad}: shop 'e', field adapter: ")
    assert "must define ADAPTER = Adapter(...) or exactly one Adapter subclass" in str(err.value)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://www.walmart.com/ip/123456", "walmart"),
        ("http://target.com/p/x", "target"),
        ("https://shop.example.co.uk/p/1", "example"),
        ("https://www.amazon.de/dp/B006V2OP48", "amazon"),
        ("https://mediamarkt.pt/products/x", "mediamarkt"),
        ("https://ar-sa.namshi.com/buy.html", "namshi"),
        ("https://www.mobly.com.br/cama.html", "mobly"),
        ("http://127.0.0.1:8701/dp/X", "127.0.0.1:8701"),
        ("http://localhost/x", "localhost"),
    ],
)
def test_retailer_from_url(url, name):
    assert retailer_from_url(url) == name


def test_shop_for_configured_and_fallback(tmp_path):
    shops = load_shops(_write(tmp_path, VALID))
    assert shop_for(shops, "https://www.acme.example/p/kettle-1") == (shops["acme"], None)
    assert shop_for(shops, "https://eu.acme.example/p/kettle-1") == (shops["acme"], None)  # sub-domain
    assert shop_for(shops, "https://www.amazon.co.uk/dp/B076TQK2D6") == (shops["amazon"], None)  # same retailer
    assert shop_for(shops, "http://127.0.0.1:8999/anything") == (shops["bare"], None)  # host and port
    assert shop_for(shops, "https://elsewhere.example/x", retailer="acme") == (shops["acme"], None)

    shop, warning = shop_for(shops, "https://www.otto.de/p/kaercher-848068924/")
    assert warning == (
        "retailer otto is not in shops.yaml: fetched with the generic adapter and default politeness (1 request/s)"
    )
    assert isinstance(shop, Shop) and shop.name == "otto" and shop.adapter == "generic"
    assert shop.base_url == "https://www.otto.de/" and shop.requests_per_second == 1.0 and shop.concurrency == 1

    shop, warning = shop_for(shops, "https://www.walmart.com/ip/widget/123456")  # a known adapter fits the host
    assert shop.adapter == "walmart" and warning.startswith("retailer walmart is not in shops.yaml: fetched with the ")
    assert "walmart adapter and default politeness (1 request/s)" in warning

    shop, warning = shop_for(shops, "http://127.0.0.1:8123/x", retailer="newshop")
    assert shop.name == "newshop" and shop.base_url == "http://127.0.0.1:8123/"
    assert warning.startswith("retailer newshop is not in shops.yaml")

    with pytest.raises(ShopsError, match="not an absolute http"):
        shop_for({}, "not a url")
