"""Data sets: Emo-DB, the Berlin Database of Emotional Speech."""

from ._emodb import fetch_emodb, get_data_home, parse_emodb_filename

__all__ = ["fetch_emodb", "get_data_home", "parse_emodb_filename"]
