"""Generation fixtures: the fake Claude API, settings aimed at it, worker resources, the API."""

from tests.support.worker_fixtures import (  # noqa: F401 (fixtures, found by name)
    account,
    claude,
    claude_server,
    gen_api,
    gen_settings,
    resources,
)
