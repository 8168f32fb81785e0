"""Repositories: the only modules that hold SQL; they return pydantic models."""
