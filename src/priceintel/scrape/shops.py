"""Shops as configuration: `shops.yaml` names each shop, its adapter, politeness and market.

A shop entry (the key is the shop's name)::

    shops:
      acme:
        base_url: https://www.acme.example/
        adapter: generic              # amazon | walmart | target | generic | path/to/adapter.py
        requests_per_second: 0.5      # politeness: at most this many requests per second to the host
        concurrency: 2                # parallel fetches
        user_agent: null              # null = PRICEINTEL_USER_AGENT / the default
        render_js: false              # load pages in headless Chromium first
        country: US                   # ISO 3166 alpha-2
        currency: USD                 # ISO 4217 (validated with Babel)
        sitemap: https://www.acme.example/sitemap.xml
        search_url: https://www.acme.example/search?q={query}   # {gtin} / {mpn} / {query}
        category_urls: [https://www.acme.example/c/kettles]
        hosts: [static.acme-cdn.example, "*.acme.co.uk"]   # other hosts its pages, sitemaps, assets live on

Requests for a shop stay on the shop (`shop_policy`, see `priceintel.scrape.outbound`): its base URL's origin
(trusted even on a loopback or private address, like the demo shops), its host with or without `www.` and its
subdomains, the origins of its sitemap / search / category URLs, and `hosts`: host names, `*.name` for every
subdomain of name, or an origin URL (`http://10.0.0.5:8080`) for a shop server on a private address.

The file is `$PRICEINTEL_SHOPS`, else `config/shops.yaml` under the project root. Every problem is one
line naming the file, the shop and the field; unknown keys are errors (they are usually typos). An
adapter given as a path (relative to the YAML file) is a Python file defining `ADAPTER = Adapter(...)`
or one `Adapter` subclass; it is registered under its `name` so `extract(..., retailer=name)` finds it.
A shop the generic adapter fits needs no code at all.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from priceintel import PriceIntelError, config
from priceintel.scrape.adapters import Adapter, adapter_for_url, all_adapters, get_adapter
from priceintel.scrape.outbound import OutboundPolicy, origin_of

__all__ = [
    "DEFAULT_REQUESTS_PER_SECOND",
    "Shop",
    "ShopsError",
    "default_shops_path",
    "load_shops",
    "retailer_from_url",
    "shop_for",
    "shop_policy",
]

#: politeness of a shop that is not configured: one request per second, one at a time
DEFAULT_REQUESTS_PER_SECOND = 1.0
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SEARCH_FIELDS = frozenset({"gtin", "mpn", "query"})
_HOST_RE = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
#: two-letter regions CLDR (Babel) knows that are not countries
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO"})
#: adapter name -> the Python file it was loaded from (that file may be loaded again)
_FILE_ADAPTERS: dict[str, Path] = {}


class ShopsError(PriceIntelError):
    """shops.yaml is missing or invalid; one line per problem naming the file, the shop and the field."""


def _http_url(value: str) -> str:
    """The value when it is an absolute http(s) URL, else ValueError."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


