"""The web page (`hpc-agent ui`): a Streamlit page (`page.py`, widgets only) over `logic` (plain Python)."""

from pathlib import Path

PAGE = Path(__file__).with_name("page.py")

__all__ = ["PAGE"]
