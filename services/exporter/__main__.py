"""`python -m services.exporter`: check what the worker needs, then run it."""

from services.exporter.worker import main
from shared.preflight import preflight_worker
from shared.settings import get_settings

if __name__ == "__main__":
    preflight_worker("exporter", get_settings())
    main()
