"""Shared helpers: input validation, device choice and seeding."""
