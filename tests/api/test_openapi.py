"""The OpenAPI document says what the API really answers: errors, auth, media types, names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from services.api.app import create_app
from services.api.openapi import documented_routes
from services.api.openapi_examples import REQUEST_EXAMPLES
from shared.settings import Settings
from tests.support.factories import Account


@pytest.fixture(scope="module")
def spec(settings: Settings) -> dict[str, Any]:
    """The document as the app builds it."""
    return create_app(settings).openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, ops in spec["paths"].items() for m, op in ops.items()]


def test_every_error_response_uses_the_one_error_schema(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        errors = {code: r for code, r in op["responses"].items() if int(code) >= 400}
        assert "422" in errors, (method, path)
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]


def test_authenticated_operations_declare_bearer_auth_and_its_errors(
    spec: dict[str, Any],
) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, op in _operations(spec):
        if path.startswith("/v1/"):
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert {"401", "429", "503"} <= set(op["responses"]), (method, path)
            assert "Retry-After" in op["responses"]["429"]["headers"]
        else:
            assert "security" not in op, (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)
        if "requestBody" in op:
            assert "413" in op["responses"], (method, path)


def test_routes_declare_the_conflicts_they_raise(spec: dict[str, Any]) -> None:
    conflicts = {op["operationId"] for _, _, op in _operations(spec) if "409" in op["responses"]}
    expected = {"create_template", "patch_template", "create_scenario", "change_status"}
    expected |= {"cancel_job", "retry_failed", "cancel_export", "download_export"}
    assert expected <= conflicts
    download = spec["paths"]["/v1/exports/{export_id}/download"]["get"]
    assert "content" not in download["responses"]["302"]
    assert "Location" in download["responses"]["302"]["headers"]
    assert "410" in download["responses"]


def test_media_types_are_the_real_ones(spec: dict[str, Any]) -> None:
    csv = spec["paths"]["/v1/exports/history.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]


def test_operation_ids_are_unique_function_names(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert {"list_conversations", "get_export", "create_job", "ping"} <= set(ids)
    assert all(name.isidentifier() and name.islower() for name in ids)


def test_request_examples_validate_against_their_body_models(settings: Settings) -> None:
    app = create_app(settings)
    routes = {route.name: route for route in documented_routes(app)}
    assert set(REQUEST_EXAMPLES) <= set(routes)
    for name, example in REQUEST_EXAMPLES.items():
        field = routes[name].body_field
        if field is None:  # raw-body routes (the seed import) validate with the importer
            continue
        TypeAdapter(field.field_info.annotation).validate_python(example)
    spec = app.openapi()
    body = spec["paths"]["/v1/exports"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == REQUEST_EXAMPLES["request_export"]


async def test_seed_file_example_imports(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        "/v1/conversations", json=REQUEST_EXAMPLES["import_conversation"], headers=account.headers
    )
    assert response.status_code == 201, response.text


async def test_docs_pages_use_self_hosted_assets(client: httpx.AsyncClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = (await client.get(page)).text
        assert f"/docs-assets/{asset}" in html
        assert "cdn.jsdelivr.net" not in html
        assert "fonts.googleapis.com" not in html
        served = await client.get(f"/docs-assets/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 100_000
    document = await client.get("/openapi.json")
    assert document.json()["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
