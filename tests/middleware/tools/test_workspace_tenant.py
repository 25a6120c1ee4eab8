"""A tool job carries its caller's tenant (the node keeps workspaces under it), and the workspace is
part of the ``tool_call`` policy question (``resource.workspace``)."""

from __future__ import annotations

from executors.inner import Answerer
from executors.spec import Job, Result
from gateway.kernel.context import Principal
from routers.scheduler import NodeInfo
from tests.middleware.tools.test_stage import ALLOW, PY, Engine, Model, call, completion, ctx, run, stage
from tests.routers.scheduler.fakes import FakeRunner


class RecordingRunner(FakeRunner):
    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Job] = []

    async def run(self, node: NodeInfo, job: Job, answer: Answerer | None = None) -> Result:
        self.jobs.append(job)
        return await super().run(node, job, answer)


async def ask(tenant: str | None, llmops: dict[str, str] | None = None) -> tuple[RecordingRunner, Engine]:
    runner, engine = RecordingRunner(), Engine(ALLOW)
    c = ctx([PY], llmops=llmops) if llmops is not None else ctx([PY])
    if tenant is not None:
        c.principal = Principal(tenant=tenant, key_id=f"key-{tenant}")
    model = Model(completion(calls=[call("python", {"code": "print(1)"})]), completion("done"))
    await run(stage(engine, runner=runner), c, model)
    return runner, engine


async def test_the_job_carries_the_callers_tenant_and_workspace() -> None:
    runner, engine = await ask("acme", {"workspace": "w1"})
    assert [(j.tenant, j.workspace) for j in runner.jobs] == [("acme", "w1")]
    assert engine.documents[0]["resource"]["workspace"] == "w1"
    assert engine.documents[0]["subject"]["tenant"] == "acme"


async def test_without_a_principal_the_tenant_is_default_and_no_workspace_is_empty() -> None:
    runner, engine = await ask(None)
    assert [(j.tenant, j.workspace) for j in runner.jobs] == [("default", None)]
    assert engine.documents[0]["resource"]["workspace"] == ""
