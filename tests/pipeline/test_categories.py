"""Unmatched listings in our categories, stored and counted: a demo world whose catalogue lacks a fifth of its
products is scraped, cleaned and matched; the listings of the missing products match nothing, the text
classifier trained on the remaining catalogue's titles puts them in our categories (the match task's
`categories` product), the load stores them in dim_listing.category, and category positioning counts them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from priceintel import clean
from priceintel.db import queries
from priceintel.demo import Storefronts, generate_world
from priceintel.match.categorize import categorize_unmatched
from priceintel.pipeline import stages as pipeline
from priceintel.pricing import analytics
from priceintel.scrape import Fetcher, RawArchive, scrape_demo

pytestmark = pytest.mark.slow




def test_unmatched_listings_are_categorised_stored_and_counted(fresh_db, tmp_path):
    world = generate_world(n_products=80, n_days=2, seed=31)
    data = tmp_path / "data"
    world_dir = data / "demo" / "world"
    kept = world.products.sample(frac=0.8, random_state=3).sort_values("sku").reset_index(drop=True)
    world.write(world_dir)
    kept.to_csv(world_dir / "products.csv", index=False)  # our catalogue: a fifth of the products not sold
    world.sales[world.sales["sku"].isin(kept["sku"])].to_csv(world_dir / "sales.csv", index=False)
    with Storefronts(world) as fronts, Fetcher(archive=RawArchive(data / "raw")) as fetcher:
        offers, errors = scrape_demo(fronts.urls, [world.start], fetcher)
    obs, cerr = clean.offers_to_observations(offers)
    listings = clean.listings_from_observations(obs)
    catalogue = pipeline.read_catalogue(world_dir / "products.csv")
    matches, _, _ = pipeline.match_stage(listings, catalogue, "demo", fresh_db)
    cats = categorize_unmatched(listings, catalogue, matches)
    up = pipeline.save_products(data, world_dir, {
        "scrape": {"offers": offers, "errors": errors},
        "clean": {"observations": obs, "listings": listings, "errors": cerr},
        "match": {"matches": matches, "categories": cats}})
    pipeline.load_stage(up, data)

    stored = queries.category_listings(fresh_db)
    unmatched = stored[~stored["matched"]]
    missing = set(world.truth_matches.loc[~world.truth_matches["sku"].isin(kept["sku"]), "item_id"])
    assert len(unmatched) >= len(missing) > 0 and missing <= set(unmatched["item_id"])
    expect = cats.set_index(["retailer", "item_id"])["category"]
    got = unmatched.set_index(["retailer", "item_id"])["category"]
    assert got.reindex(expect.index).fillna("-").equals(expect.fillna("-"))  # stored as classified
    truth = world.listings.set_index(["retailer", "item_id"])["category"]
    answered = got.dropna()
    assert len(answered) >= 0.8 * len(got)  # coverage
    assert (answered == truth.reindex(answered.index)).mean() >= 0.9  # against the generator's truth
    table = analytics.category_assortment(queries.our_category_prices(fresh_db), stored)
    assert table["listings"].sum() == len(stored) and table["unmatched"].sum() == len(unmatched)
    assert (table.loc[table["category"] != "(uncategorised)", "unmatched"] > 0).any()
    assert table["median_index"].notna().any()
    with fresh_db.connect() as conn:  # matched listings keep no classifier category of their own
        n = conn.execute(sa.text(
            "SELECT count(*) FROM dim_listing l JOIN product_match pm USING (listing_id) "
            "WHERE pm.status IN ('auto', 'confirmed') AND l.category IS NOT NULL")).scalar()
    assert n == 0