class Shop(BaseModel):
    """One configured shop (see the module docstring for the fields)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    base_url: str
    adapter: str = "generic"
    requests_per_second: float = Field(default=DEFAULT_REQUESTS_PER_SECOND, gt=0)
    concurrency: int = Field(default=1, ge=1, le=64)
    user_agent: str | None = None
    render_js: bool = False
    country: str | None = None
    currency: str | None = None
    sitemap: str | None = None
    search_url: str | None = None
    category_urls: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    _adapter: Adapter | None = PrivateAttr(default=None)
    _listed: bool = PrivateAttr(default=True)  #: False for the fallback of a URL not in shops.yaml

    @property
    def listed(self) -> bool:
        """True for a shop of shops.yaml, False for the fallback `shop_for` makes for a URL not in it."""
        return self._listed

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("base_url", "sitemap")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return None if v is None else _http_url(v)

    @field_validator("category_urls")
    @classmethod
    def _check_urls(cls, v: list[str]) -> list[str]:
        for url in v:
            _http_url(url)
        return v

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, v: list[str]) -> list[str]:
        out = []
        for entry in v:
            text = str(entry).strip().lower().rstrip(".")
            if "://" in text:
                parts = urlsplit(text)
                if origin_of(text) is None or parts.path not in ("", "/") or parts.query or parts.username:
                    raise ValueError(f"{entry!r} is not an origin such as http://10.0.0.5:8080 (no path)")
            elif not _HOST_RE.match(text) or text.startswith("*.") and "." not in text[2:]:
                raise ValueError(
                    f"{entry!r} is not a host name: use names such as cdn.shop.example, *.shop.example "
                    "(every subdomain) or an origin such as http://10.0.0.5:8080"
                )
            out.append(text)
        return out

    @field_validator("user_agent")
    @classmethod
    def _check_agent(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\n" in v):
            raise ValueError("must be a non-empty single line")
        return v

    @field_validator("country")
    @classmethod
    def _check_country(cls, v: str | None) -> str | None:
        from babel import Locale

        known = Locale.parse("en").territories
        if v is not None and (len(v) != 2 or not v.isalpha() or v.upper() not in known or v.upper() in _NOT_COUNTRIES):
            raise ValueError("must be an ISO 3166 alpha-2 country code such as US, GB, DE")
        return None if v is None else v.upper()

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, v: str | None) -> str | None:
        from babel.numbers import is_currency

        if v is not None and not is_currency(v):
            raise ValueError("must be an ISO 4217 currency code in capitals such as USD, EUR, GBP")
        return v

    @field_validator("search_url")
    @classmethod
    def _check_search(cls, v: str | None) -> str | None:
        if v is None:
            return None
        _http_url(v.replace("{", "").replace("}", ""))
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError:
            raise ValueError("is not a valid template (unbalanced braces)") from None
        if not names or not names <= _SEARCH_FIELDS:
            raise ValueError("must use one or more of the placeholders {gtin}, {mpn}, {query} and no others")
        return v

    @property
    def host(self) -> str:
        """The base URL's host, lower-case, without `www.`."""
        return _bare_host(self.base_url)

    def get_adapter(self) -> Adapter:
        """The shop's Adapter (a registered one by name, or the one loaded from its Python file)."""
        return self._adapter if self._adapter is not None else get_adapter(self.adapter)

    @property
    def retailer(self) -> str:
        """The retailer name `extract` is called with: the adapter's registered name."""
        return self.get_adapter().name

    def search(self, gtin: str | None = None, mpn: str | None = None, query: str | None = None) -> str | None:
        """The search URL for a GTIN / MPN / free-text query (URL-quoted); None without a template or a value."""
        from urllib.parse import quote_plus

        if self.search_url is None:
            return None
        values = {"gtin": gtin, "mpn": mpn, "query": query}
        names = {f for _, f, _, _ in string.Formatter().parse(self.search_url) if f}
        if any(not values[n] for n in names):
            return None
        return self.search_url.format(**{n: quote_plus(str(values[n])) for n in names})


def default_shops_path() -> Path:
    """`$PRICEINTEL_SHOPS`, else `config/shops.yaml` under the project root."""
    env = os.environ.get("PRICEINTEL_SHOPS")
    return Path(env).expanduser() if env else config.PROJ_ROOT / "config" / "shops.yaml"


def _label(path: Path) -> str:
    """The path as shown in messages: relative to the project root when inside it."""
    try:
        return str(path.resolve().relative_to(config.PROJ_ROOT))
    except ValueError:
        return str(path)


_MESSAGES = {
    "missing": "is required",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be a list",
}


def _problem(e: Any, shop: str, source: str) -> str:
    """One line for one pydantic error: '<file>: shop 'x', field f: <what is wrong> (got <value>)'."""
    field = ".".join(str(x) for x in e["loc"]) or "(the shop itself)"
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind == "extra_forbidden":
        known = ", ".join(n for n in Shop.model_fields if n != "name")
        return f"{source}: shop {shop!r}, field {field}: unknown key (a typo?); known keys: {known}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        limit = next(iter(ctx.values()))
        msg = f"must be {op} {limit:g}" if isinstance(limit, float) else f"must be {op} {limit}"
    else:
        msg = _MESSAGES.get(kind) or str(e["msg"]).removeprefix("Value error, ")
    got = "" if kind == "missing" else f" (got {e.get('input')!r})"
    return f"{source}: shop {shop!r}, field {field}: {msg}{got}"


