"""On-disk cache of image vectors for the evaluation, one SQLite file per encoder.

A vector is stored under a key made of what produced its input: the file's absolute
path, modification time and size (plus, for synthetic views, the recipe version and
seed). The file name carries a fingerprint of the encoder: the model name and resize
policy and a hash of the source of ``visualsearch/embedding`` (or of the baseline
module), so changing the preprocessing or the model code starts a fresh cache rather
than mixing old and new vectors. Re-running ``evaluate`` then embeds nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

# Images decoded and encoded per step; each step commits to the cache, so an
# interrupted run keeps its work.
CHUNK = 64
# Threads that decode (and make the synthetic views of) the next chunk while this one is
# encoded. Two: a synthetic training view takes 25 ms to make on one thread and 15 ms a view
# on two (PIL and numpy release the GIL), while ONNX Runtime encodes a view in 8.5 ms; the
# loading is what the training cache waits for (docs/benchmarks.md, "Caching the training views").
LOAD_THREADS = 2


def source_fingerprint(*parts: str, paths: Sequence[Path] = ()) -> str:
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part.encode())
    for path in sorted(paths):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def file_key(path: Path, prefix: str = "file") -> str:
    stat = Path(path).stat()
    return f"{prefix}|{Path(path).resolve()}|{stat.st_mtime_ns}|{stat.st_size}"


class VectorCache:
    DTYPE = np.float32  # how vectors are stored; they are always returned as float32
    _CHUNK = 500  # keys per SELECT ... IN (...): under SQLite's bound-parameter limit

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, data BLOB)")

    def close(self) -> None:
        self._db.close()

    def _select(self, columns: str, keys: Sequence[str]) -> Iterator[tuple]:
        """Rows of ``columns`` for those of ``keys`` that are stored, in chunks."""
        for start in range(0, len(keys), self._CHUNK):
            chunk = list(keys[start : start + self._CHUNK])
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(f"SELECT {columns} FROM vectors WHERE key IN ({marks})", chunk)

    def stored(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored arrays (``DTYPE``, read-only views of the rows) of the keys present."""
        return {
            key: np.frombuffer(data, dtype=self.DTYPE, count=dim) for key, dim, data in self._select("key, dim, data", keys)
        }

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {key: row.astype(np.float32) for key, row in self.stored(keys).items()}

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Arrays of any shape, stored flattened."""
        self._db.executemany(
            "INSERT OR REPLACE INTO vectors (key, dim, data) VALUES (?, ?, ?)",
            [(k, int(v.size), np.asarray(v, dtype=self.DTYPE).tobytes()) for k, v in items],
        )
        self._db.commit()


def encode_cached(
    cache: VectorCache | None,
    keys: Sequence[str],
    loaders: Sequence[Callable[[], Image.Image]],
    encode: Callable[[list[Image.Image]], np.ndarray],
    dim: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for every key (rows in order) and how many had to be computed.

    Missing ones are loaded (``loaders[i]()``, in ``LOAD_THREADS`` background threads one chunk ahead)
    and encoded in chunks of ``CHUNK``.
    """
    found = cache.get_many(keys) if cache else {}
    missing = [i for i, key in enumerate(keys) if key not in found]
    out = np.zeros((len(keys), dim), dtype=np.float32)
    for i, key in enumerate(keys):
        if key in found:
            out[i] = found[key]
    if progress and len(keys) - len(missing):
        progress(len(keys) - len(missing))
    chunks = [missing[s : s + CHUNK] for s in range(0, len(missing), CHUNK)]

    def load_one(i: int) -> Image.Image:
        image = loaders[i]()
        image.load()
        return image

    def load(rows: list[int]) -> list[Future]:
        return [pool.submit(load_one, i) for i in rows]

    with ThreadPoolExecutor(max_workers=LOAD_THREADS, thread_name_prefix="eval-loader") as pool:
        pending = load(chunks[0]) if chunks else []
        for n, rows in enumerate(chunks):
            images = [future.result() for future in pending]
            pending = load(chunks[n + 1]) if n + 1 < len(chunks) else []
            vectors = encode(images)
            for row, vector in zip(rows, vectors, strict=True):
                out[row] = vector
            if cache:
                cache.put_many([(keys[row], vector) for row, vector in zip(rows, vectors, strict=True)])
            if progress:
                progress(len(rows))
    return out, len(missing)
