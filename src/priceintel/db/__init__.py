"""PostgreSQL system of record: embedded server (`server`), engines (`engine`), Alembic migrations (`migrate`),
transactional loads (`load`, `staging`), read queries (`queries`), the apps' materialized views (`views`)."""
