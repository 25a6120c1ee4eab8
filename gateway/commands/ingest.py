"""``llmops ingest FILE...``: chunk, embed and store files in a vector store, with a progress bar.

Uses the configuration's PostgreSQL (or the embedded one) and embedder, like the gateway does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from gateway.kernel.config import ConfigError, Settings, load_settings
from gateway.kernel.context import DEFAULT_TENANT
from gateway.kernel.errors import GatewayError
from gateway.services.embeddings.factory import make_embedder
from gateway.services.stores.postgres import Postgres
from gateway.services.vectorstores.service import VectorStoreService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="text, Markdown, HTML or PDF files")
    parser.add_argument("--config", "-c", default=os.environ.get("LLMOPS_CONFIG"), help="YAML configuration")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--store", help="id of an existing vector store")
    target.add_argument("--create", metavar="NAME", help="create a new vector store with this name")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant that owns the store")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config) if args.config else Settings()
    except ConfigError as exc:
        print(f"invalid configuration:\n  {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_ingest(settings, args))
    except GatewayError as err:
        print(f"ingest failed: {err.message}", file=sys.stderr)
        return 1


async def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    postgres = await Postgres.open(settings.postgres)
    embedder = make_embedder(settings.rag.embeddings)
    service = VectorStoreService(lambda: _same(postgres), embedder, settings.rag)
    try:
        store = (await service.create_store(args.tenant, args.create, {}) if args.create
                 else await service.store(args.tenant, args.store))
        print(f"vector store {store.id}", file=sys.stderr)
        failed = 0
        for path in map(Path, args.files):
            with tqdm(desc=path.name, unit="chunk", file=sys.stderr) as bar:
                def progress(done: int, total: int, bar: tqdm[object] = bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                row = await service.create_file(args.tenant, path.name, "assistants", path.read_bytes())
                count = await service.ingest(store, row[0], service.default_chunking, progress, attach=True)
            status = await service.store_file(args.tenant, store.id, row[0])
            failed += status[2] != "completed"
            print(f"{path}: {row[0]} {status[2]} ({count} chunks)", file=sys.stderr)
        print(store.id)
        return 1 if failed else 0
    finally:
        await service.aclose()
        await embedder.aclose()
        await postgres.aclose()


async def _same(postgres: Postgres) -> Postgres:
    return postgres
