"""Retrieval benchmark (issue 4): search through a real gateway over 100k chunks of 384 dimensions.

  1. starts PostgreSQL + pgvector (pgserver, in a temp dir), a synthetic OpenAI-compatible
     embeddings server (this process) and the gateway (pinned to --server-cpus) configured with
     ``rag.embeddings.provider: openai`` pointing at it;
  2. ingestion through the gateway's own pipeline: POST /v1/files + /v1/vector_stores/{id}/files
     of a large Markdown file (extract, chunk, embed, COPY) -> chunks/s;
  3. bulk load of N synthetic chunks (clustered vectors, like real embeddings; uniform random
     points are a pathological case for any ANN index) + the store's partial HNSW build;
  4. POST /v1/vector_stores/{id}/search at c=1 for Q queries (each a perturbed chunk vector, served
     by the embeddings server for the text "q:<i>"): p50/p90/p99 through the gateway, recall@10
     against exact (numpy) search, and the SQL-only p50 for comparison.

Goals: p50 <= 3 ms, recall@10 >= 0.98. Writes bench/results/rag-<timestamp>.json.

    python bench/rag_bench.py                 # 100k chunks, 300 queries
    python bench/rag_bench.py --chunks 20000  # smaller, faster
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: no spinning BLAS threads on the load core

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REPO = c.BENCH_DIR.parent
DIMS = 384
GOAL_P50_MS = 3.0
GOAL_RECALL = 0.98


def unit(rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)
    return out


LATENT = 24


def synthetic(n: int, queries: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Topic clusters in a 24-dimensional latent space, projected to 384 dimensions plus isotropic
    noise: sentence embeddings have a low intrinsic dimension, which is what ANN indexes exploit
    (uniform random 384-d points have none, and no index does well on them)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(1, n // 100), LATENT))
    latent = centers[rng.integers(0, len(centers), n)] + 0.5 * rng.standard_normal((n, LATENT))
    projection = rng.standard_normal((LATENT, DIMS))
    chunks = unit(latent @ projection + 0.5 * rng.standard_normal((n, DIMS)))
    picks = rng.integers(0, n, queries)
    query_latent = latent[picks] + 0.25 * rng.standard_normal((queries, LATENT))
    return chunks, unit(query_latent @ projection + 0.5 * rng.standard_normal((queries, DIMS)))


def uniform(n: int, queries: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The worst case: points uniform on the 384-d sphere (every neighbour nearly equidistant)."""
    rng = np.random.default_rng(seed)
    chunks = unit(rng.standard_normal((n, DIMS)))
    picks = rng.integers(0, n, queries)
    return chunks, unit(chunks[picks] + 0.05 * rng.standard_normal((queries, DIMS)))


def hashed(text: str) -> list[float]:
    raw = np.frombuffer(hashlib.shake_256(text.encode()).digest(4 * DIMS), dtype=np.uint32)
    v = raw.astype(np.float64) / 2**31 - 1.0
    out: list[float] = (v / np.linalg.norm(v)).tolist()
    return out


class EmbeddingsServer:
    """OpenAI-compatible /v1/embeddings: "q:<i>" -> query vector i, anything else -> a hash vector."""

    def __init__(self, query_vectors: np.ndarray) -> None:
        qv = [v.tolist() for v in query_vectors]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [{"object": "embedding", "index": i,
                         "embedding": qv[int(t[2:])] if t.startswith("q:") else hashed(t)}
                        for i, t in enumerate(inputs)]
                out = json.dumps({"object": "list", "data": data, "model": body.get("model", "synthetic"),
                                  "usage": {"prompt_tokens": 0, "total_tokens": 0}}).encode()
                head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(out)}\r\n\r\n"
                self.wfile.write(head.encode() + out)  # one write: no Nagle / delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


