"""`python -m services.api`: serve the API with uvicorn."""

from __future__ import annotations

import uvicorn

from shared.settings import get_settings


def main() -> None:
    """Run uvicorn with the app factory (several workers share metrics via multiprocess mode)."""
    settings = get_settings()
    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
