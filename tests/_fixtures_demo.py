"""Demo-world fixtures: a small deterministic world and real loopback storefronts serving it."""

import pytest

from priceintel.demo import Storefronts, World, generate_world


@pytest.fixture(scope="session")
def demo_world() -> World:
    """A small demo world: 12 products, 21 days, seed 7."""
    return generate_world(n_products=12, n_days=21, seed=7)


@pytest.fixture(scope="session")
def storefronts(demo_world):
    """The three demo shops on ephemeral 127.0.0.1 ports (handle with `.urls`); stopped after."""
    fronts = Storefronts(demo_world)
    fronts.start()
    try:
        yield fronts
    finally:
        fronts.stop()
