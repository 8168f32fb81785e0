"""`{{placeholder}}` resolution against declared variables (required, default, allowed values)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.errors import ValidationFailed
from shared.models.template import VariableSpec

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
ProblemKind = Literal["missing", "not_allowed"]


@dataclass(frozen=True)
class Problem:
    """One variable that cannot be resolved."""

    name: str
    kind: ProblemKind
    message: str

    def detail(self, prefix: str = "$.parameters") -> dict[str, Any]:
        """The problem in the API's validation-detail shape."""
        return {"path": f"{prefix}.{self.name}", "message": self.message, "type": self.kind}


def placeholders(*texts: str) -> list[str]:
    """Placeholder names in order of first use."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


def as_text(value: object) -> str | None:
    """A supplied value as the text substituted; None and "" mean "not given"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text != "" else None


def resolve_values(
    variables: Sequence[VariableSpec], texts: Iterable[str], supplied: Mapping[str, object]
) -> tuple[dict[str, str], list[Problem]]:
    """Values for every declared or used name, and every problem (all of them, not the first)."""
    declared = {spec.name: spec for spec in variables}
    used = placeholders(*texts)
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for name in [*declared, *(n for n in used if n not in declared)]:
        spec = declared.get(name)
        value = as_text(supplied.get(name))
        if value is None and spec is not None:
            value = spec.default
        if value is None:
            if spec is None or spec.required:
                problems.append(Problem(name, "missing", _missing(name, spec)))
            elif name in used:
                values[name] = ""  # optional and unset: renders empty
            continue
        if (
            spec is not None
            and spec.allowed_values is not None
            and value not in spec.allowed_values
        ):
            allowed = ", ".join(repr(v) for v in spec.allowed_values)
            problems.append(Problem(name, "not_allowed", f"{value!r} is not one of {allowed}"))
            continue
        values[name] = value
    return values, problems


def _missing(name: str, spec: VariableSpec | None) -> str:
    if spec is None:
        return f"placeholder {{{{{name}}}}} is not declared and no value was given"
    return f"required variable {name!r} has no value and no default"


def render(text: str, values: Mapping[str, str]) -> str:
    """Substitute every placeholder (callers resolve first, so every name has a value)."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def raise_for(problems: Sequence[Problem], *, prefix: str = "$.parameters", what: str = "") -> None:
    """422 naming every missing or invalid variable."""
    if not problems:
        return
    names = ", ".join(problem.name for problem in problems)
    scope = f" for {what}" if what else ""
    raise ValidationFailed(
        f"{len(problems)} variable(s) missing or invalid{scope}: {names}",
        details=[problem.detail(prefix) for problem in problems],
        code="unresolved_variables",
    )
