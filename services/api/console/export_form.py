"""The export dialog's form ↔ the body of POST /v1/exports (ExportRequest / ExportConfig).

Every field of ExportConfig has a control: format (with a recommendation), the JSONL target
and fold_system, the include options, the train/validation split, the dataset card and its
licence. The form's values go to ExportRequest unchanged, so the API's validation (options
that do not go together, out-of-range numbers) is the dialog's.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import ValidationError
from starlette.datastructures import FormData, QueryParams

from services.api.console import filters as list_view
from services.api.exports.schemas import ExportRequest
from shared.errors import DomainError
from shared.models.export import ExportConfig, ExportFormat, ExportScope, ExportTarget

# (format, label, what it is for); the recommendation is computed by `recommendation`.
FORMATS = [
    ("jsonl", "JSONL (chat messages)", "One conversation per line, compiled for the target below."),
    ("parquet", "Parquet", "Columnar: messages plus metadata columns, for datasets / pandas / "
     "polars / duckdb."),
    ("json", "JSON document", "One document with a summary; for programs and archives."),
    ("csv", "CSV (one row per turn)", "For spreadsheets and reviewers; UTF-8 with BOM."),
    ("markdown", "Markdown", "For reading and sharing."),
    ("txt", "Plain text transcript", "For reading, grepping and pasting."),
]  # fmt: skip
TARGETS = [
    ("openai", "OpenAI chat (messages)"),
    ("bedrock-claude", "Amazon Bedrock, Claude (system + messages)"),
    ("sharegpt", "ShareGPT (conversations of from/value)"),
    ("trl", "TRL SFTTrainer (messages)"),
    ("hf-chat", "Hugging Face chat template (messages)"),
]
OPTIONS = [
    ("include_metadata", "Metadata"),
    ("include_quality_scores", "Quality scores"),
    ("include_timestamps", "Timestamps"),
    ("include_approval_history", "Approval history"),
    ("include_parent_references", "Parent references"),
    ("include_full_content", "Full content"),
    ("compress", "Compress (gzip)"),
]
STRATA = [("", "no stratum"), ("tier", "tier"), ("status", "status")]
DEFAULT_SPLIT = {"validation": 0.1, "seed": 42, "stratify": None}
# Scopes the form sends besides ExportScope's: "tier" = approved conversations of one tier.
TIER_SCOPE = "tier"


def values_of(config: dict[str, Any] | None) -> dict[str, Any]:
    """What the dialog's controls show for a stored config (defaults where it says nothing)."""
    defaults = ExportConfig(scope=ExportScope.ALL_APPROVED).model_dump(mode="json")
    values = {**defaults, **(config or {})}
    values["split_on"] = values.get("split") is not None
    values["split"] = {**DEFAULT_SPLIT, **(values.get("split") or {})}
    return values


def stored_config(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A remembered config if it is still valid (formats and rules change), else None."""
    if not raw:
        return None
    try:
        return ExportConfig.model_validate(raw).model_dump(mode="json")
    except ValidationError:
        return None


def recommendation(values: dict[str, Any]) -> str:
    """Which format fits the choices made so far, and why."""
    target = values.get("target") or ExportTarget.OPENAI.value
    if target != ExportTarget.OPENAI.value:
        return f"JSONL: the {target} target is a JSONL layout."
    if values.get("split_on") and values.get("dataset_card"):
        return "Parquet: a split with a dataset card is a folder a dataset hub loads as is."
    return "JSONL: what fine-tuning APIs and trainers read as is (one conversation per line)."


def _checked(form: FormData, name: str) -> bool:
    return form.get(name) == "on"


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


def config_from(form: FormData) -> dict[str, Any]:
    """The config part of the form, as the JSON body would carry it (unvalidated)."""
    config: dict[str, Any] = {name: _checked(form, name) for name, _ in OPTIONS}
    config["format"] = _text(form, "format") or ExportFormat.JSONL.value
    config["target"] = _text(form, "target") or ExportTarget.OPENAI.value
    config["fold_system"] = _checked(form, "fold_system")
    if _checked(form, "split"):
        config["split"] = {
            "validation": _text(form, "split_validation") or None,
            "seed": _text(form, "split_seed") or DEFAULT_SPLIT["seed"],
            "stratify": _text(form, "split_stratify") or None,
        }
    config["dataset_card"] = _checked(form, "dataset_card")
    config["license"] = _text(form, "license") or None
    return config


def selected_ids(values: list[Any]) -> list[UUID]:
    """The hidden `ids` fields as UUIDs (anything else dropped), without repeats."""
    ids = []
    for value in values:
        try:
            ids.append(UUID(str(value)))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


def export_request(form: FormData) -> ExportRequest:
    """The dialog's form as the body of POST /v1/exports."""
    scope = _text(form, "scope") or ExportScope.ALL_APPROVED.value
    body: dict[str, Any] = {}
    if scope == TIER_SCOPE:
        scope = ExportScope.FILTERED.value
        body["filters"] = {"tier": [_text(form, "tier")], "status": ["approved"]}
    elif scope == ExportScope.FILTERED.value:
        query = QueryParams(str(form.get("filter_query") or ""))
        body["filters"] = list_view.parse(query).filters.model_dump(exclude_defaults=True)
    elif scope == ExportScope.SELECTED.value:
        body["conversation_ids"] = [str(id) for id in selected_ids(form.getlist("ids"))]
    return ExportRequest.model_validate({"config": {**config_from(form), "scope": scope}, **body})


def problems(exc: ValidationError | DomainError) -> list[tuple[str, str]]:
    """Every problem as (field path, message): all of them, not the first per field."""
    if isinstance(exc, ValidationError):
        found = []
        for err in exc.errors():
            path = ".".join(str(part) for part in err["loc"]).removeprefix("config.")
            message = str(err["msg"]).removeprefix("Value error, ")
            if not path:  # a whole-config rule: "a; b; c"
                found += [("config", part) for part in message.split("; ")]
            else:
                found.append((path, message))
        return found
    details = exc.details if isinstance(exc.details, list) else []
    listed = [
        (str(d.get("path", "")).removeprefix("$."), str(d.get("message", ""))) for d in details
    ]
    return listed or [("", exc.message)]
