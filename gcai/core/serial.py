"""The JSON form of gcai.core's dataclasses, through pydantic's ``TypeAdapter``.

Stage outputs, results and settings are stored as JSON (stage artifacts, evaluation
results, run configs) and read back by later stages, resumed runs and the web pages.
One library does both directions, from the dataclasses' own field types:

- :func:`dump`: fields by name, nested dataclasses as objects, enums as their values,
  tuples as lists, ``dict[int, ...]`` keys as strings (JSON has no other keys);
- :func:`load`: missing keys take the field's default, unknown keys are ignored (older
  or newer stored forms still load), enums come from their values, string keys of
  ``dict[int, ...]`` become ints again, and ``__post_init__`` runs as with the
  constructor.

:class:`Stored` gives a dataclass ``to_dict``/``from_dict`` built on these. Two class
hooks cover what field types cannot say, and apply wherever the class is nested:

- ``_json_extra(self) -> dict``: computed keys added to the stored form for readers of
  the JSON (pages read counts without loading the whole artifact); loading drops them;
- ``_json_renames: ClassVar[dict[str, str]]``: field name -> stored key, both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar, cast

from pydantic import GetCoreSchemaHandler, TypeAdapter
from pydantic_core import CoreSchema, core_schema

__all__ = ["Stored", "dump", "load"]

_T = TypeVar("_T")


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    # Building an adapter walks every nested type; once per class is enough.
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def dump(obj: object) -> dict[str, Any]:
    """The JSON-ready dict of dataclass ``obj``."""
    data: dict[str, Any] = _adapter(type(obj)).dump_python(obj, mode="json")
    return data


def load(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """An instance of dataclass ``cls`` from its stored dict (see the module docstring)."""
    value: _T = _adapter(cls).validate_python(data)
    return value


def _renamed(data: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    return {renames.get(key, key): value for key, value in data.items()}


class Stored:
    """Mixin for a dataclass stored as JSON: ``to_dict``/``from_dict`` via :func:`dump`
    and :func:`load`, honouring the ``_json_extra``/``_json_renames`` hooks."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return dump(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return load(cls, data)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)
        renames: Mapping[str, str] = getattr(cls, "_json_renames", {})
        extra: Callable[[Any], dict[str, Any]] | None = getattr(cls, "_json_extra", None)
        if not renames and extra is None:
            return schema

        def serialize(obj: Any, fields: core_schema.SerializerFunctionWrapHandler) -> Any:
            data = _renamed(fields(obj), renames)
            return {**data, **obj._json_extra()} if extra is not None else data

        schema = cast(
            CoreSchema,
            {**schema, "serialization": core_schema.wrap_serializer_function_ser_schema(serialize)},
        )
        if not renames:
            return schema
        back = {stored: name for name, stored in renames.items()}

        def rename_keys(value: Any) -> Any:
            return _renamed(value, back) if isinstance(value, Mapping) else value

        return core_schema.no_info_before_validator_function(rename_keys, schema)
