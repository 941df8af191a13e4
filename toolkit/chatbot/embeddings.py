"""Entry embeddings: each active entry's questions (its question and every alternative,
staff-written and generated) embedded by the configured model, stored in faq_embedding
and kept while those texts stay the same.

    store = embedding_store(session, model="text-embedding-3-small")
    store.missing                    # active entries (EntryTexts) with no embedding of their texts
    embed_entries(session, client, store.missing)
    embedding_store(session, model=...).scores(query_vector)   # {key: best cosine}

An entry scores the best cosine between the query and any of its questions: customers
ask one of the ways an entry can be asked, not their average. The store is rebuilt only
when an entry or an embedding changed (a cheap fingerprint query), as the lexical index is.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from toolkit.chatbot import service
from toolkit.chatbot.models import FaqEmbedding, FaqEntry
from toolkit.kit.clock import utcnow
from toolkit.llm.client import LlmClient

DTYPE = np.dtype("<f4")


def entry_texts(entry: FaqEntry) -> list[str]:
    """What is embedded for an entry: its question and its alternatives, as shown to staff."""
    texts = [entry.question, *(entry.alt_questions or ()), *(entry.generated_questions or ())]
    return [t for t in (" ".join(html.unescape(x).split()) for x in texts) if t]


def texts_sha256(texts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EntryTexts:
    """An entry to embed (a plain value: a cached store outlives the session it read)."""

    entry_id: int
    key: str
    version: int
    texts: tuple[str, ...]

    @classmethod
    def of(cls, entry: FaqEntry) -> EntryTexts:
        return cls(entry.id, entry.key, entry.version, tuple(entry_texts(entry)))


@dataclass(frozen=True)
class EmbeddingStore:
    """The embedded questions of the active entries under one model."""

    model: str
    keys: tuple[str, ...] = ()
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=DTYPE))  # unit rows
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # row -> index in keys
    missing: tuple[EntryTexts, ...] = ()

    @property
    def dims(self) -> int:
        return int(self.matrix.shape[1]) if self.matrix.size else 0

    @property
    def complete(self) -> bool:
        return not self.missing and bool(self.keys)

    def scores(self, vector: Sequence[float]) -> dict[str, float]:
        """Each embedded entry's best cosine with `vector` (empty when the dimensions differ)."""
        query = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(query))
        if not self.keys or norm == 0 or query.shape[0] != self.dims:
            return {}
        cosines = self.matrix.astype(np.float64) @ (query / norm)
        best = np.full(len(self.keys), -1.0)
        np.maximum.at(best, self.owner, cosines)
        return {key: float(best[i]) for i, key in enumerate(self.keys)}


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(DTYPE)


def build_store(model: str, entries: Sequence[FaqEntry], rows: Sequence[FaqEmbedding]) -> EmbeddingStore:
    by_entry = {row.entry_id: row for row in rows}
    current: list[tuple[EntryTexts, FaqEmbedding]] = []
    missing: list[EntryTexts] = []
    for entry in map(EntryTexts.of, entries):
        row = by_entry.get(entry.entry_id)
        if row is not None and row.texts_sha256 == texts_sha256(entry.texts):
            current.append((entry, row))
        elif entry.texts:
            missing.append(entry)
    if not current:
        return EmbeddingStore(model, missing=tuple(missing))
    # One model gives one length; rows of another length (the model behind the name
    # changed) count as missing and are embedded again.
    dims = Counter(row.dims for _, row in current).most_common(1)[0][0]
    missing += [entry for entry, row in current if row.dims != dims]
    current = [(entry, row) for entry, row in current if row.dims == dims]
    blocks = [np.frombuffer(row.vectors, dtype=DTYPE).reshape(row.n_vectors, row.dims) for _, row in current]
    owner = np.concatenate([np.full(block.shape[0], i, dtype=np.int64) for i, block in enumerate(blocks)])
    return EmbeddingStore(model, tuple(entry.key for entry, _ in current), _unit_rows(np.vstack(blocks)), owner,
                          tuple(missing))


_lock = threading.Lock()
_cached: dict[str, tuple[tuple[Any, ...], EmbeddingStore]] = {}


def _fingerprint(session: Session, model: str) -> tuple[Any, ...]:
    entries = session.execute(
        select(func.count(FaqEntry.id), func.coalesce(func.sum(FaqEntry.version), 0), func.max(FaqEntry.updated_at))
        .where(FaqEntry.active.is_(True))
    ).one()
    embedded = session.execute(
        select(func.count(FaqEmbedding.id), func.max(FaqEmbedding.created_at)).where(FaqEmbedding.model == model)
    ).one()
    return (session.get_bind().engine.url.render_as_string(), *entries, *embedded)


def embedding_store(session: Session, *, model: str) -> EmbeddingStore:
    """The active entries' embeddings under `model`, and the entries that have none."""
    fingerprint = _fingerprint(session, model)
    cached = _cached.get(model)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    entries = service.active_entries(session)
    rows = session.scalars(select(FaqEmbedding).where(FaqEmbedding.model == model)).all()
    store = build_store(model, entries, rows)
    with _lock:
        _cached[model] = (fingerprint, store)
    return store


def store_vectors(session: Session, *, entry: EntryTexts, model: str, vectors: Sequence[Sequence[float]]) -> None:
    """Save an entry's embeddings (replacing what it had under `model`). An upsert, so two
    workers embedding the same entry at once do not fail each other's transaction."""
    array = np.asarray(vectors, dtype=DTYPE)
    if array.ndim != 2 or array.shape[0] != len(entry.texts):
        raise ValueError(f"{array.shape[0]} vectors for {len(entry.texts)} texts of entry {entry.key!r}")
    values = {
        "entry_id": entry.entry_id, "model": model, "version": entry.version,
        "texts_sha256": texts_sha256(entry.texts), "dims": int(array.shape[1]), "n_vectors": int(array.shape[0]),
        "vectors": array.tobytes(), "created_at": utcnow(),
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(FaqEmbedding).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[FaqEmbedding.entry_id, FaqEmbedding.model],
        set_={name: statement.excluded[name] for name in values if name not in ("entry_id", "model")},
    )
    session.execute(statement)


def embed_entries(
    session: Session, client: LlmClient, entries: Sequence[EntryTexts], *, extra: Sequence[str] = (),
    timeout_s: float | None = None,
) -> list[list[float]]:
    """Embed and store `entries` in one call to the model, together with the `extra` texts
    (the bot's masked query rides along, to save a round trip); returns the extra texts'
    vectors. Entry texts are the brand's own FAQ, never customer messages."""
    flat = [*extra, *(text for entry in entries for text in entry.texts)]
    if not flat:
        return []
    vectors = client.embed(flat, timeout_s=timeout_s)
    position = len(extra)
    # In entry-id order, so that two transactions upserting overlapping sets lock alike.
    spans = []
    for entry in entries:
        spans.append((entry, position))
        position += len(entry.texts)
    for entry, start in sorted(spans, key=lambda span: span[0].entry_id):
        store_vectors(session, entry=entry, model=client.embedding_model,
                      vectors=vectors[start:start + len(entry.texts)])
    return vectors[:len(extra)]
