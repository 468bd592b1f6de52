"""The REST API (`priceintel api`): FastAPI over the workbench database, for programs.

- `keys`: API keys (shown once, stored as SHA-256 of a random secret, scoped read / write / admin).
- `tokens`: bearer tokens from a password sign-in (short-lived access + refresh, HMAC-signed JWTs), ended by
  the user's session version like the apps' cookies.
- `principal`: who calls (key or user), what they may do, and the per-caller token-bucket rate limit.
- `app`: the FastAPI application, its error handlers and routes; `serve`: uvicorn on loopback.

The API connects to the database as the apps do (the `<db>_app` role, `db.roles`), and reads the apps' data
layer (`apps.views`): the same keyset pages, filters and exports as the stakeholder apps.
"""
