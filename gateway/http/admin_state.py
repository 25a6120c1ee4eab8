"""``/admin/state``: the desired state and each resource's state (admin role).

``GET`` reports the running generation, each declared resource (ready, or failed with the reason),
settings waiting for a restart and the last rejected change. ``PUT`` applies a desired state (the config
file's shape) over the version the caller read (``base``; 409 when it moved); an invalid change is a 400
listing every error and changes nothing. ``POST /admin/state/diff`` says what a desired state would change.
"""

from __future__ import annotations

from typing import Any, Protocol

from msgspec import Struct
from starlette.requests import Request

from gateway.http.parsing import parse_object, validate
from gateway.kernel.context import Principal
from gateway.kernel.errors import InvalidRequest


class Outcome(Protocol):
    @property
    def applied(self) -> bool: ...

    @property
    def errors(self) -> tuple[str, ...]: ...

    def to_json(self) -> dict[str, Any]: ...


class StateControl(Protocol):
    """The reconcile loop as the admin API sees it (``gateway/reconcile/controller.py``)."""

    @property
    def version(self) -> str: ...

    async def report(self) -> dict[str, Any]: ...

    async def apply_document(self, raw: dict[str, Any], origin: str, *, dry_run: bool = False) -> Outcome: ...


class DesiredState(Struct):
    """``desired``: the configuration document; ``base``: the ``version`` it was read against."""

    desired: dict[str, Any]
    base: str


class DesiredDiff(Struct):
    desired: dict[str, Any]


class RejectedChange(InvalidRequest):
    """400 in OpenAI's envelope, with every error of the change under ``error.errors``."""

    default_code = "invalid_configuration"

    def __init__(self, errors: tuple[str, ...]) -> None:
        first = errors[0] if errors else "invalid"
        key = first.split(":", 1)[0] if ":" in first else None
        super().__init__(f"The change was rejected ({len(errors)} error(s)); nothing was applied: "
                         + "; ".join(errors), param=f"desired.{key}" if key else "desired")
        self.errors = errors

    def envelope(self) -> dict[str, Any]:
        body = super().envelope()
        body["error"]["errors"] = list(self.errors)
        return body


class StateAdmin:
    def __init__(self, control: StateControl) -> None:
        self._control = control

    async def show(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        return await self._control.report()

    async def apply(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        typed = validate(parse_object(await request.body()), DesiredState)
        if typed.base != self._control.version:
            raise InvalidRequest(f"The running configuration is at version {self._control.version!r}, not "
                                 f"{typed.base!r}: read it again (GET /admin/state) and retry.", param="base",
                                 code="version_conflict", status=409)
        outcome = await self._control.apply_document(typed.desired, "api")
        if not outcome.applied:
            raise RejectedChange(outcome.errors)
        return outcome.to_json()

    async def diff(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        typed = validate(parse_object(await request.body()), DesiredDiff)
        outcome = await self._control.apply_document(typed.desired, "api", dry_run=True)
        if outcome.errors:
            raise RejectedChange(outcome.errors)
        return outcome.to_json()
