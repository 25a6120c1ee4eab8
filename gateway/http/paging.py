"""Query strings as typed Structs (``kernel/schemas.py``: ``Page``, ``ItemPage``, ``ResponseQuery``...),
and the list page OpenAI's list endpoints answer with."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from starlette.datastructures import QueryParams

from gateway.http.parsing import validate
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.response_state import Order
from gateway.kernel.schemas import ItemPage

Q = TypeVar("Q", bound=msgspec.Struct)


def query_of(params: QueryParams, schema: type[Q]) -> Q:
    """The query string as ``schema``: strings converted to the declared types, a list field from its
    repeated values (``include=a&include=b`` or ``include[]=a``); a 400 naming the parameter."""
    lists = _list_fields(schema)
    fields: dict[str, Any] = {}
    for key in params:
        name = key.removesuffix("[]")
        fields[name] = [*fields.get(name, ()), *params.getlist(key)] if name in lists else params[key]
    try:
        return validate(fields, schema, strict=False)
    except InvalidRequest as exc:  # "include[0]": the URL has no index to point at
        exc.param = exc.param.split("[", 1)[0] if exc.param else exc.param
        raise


@functools.cache
def _list_fields(schema: type[msgspec.Struct]) -> frozenset[str]:
    info = msgspec.inspect.type_info(schema)
    assert isinstance(info, msgspec.inspect.StructType)
    return frozenset(f.name for f in info.fields if _is_list(f.type))


def _is_list(kind: msgspec.inspect.Type) -> bool:
    if isinstance(kind, msgspec.inspect.UnionType):
        return any(_is_list(t) for t in kind.types)
    return isinstance(kind, msgspec.inspect.ListType)


@dataclass(frozen=True, slots=True)
class ListQuery:
    after: str | None
    limit: int
    order: Order


def list_query(params: QueryParams, default_order: Order = "desc") -> ListQuery:
    page = query_of(params, ItemPage)
    return ListQuery(page.after, page.limit or 20, page.order or default_order)