class Client:
    """One keep-alive HTTP/1.1 connection to the gateway."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        try:
            return self._request(method, path, body, headers)
        except (ConnectionError, http.client.RemoteDisconnected):  # the server closed an idle keep-alive
            self.conn.close()
            return self._request(method, path, body, headers)

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None) -> Any:
        self.conn.request(method, path, body=body, headers=headers or {"content-type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise c.BenchError(f"{method} {path} -> {resp.status}: {data[:300]!r}")
        return json.loads(data)

    def json(self, method: str, path: str, doc: Any = None) -> Any:
        return self.request(method, path, json.dumps(doc).encode() if doc is not None else None)

    def upload(self, name: str, data: bytes) -> Any:
        boundary = "benchboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: text/markdown\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/v1/files", body, {"content-type": f"multipart/form-data; boundary={boundary}"})


def start_postgres(workdir: Path) -> Any:
    import pgserver

    server = pgserver.get_server(str(workdir / "pg"), cleanup_mode="stop")  # type: ignore[attr-defined]
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    return server


def start_gateway(workdir: Path, args: argparse.Namespace, dsn: str, embed_url: str) -> tuple[c.Child, str]:
    port = c.free_port()
    cfg = workdir / "gateway.yaml"
    cfg.write_text(json.dumps({
        "server": {"host": "127.0.0.1", "port": port, "access_log": False},
        "postgres": {"dsn": dsn, "pool_max": 4},
        "rag": {"ef_search": args.ef_search, "embeddings": {"provider": "openai", "base_url": embed_url,
                                                             "model": "synthetic", "max_batch": 256}},
    }))
    exe = Path(sys.executable).parent / "llmops"
    child = c.start_pinned("gateway", [str(exe), "serve", "--config", str(cfg), "--port", str(port)],
                           args.server_cpus, workdir / "gateway.log", cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    c.wait_http_ready(url + "/healthz", child, timeout=60, also_ok=(404, 503))
    return child, url


def ingest_pipeline(client: Client, dsn: str, paragraphs: int) -> dict[str, Any]:
    """The gateway's own ingestion path, end to end, on one Markdown file."""
    text = "\n\n".join(f"## Section {i}\n\n" + " ".join(f"word{(i * 7 + j) % 5000}" for j in range(120))
                       for i in range(paragraphs))
    store = client.json("POST", "/v1/vector_stores", {"name": "ingest"})["id"]
    started = time.perf_counter()
    file_id = client.upload("big.md", text.encode())["id"]
    client.json("POST", f"/v1/vector_stores/{store}/files",
                {"file_id": file_id, "chunking_strategy": {"type": "static", "static": {
                    "max_chunk_size_tokens": 200, "chunk_overlap_tokens": 0}}})
    while client.json("GET", f"/v1/vector_stores/{store}/files/{file_id}")["status"] == "in_progress":
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    count = client.json("GET", f"/v1/vector_stores/{store}")["file_counts"]
    chunks = _chunk_count(dsn, store)
    return {"bytes": len(text), "chunks": chunks, "seconds": elapsed, "chunks_per_s": chunks / elapsed,
            "file_counts": count}


def _chunk_count(dsn: str, store: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM llmops_chunks WHERE store_id = %s", (store,)).fetchone()
        return int(row[0]) if row else 0


def bulk_load(client: Client, dsn: str, chunks: np.ndarray) -> tuple[str, dict[str, float]]:
    """Create the store through the API, COPY the synthetic chunks in, build its HNSW index."""
    import asyncio

    import psycopg

    from gateway.services.vectorstores import repo
    from gateway.services.vectorstores.search import build_index, vector_text

    store = client.json("POST", "/v1/vector_stores", {"name": "bench-100k"})["id"]
    file_id = client.upload("synthetic.md", b"synthetic")["id"]
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO llmops_vector_store_files (store_id, file_id, tenant, status, created_at, chunking)"
                     " VALUES (%s, %s, 'default', 'completed', 0, '{}')", (store, file_id))
        with conn.cursor() as cur, cur.copy("COPY llmops_chunks (store_id, file_id, seq, tenant, text, embedding) "
                                            "FROM STDIN") as cp:
            for i, v in enumerate(chunks):
                cp.write_row((store, file_id, i, "default", f"chunk {i}", vector_text(v)))
                if i % 20000 == 0:
                    print(f"\r  copied {i:,}/{len(chunks):,}", end="", flush=True)
    copy_s = time.perf_counter() - t0
    print(f"\r  copied {len(chunks):,}/{len(chunks):,} in {copy_s:.1f}s; building the store's HNSW index ...",
          flush=True)

    async def index() -> None:
        aconn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        try:
            row = await repo.get_store(aconn, "default", store)
            assert row is not None
            await build_index(aconn, row)
        finally:
            await aconn.close()

    t1 = time.perf_counter()
    asyncio.run(index())
    return store, {"copy_s": copy_s, "copy_chunks_per_s": len(chunks) / copy_s,
                   "index_build_s": time.perf_counter() - t1}


