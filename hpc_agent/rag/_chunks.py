"""Chunks with stable ids: the same sources always give the same chunks, ids and order.

A chunk's id is a UUID made from the sha256 of source, symbol and text, so rebuilding an index from the
same sources gives the same points, and any change of a docstring gives a new id.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from hpc_agent.rag._corpus import SCRIPT_KIND, Document

MAX_CHUNK_CHARS = 1600


@dataclass(frozen=True)
class Chunk:
    id: str  # a UUID string (Qdrant point ids are unsigned integers or UUIDs)
    source: str
    symbol: str
    kind: str
    text: str

    def payload(self) -> dict[str, str]:
        return {"source": self.source, "symbol": self.symbol, "kind": self.kind, "text": self.text}


def chunk_id(source: str, symbol: str, text: str) -> str:
    digest = hashlib.sha256("\x1f".join((source, symbol, text)).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16]))


def _split(text: str, max_chars: int) -> list[str]:
    """Cut at paragraph breaks, then at line breaks, so no piece exceeds `max_chars` (bar one huge line)."""
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    current = ""
    for para in text.split("\n\n"):
        for part in ([para] if len(para) <= max_chars else para.splitlines()):
            if current and len(current) + len(part) + 2 > max_chars:
                pieces.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        pieces.append(current)
    return pieces


_FENCE = re.compile(r"^```(\w*)", re.MULTILINE)


def _close_fences(pieces: list[str]) -> list[str]:
    """A code fence cut between pieces is closed at the end of one and reopened at the start of the next."""
    out: list[str] = []
    reopen = ""
    for piece in pieces:
        if reopen:
            piece = f"{reopen}\n{piece}"
        inside, lang = False, ""
        for m in _FENCE.finditer(piece):
            inside, lang = (True, m.group(1)) if not inside else (False, "")
        reopen = f"```{lang}" if inside else ""
        out.append(f"{piece}\n```" if inside else piece)
    return out


def chunk_documents(documents: list[Document], max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """One chunk per document piece; the first line (the symbol and signature) heads every piece."""
    chunks: dict[str, Chunk] = {}
    for doc in documents:
        whole = doc.kind == SCRIPT_KIND  # a tutorial's whole script is shown whole, never searched
        pieces = [doc.text] if whole else _close_fences(_split(doc.text, max_chars))
        head = doc.text.splitlines()[0]
        for i, piece in enumerate(pieces):
            text = piece if i == 0 else f"{head} (continued)\n{piece}"
            c = Chunk(chunk_id(doc.source, doc.symbol, text), doc.source, doc.symbol, doc.kind, text)
            chunks.setdefault(c.id, c)  # identical text under the same symbol: one point
    return list(chunks.values())
