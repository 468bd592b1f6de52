"""Retailer adapter registry: every module in this package defining `ADAPTER` is auto-discovered."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from priceintel import PriceIntelError
from priceintel.scrape.adapters.base import Adapter

__all__ = ["Adapter", "UnknownRetailerError", "adapter_for_url", "all_adapters", "get_adapter", "register_adapter"]

#: adapters registered at run time (shops.yaml adapter files) that `adapter_for_url` never picks by itself
_NO_DETECT: set[str] = set()


class UnknownRetailerError(PriceIntelError):
    """No adapter is registered under the requested retailer name."""


@lru_cache(maxsize=1)
def _registry() -> dict[str, Adapter]:
    """name -> Adapter for every sibling module that defines ADAPTER (sorted, generic last)."""
    found: dict[str, Adapter] = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        adapter = getattr(module, "ADAPTER", None)
        if isinstance(adapter, Adapter):
            if adapter.name in found:
                raise PriceIntelError(f"two adapters are named {adapter.name!r} (module {module.__name__})")
            found[adapter.name] = adapter
    return found


def register_adapter(adapter: Adapter, detect: bool = False) -> Adapter | None:
    """Register an adapter loaded at run time; return the one it replaces (None if the name was free).

    With `detect=False` (shops.yaml adapter files) `adapter_for_url` never picks it for a URL on its own:
    only a shop that names it uses it.
    """
    reg = _registry()
    known = reg.get(adapter.name)
    reg[adapter.name] = adapter
    if not detect:
        _NO_DETECT.add(adapter.name)
    return known


def all_adapters() -> dict[str, Adapter]:
    """Every registered adapter by name."""
    return dict(_registry())


def get_adapter(name: str) -> Adapter:
    """The adapter registered as `name` (raises UnknownRetailerError listing the known names)."""
    reg = _registry()
    try:
        return reg[name]
    except KeyError:
        raise UnknownRetailerError(
            f"no scraping adapter named {name!r}; known: {', '.join(sorted(reg))} "
            f"(add src/priceintel/scrape/adapters/{name}.py defining ADAPTER)"
        ) from None


def adapter_for_url(url: str) -> Adapter:
    """Adapter whose domain, else product-URL pattern, matches the URL; the generic one otherwise."""
    reg = _registry()
    specific = [a for n, a in reg.items() if n != "generic" and n not in _NO_DETECT]
    for adapter in specific:
        if adapter.matches_host(url):
            return adapter
    for adapter in specific:
        if adapter.item_id_from_url(url) is not None:
            return adapter
    return reg["generic"]
