"""The review workflow (DESIGN.md §3): which status may follow which."""

from __future__ import annotations

from shared.errors import InvalidTransition, ValidationFailed
from shared.models.conversation import ConversationStatus as S

ALLOWED: dict[S, frozenset[S]] = {
    # A reviewer may ask for a fix (notes required); an edit or regeneration sends it back.
    S.PENDING_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.NEEDS_REVISION}),
    S.NEEDS_REVISION: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.ARCHIVED}),
    S.REJECTED: frozenset({S.ARCHIVED, S.PENDING_REVIEW}),
    S.ARCHIVED: frozenset(),
}
ACTION_NAMES: dict[S, str] = {
    S.APPROVED: "approve",
    S.REJECTED: "reject",
    S.ARCHIVED: "archive",
    S.PENDING_REVIEW: "reopen",
    S.NEEDS_REVISION: "request_revision",
}


def check_transition(current: S, target: S) -> None:
    """Raise a 409 naming the allowed targets when `current → target` is not allowed."""
    allowed = ALLOWED[current]
    if target in allowed:
        return
    names = sorted(status.value for status in allowed)
    raise InvalidTransition(
        f"cannot move a conversation from {current.value} to {target.value}; "
        f"allowed: {', '.join(names) if names else 'none'}",
        details={"from": current.value, "to": target.value, "allowed": names},
    )


def check_notes(target: S, notes: str | None) -> None:
    """A request for revision must say what to fix: 422 without notes."""
    if target is S.NEEDS_REVISION and not (notes or "").strip():
        raise ValidationFailed(
            "notes are required when asking for a revision",
            details=[{"path": "$.notes", "message": "say what needs fixing", "type": "missing"}],
        )


def after_edit(current: S) -> S:
    """The status an edited (or regenerated) conversation lands in: a requested revision goes
    back to review, any other status stays."""
    return S.PENDING_REVIEW if current is S.NEEDS_REVISION else current
