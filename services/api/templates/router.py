"""Routes of the templates domain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
