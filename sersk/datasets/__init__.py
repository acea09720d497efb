"""Data sets: Emo-DB, the Berlin Database of Emotional Speech, and corpora of your own."""

from ._emodb import fetch_emodb, get_data_home, parse_emodb_filename
from ._files import AUDIO_EXTENSIONS, find_audio_files, load_corpus

__all__ = ["AUDIO_EXTENSIONS", "fetch_emodb", "find_audio_files", "get_data_home", "load_corpus", "parse_emodb_filename"]