def search_latency(client: Client, store: str, chunks: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    for i in range(min(20, len(queries))):  # warm the pool, the plan, the index pages
        client.json("POST", f"/v1/vector_stores/{store}/search", {"query": f"q:{i}", "max_num_results": 10})
    # Exact answers first: numpy's BLAS threads keep spinning after a matmul and would steal the
    # core of the embeddings server (this process) during the timed requests.
    exact_top = np.argpartition(-(queries @ chunks.T), 10, axis=1)[:, :10]
    latencies, recalls = [], []
    for i in range(len(queries)):
        t = time.perf_counter()
        page = client.json("POST", f"/v1/vector_stores/{store}/search", {"query": f"q:{i}", "max_num_results": 10})
        latencies.append((time.perf_counter() - t) * 1000)
        got = {int(item["content"][0]["text"].split()[1]) for item in page["data"]}
        recalls.append(len(got & set(exact_top[i].tolist())) / 10)
        if i % 50 == 0:
            print(f"\r  query {i}/{len(queries)}", end="", flush=True)
    print(f"\r  {len(queries)} queries done", flush=True)
    qs = statistics.quantiles(latencies, n=100)
    return {"p50_ms": statistics.median(latencies), "p90_ms": qs[89], "p99_ms": qs[98],
            "recall_at_10": float(np.mean(recalls)), "queries": len(queries)}


def sql_latency(dsn: str, store: str, queries: np.ndarray, ef: int) -> float:
    import psycopg

    from gateway.services.vectorstores.search import vector_text

    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql = (f"SELECT seq FROM llmops_chunks WHERE store_id = '{store}' AND tenant = 'default' "
               f"ORDER BY embedding::vector({DIMS}) <=> %s::vector({DIMS}) LIMIT 10")
        for q in queries:
            text = vector_text(q)
            t = time.perf_counter()
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                conn.execute(sql, (text,)).fetchall()
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--ingest-paragraphs", type=int, default=400, help="size of the ingestion-pipeline file")
    p.add_argument("--ef-search", type=int, default=100)
    p.add_argument("--data", choices=("clustered", "uniform"), default="clustered",
                   help="clustered: low intrinsic dimension, like text embeddings; uniform: the worst case")
    p.add_argument("--server-cpus", default="1")
    p.add_argument("--load-cpus", default="0")
    args = p.parse_args()
    c.pin_self(args.load_cpus)
    workdir = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    with c.progress(f"synthetic {args.data} data: {args.chunks:,} x {DIMS}"):
        chunks, queries = (synthetic if args.data == "clustered" else uniform)(args.chunks, args.queries)
    pg = start_postgres(workdir)
    try:
        dsn = pg.get_uri()
        embed = EmbeddingsServer(queries)
        child, url = start_gateway(workdir, args, dsn, embed.url)
        client = Client(url)
        with c.progress("ingestion through the gateway pipeline"):
            ingest = ingest_pipeline(client, dsn, args.ingest_paragraphs)
        print(f"bulk load of {args.chunks:,} chunks")
        store, load = bulk_load(client, dsn, chunks)
        print("search through the gateway (c=1)")
        search = search_latency(client, store, chunks, queries)
        search["sql_only_p50_ms"] = sql_latency(dsn, store, queries, args.ef_search)
        c.stop(child)
    finally:
        c.stop_all()
        pg.cleanup()
    return report(args, ingest, load, search)


def report(args: argparse.Namespace, ingest: dict[str, Any], load: dict[str, float], search: dict[str, Any]) -> int:
    ok_p50 = search["p50_ms"] <= GOAL_P50_MS
    ok_recall = search["recall_at_10"] >= GOAL_RECALL
    rows = [
        ["ingestion (gateway pipeline)", f"{ingest['chunks']:,} chunks in {ingest['seconds']:.2f}s",
         f"{ingest['chunks_per_s']:,.0f} chunks/s"],
        ["bulk COPY", f"{args.chunks:,} chunks in {load['copy_s']:.1f}s", f"{load['copy_chunks_per_s']:,.0f} chunks/s"],
        ["HNSW build (partial, this store)", f"{load['index_build_s']:.1f}s", "m=16, ef_construction=64"],
        ["search p50 / p90 / p99 (gateway)", f"{search['p50_ms']:.2f} / {search['p90_ms']:.2f} / "
         f"{search['p99_ms']:.2f} ms", "PASS" if ok_p50 else "FAIL"],
        ["search p50 (SQL only)", f"{search['sql_only_p50_ms']:.2f} ms", f"ef_search={args.ef_search}"],
        ["recall@10 vs exact", f"{search['recall_at_10']:.3f}", "PASS" if ok_recall else "FAIL"],
    ]
    print()
    print(c.markdown_table(["what", "measured", "note"], rows))
    path = c.write_results("rag", {"args": vars(args), "ingest": ingest, "load": load, "search": search,
                                   "revision": c.git_revision(REPO)})
    print(f"results: {path}")
    return 0 if ok_p50 and ok_recall else 1


if __name__ == "__main__":
    sys.exit(main())
