"""`python -m services.janitor`: check what the worker needs, then run it."""

from services.janitor.worker import main
from shared.preflight import preflight_worker
from shared.settings import get_settings

if __name__ == "__main__":
    preflight_worker("janitor", get_settings())
    main()
