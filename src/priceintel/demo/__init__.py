"""The demo: a deterministic world and three loopback storefronts that sell it.

- `priceintel.demo.world`: `generate_world`, `World` (read/write), `ensure_world`;
  built from `catalogue` (vocabulary, items, listings) and `market` (price paths, demand);
- `priceintel.demo.storefronts`: `Storefronts`, `ensure_storefronts`, `serve`;
  each shop's HTTP handling in `shop`, its markup in `templates`.

The public names are re-exported here (`from priceintel import demo` + `demo.<name>`).
"""

from priceintel.demo.storefronts import DEFAULT_PORTS, FAULT_KINDS, Storefronts, ensure_storefronts, serve
from priceintel.demo.world import (
    DEFAULT_START,
    MAX_PRODUCTS,
    RETAILERS,
    DemoError,
    World,
    ensure_world,
    generate_world,
)

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_START",
    "FAULT_KINDS",
    "MAX_PRODUCTS",
    "RETAILERS",
    "DemoError",
    "Storefronts",
    "World",
    "ensure_storefronts",
    "ensure_world",
    "generate_world",
    "serve",
]
