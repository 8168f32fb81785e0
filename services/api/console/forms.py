"""HTML forms ↔ the API's request models: field specs, parsing, errors by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from shared.errors import ValidationFailed
from shared.models.template import VariableSpec

Widget = Literal["text", "textarea", "number", "lines", "csv", "select", "bool", "variables"]


@dataclass(frozen=True)
class Spec:
    """One form field: the model field it fills, its label and widget."""

    name: str
    label: str
    widget: Widget = "text"
    options: tuple[tuple[str, str], ...] = ()
    required: bool = False
    hint: str | None = None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_variable(line: str) -> dict[str, Any]:
    """`name`, `name*` (required), `name=default`, `name=default | a, b` (allowed values)."""
    head, _, allowed = line.partition("|")
    name, has_default, default = head.partition("=")
    name = name.strip()
    required = name.endswith("*")
    spec: dict[str, Any] = {"name": name.rstrip("*").strip(), "required": required}
    if has_default:
        spec["default"] = default.strip()
    if allowed.strip():
        spec["allowed_values"] = [value.strip() for value in allowed.split(",") if value.strip()]
    return spec


def format_variable(spec: VariableSpec) -> str:
    """The one-line form of a declared variable (parse_variable's inverse)."""
    text = spec.name + ("*" if spec.required else "")
    if spec.default is not None:
        text += f"={spec.default}"
    if spec.allowed_values:
        text += " | " + ", ".join(spec.allowed_values)
    return text


def values_from(form: FormData, specs: list[Spec]) -> dict[str, Any]:
    """The model's input from the posted form (blank optional fields are left out)."""
    values: dict[str, Any] = {}
    for spec in specs:
        raw = str(form.get(spec.name) or "")
        if spec.widget == "bool":
            values[spec.name] = form.get(spec.name) == "on"
        elif spec.widget == "lines":
            values[spec.name] = _lines(raw)
        elif spec.widget == "csv":
            values[spec.name] = [part.strip() for part in raw.split(",") if part.strip()]
        elif spec.widget == "variables":
            values[spec.name] = [parse_variable(line) for line in _lines(raw)]
        elif raw.strip() or spec.required:
            values[spec.name] = raw if spec.widget == "textarea" else raw.strip()
    return values


def form_text(row: BaseModel | None, specs: list[Spec]) -> dict[str, Any]:
    """What each field shows for a stored row (or an empty form)."""
    if row is None:
        return {}
    shown: dict[str, Any] = {}
    for spec in specs:
        value = getattr(row, spec.name, None)
        if spec.widget == "variables":
            shown[spec.name] = "\n".join(format_variable(v) for v in value or [])
        elif spec.widget == "lines":
            shown[spec.name] = "\n".join(value or [])
        elif spec.widget == "csv":
            shown[spec.name] = ", ".join(value or [])
        elif value is not None:
            shown[spec.name] = str(getattr(value, "value", value))
    return shown


def field_errors(exc: ValidationError | ValidationFailed) -> dict[str, str]:
    """Problems by form field (the first of each), from pydantic or a service's 422."""
    errors: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "_form"
            errors.setdefault(name, _describe(err))
        return errors
    for detail in exc.details or []:
        path = str(detail.get("path", "$")).removeprefix("$.").split(".")[0].split("[")[0]
        errors.setdefault(path or "_form", str(detail.get("message", "")))
    if not errors:
        errors["_form"] = exc.message
    return errors


def _describe(err: Any) -> str:
    loc = [str(part) for part in err["loc"][1:]]
    where = f" (line {int(loc[0]) + 1})" if loc and loc[0].isdigit() else ""
    return f"{err['msg']}{where}"
