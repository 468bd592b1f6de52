"""The API's OpenAPI document, as committed in docs/openapi.json (a test keeps it current).

python -m priceintel.api.openapi            # rewrite docs/openapi.json
"""

from __future__ import annotations

import json
import sys

from priceintel import config


def document() -> dict:
    """The OpenAPI document of the application (no database is contacted)."""
    from priceintel.api.app import create_app

    app = create_app("postgresql+psycopg://openapi@localhost/openapi", config.ApiSettings(secret="o" * 32))
    return app.openapi()


def main() -> int:
    path = config.PROJ_ROOT / "docs" / "openapi.json"
    path.write_text(json.dumps(document(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
