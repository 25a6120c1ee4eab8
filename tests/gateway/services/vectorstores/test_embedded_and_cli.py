"""The embedded default (pgserver started by the gateway) and ``llmops ingest``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.gateway.services.vectorstores.fixtures import DOCUMENTS
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess

pytestmark = pytest.mark.integration


def test_retrieval_works_with_no_database_configured(start_gateway: Any, sim: ServerProcess,
                                                     tmp_path: Path) -> None:
    gw = start_gateway(sim_config(sim.url, "sim-chat", chain=["rag"],
                                  postgres={"embedded_dir": str(tmp_path / "pg")}))
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    store = c.vector_stores.create(name="embedded")
    f = c.files.create(file=("zebras.txt", DOCUMENTS["zebras.txt"]), purpose="assistants")
    c.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=f.id, poll_interval_ms=50)
    hits = c.vector_stores.search(store.id, query="striped horses")
    assert hits.data[0].filename == "zebras.txt"


def test_ingest_cli_loads_files_with_progress(postgres_dsn: str, tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({"postgres": {"dsn": postgres_dsn}}))
    files = []
    for name in ("volcano.md", "comet.pdf"):
        (tmp_path / name).write_bytes(DOCUMENTS[name])
        files.append(str(tmp_path / name))
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "ingest", "--config", str(config),
                           "--create", "cli-docs", "--tenant", "acme", *files],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("vs_")
    assert done.stderr.count("completed") == 2 and "chunk" in done.stderr