def _load_adapter_file(ref: str, base: Path, shop: str, source: str) -> Adapter:
    """The Adapter defined by a Python file (ADAPTER instance, else its one Adapter subclass)."""
    path = (base / ref).resolve()
    where = f"{source}: shop {shop!r}, field adapter"
    if not path.is_file():
        raise ShopsError(f"{where}: adapter file {path} not found (got {ref!r})")
    spec = importlib.util.spec_from_file_location(f"priceintel_shop_adapter_{shop.replace('-', '_')}", path)
    if spec is None or spec.loader is None:
        raise ShopsError(f"{where}: cannot import {path} (got {ref!r})")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of user code becomes one line
        raise ShopsError(f"{where}: importing {path} failed: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    adapter = getattr(module, "ADAPTER", None)
    if not isinstance(adapter, Adapter):
        classes = [
            c
            for c in vars(module).values()
            if isinstance(c, type) and issubclass(c, Adapter) and c is not Adapter and c.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise ShopsError(f"{where}: {path} must define ADAPTER = Adapter(...) or exactly one Adapter subclass")
        try:
            adapter = classes[0]()  # type: ignore[call-arg]  # a subclass may default every field
        except TypeError:
            adapter = classes[0](name=shop)
    _register(adapter, path, where)
    return adapter


def _register(adapter: Adapter, path: Path, where: str) -> None:
    """Make `get_adapter(adapter.name)` return this adapter (so `extract(..., retailer=name)` uses it)."""
    from priceintel.scrape import adapters

    known = adapters.all_adapters().get(adapter.name)
    if known is not None and known != adapter and _FILE_ADAPTERS.get(adapter.name) != path:
        raise ShopsError(f"{where}: adapter name {adapter.name!r} is already taken by another adapter")
    adapters.register_adapter(adapter)
    _FILE_ADAPTERS[adapter.name] = path


def _read_yaml(path: Path, source: str) -> dict:
    """The `shops:` mapping of a shops file."""
    if not path.is_file():
        raise ShopsError(f"{source}: shops file not found (set PRICEINTEL_SHOPS or create config/shops.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ShopsError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ShopsError(f"{source}: expected a mapping with a `shops:` key, got {type(raw).__name__}")
    extra = [k for k in raw if k != "shops"]
    if extra:
        raise ShopsError(f"{source}: unknown top-level key(s) {extra} (only `shops:` is allowed)")
    shops = raw.get("shops") or {}
    if not isinstance(shops, dict):
        raise ShopsError(f"{source}: `shops:` must map shop names to their settings, got {type(shops).__name__}")
    return shops


def load_shops(path: str | os.PathLike | None = None) -> dict[str, Shop]:
    """Read and validate shops.yaml (default `default_shops_path()`): {name: Shop}; ShopsError on any problem."""
    file = Path(path) if path is not None else default_shops_path()
    source = _label(file)
    entries = _read_yaml(file, source)
    known_adapters = {n: a for n, a in all_adapters().items() if n not in _FILE_ADAPTERS}  # built-in modules only
    shops: dict[str, Shop] = {}
    problems: list[str] = []
    for name, body in entries.items():
        label = str(name)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            problems.append(f"{source}: shop {label!r}: expected a mapping of settings, got {type(body).__name__}")
            continue
        if "name" in body:
            problems.append(f"{source}: shop {label!r}, field name: unknown key (the shop's name is its key)")
            continue
        try:
            shop = Shop.model_validate({"name": label, **body})
        except ValidationError as err:
            problems.extend(_problem(e, label, source) for e in err.errors())
            continue
        try:
            if shop.adapter.endswith(".py"):
                shop._adapter = _load_adapter_file(shop.adapter, file.parent, label, source)
            elif shop.adapter not in known_adapters:
                raise ShopsError(
                    f"{source}: shop {label!r}, field adapter: must be one of {', '.join(sorted(known_adapters))} "
                    f"or a path to a .py file (got {shop.adapter!r})"
                )
        except ShopsError as exc:
            problems.append(str(exc))
            continue
        shops[label] = shop
    if problems:
        raise ShopsError("\n".join(problems))
    return shops


def _bare_host(url: str) -> str:
    """Lower-case host of a URL without a leading `www.` (port kept for loopback / IP hosts)."""
    parts = urlsplit(url if "//" in url else "//" + url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port is not None and _is_ip_or_local(host):
        host = f"{host}:{parts.port}"
    return host


def _is_ip_or_local(host: str) -> bool:
    """Whether a host is an IP address or `localhost`."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def retailer_from_url(url: str) -> str:
    """The retailer a URL belongs to: the registrable label of its host.

    The top-level domain is dropped, then a second-level public-suffix label (co, com, org, net, ac,
    gov, edu, …), and the last remaining label is the name: `www.walmart.com` -> `walmart`,
    `shop.example.co.uk` -> `example`, `amazon.de` -> `amazon`. An IP address or `localhost` is returned
    as the host itself (with its port): `http://127.0.0.1:8701/x` -> `127.0.0.1:8701`. No public-suffix
    list is consulted, so exotic suffixes (e.g. `blogspot.com`) are not special.
    """
    from priceintel.scrape.evaluate import site_key

    host = _bare_host(url)
    if _is_ip_or_local(host.split(":")[0]) or not host:
        return host
    return site_key("//" + host)


def _fallback(url: str, retailer: str | None) -> tuple[Shop, str]:
    """A shop for an unconfigured retailer: the adapter matching the URL (else generic), default politeness."""
    name = (retailer or retailer_from_url(url) or "unknown").lower()
    if not _NAME_RE.match(name):
        name = re.sub(r"[^a-z0-9_.-]+", "-", name).strip("-.") or "unknown"
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}/" if parts.scheme in ("http", "https") and parts.netloc else url
    try:
        adapter = adapter_for_url(url) if parts.netloc else get_adapter("generic")
        shop = Shop(name=name, base_url=base, adapter=adapter.name)
    except ValidationError:
        raise ShopsError(f"cannot fetch {url!r}: not an absolute http(s) URL") from None
    shop._listed = False
    warning = (
        f"retailer {name} is not in shops.yaml: fetched with the {adapter.name} adapter and default politeness "
        f"({DEFAULT_REQUESTS_PER_SECOND:g} request/s)"
    )
    return shop, warning


def shop_for(shops: dict[str, Shop], url: str, retailer: str | None = None) -> tuple[Shop, str | None]:
    """(configured shop, None) for a retailer name or the URL's host, else (fallback shop, warning).

    With `retailer`, the shop of that name. Without, the shop whose base-URL host is the URL's host (or a
    parent of it), then the shop whose name or host has the URL's registrable label (`amazon.de` finds a
    shop named `amazon`). The fallback uses the adapter whose domain matches the URL (generic for an
    unknown shop) and default politeness, and says so in the warning.
    """
    if retailer is not None:
        if retailer in shops:
            return shops[retailer], None
        return _fallback(url, retailer)
    host = _bare_host(url)
    for shop in shops.values():
        if host == shop.host or host.endswith("." + shop.host):
            return shop, None
    label = retailer_from_url(url)
    for shop in shops.values():
        if label and label in (shop.name, retailer_from_url(shop.base_url)):
            return shop, None
    return _fallback(url, None)


def shop_policy(shop: Shop) -> OutboundPolicy:
    """The outbound policy of a shop's requests (see the module docstring).

    A shop of shops.yaml: its base, sitemap, search and category URLs' origins are trusted (any address), their
    hosts and the declared `hosts` allowed on public addresses. The fallback of a URL not in shops.yaml trusts no
    origin: its host (public addresses only), or a loopback URL the caller names itself (a local test shop), as
    `OutboundPolicy.default()` does.
    """
    configured = [shop.base_url, shop.sitemap, *shop.category_urls]
    if shop.search_url:
        configured.append(shop.search_url.replace("{", "").replace("}", ""))
    policy = OutboundPolicy.for_sites([u for u in configured if u], shop.hosts)
    if shop.listed:
        return policy
    return OutboundPolicy(hosts=policy.hosts, scoped=True, trust_requested=True)
