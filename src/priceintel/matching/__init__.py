"""Product matching beyond the thin matcher in `priceintel.match`.

- `features`: generic pair features for two tables with arbitrary attribute columns;
- `learned`: calibrated pair classifier and threshold selection;
- `benchmark`: `priceintel eval matching DIR` on the Magellan / DeepMatcher layout;
- `listing_model`: the learned listing → product matcher trained on truth and stored labels;
- `labels`: review queue and human labels in PostgreSQL; `review_app`: the Voila review panel.
"""
