"""Shared pieces of the spec models: the strict base model, ``SecretRef`` and the field helpers.

The pydantic models are the one declaration of the DataFlow spec. Each field carries what every
other copy is generated from (``scripts/gen_crd.py``, ``scripts/gen_policy.py``,
``scripts/gen_spec_docs.py``): its description, its default, its bounds (``ge``/``le``,
``max_length``) and, under :data:`CRD`, schema keywords only the CRD states (see :func:`crd`).

Every model uses snake_case attributes with the CRD's camelCase names as aliases
(``populate_by_name`` so Python code may use either) and rejects unknown fields, so a typo in a
manifest is an error naming the field path instead of a silently ignored key. Kubernetes types
(resources, affinity, tolerations, nodeSelector) are kept as plain dicts elsewhere.

A field ``x`` that can come from a Kubernetes Secret is declared once, with :func:`secret`; the
model then also has its twin ``xSecretRef`` (added by :class:`SpecModel` when the class is made,
so the two cannot drift apart). Structurally either one may be set; at run time the operator has
resolved the ref into the Secret the processor mounts, and :mod:`dataflow_processor.spec.secrets`
has merged the value into ``x``. :func:`require_one_of` reads the same marker: a field declared
``required`` needs its literal or its ref.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel, to_snake
from pydantic.fields import FieldInfo

Side = Literal["source", "sink"]
BOTH: tuple[Side, ...] = ("source", "sink")

SECRET = "x-secret"
"""``json_schema_extra`` key of a field declared with :func:`secret` (its :class:`SecretField` as a dict)."""
SECRET_TWIN = "x-secret-twin-of"
"""``json_schema_extra`` key of a generated ``…SecretRef`` twin: the attribute name of its literal."""
CRD = "x-crd"
"""``json_schema_extra`` key of schema keywords only the CRD states (``maxLength`` of a secret-capable
value: it bounds what a manifest may spell, not the value a Secret holds)."""
SIDE = "x-side"
"""``json_schema_extra`` key of a field only one side of a connector uses (``source`` or ``sink``)."""


def _extra(info: Any) -> dict[str, Any]:
    extra = getattr(info, "json_schema_extra", None)
    return extra if isinstance(extra, dict) else {}


class SpecModel(BaseModel):
    """Strict base: camelCase aliases, unknown fields rejected, immutable after validation.

    A subclass's :func:`secret` fields get their ``…SecretRef`` twin right after them, before
    pydantic collects the fields.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
    )

    side: ClassVar[Side | None] = None
    """The side of a connector this config is (``None``: not a connector's config, or both)."""
    blocks: ClassVar[dict[str, type[SpecModel]] | None] = None
    """For a ``{type, <type>: {...}}`` model: each type's block model (one optional field each)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = inspect.get_annotations(cls)
        ordered: dict[str, Any] = {}
        for name, annotation in annotations.items():
            ordered[name] = annotation
            info = cls.__dict__.get(name)
            marker = _extra(info).get(SECRET) if isinstance(info, FieldInfo) else None
            if marker is None:
                continue
            assert isinstance(info, FieldInfo)
            twin = twin_name(name)
            ordered[twin] = SecretRef | None
            setattr(cls, twin, Field(
                default=None,
                alias=(info.alias or to_camel(name)) + "SecretRef",
                json_schema_extra={SECRET_TWIN: name},
            ))
        for key, block in (cls.__dict__.get("blocks") or {}).items():
            # typed blocks ({type, <type>: {...}}): one optional field per catalog entry
            ordered[block_attribute(key)] = block | None
            setattr(cls, block_attribute(key), Field(default=None, alias=key))
        if len(ordered) != len(annotations):
            cls.__annotations__ = ordered

    def block(self) -> SpecModel:
        """For a model of typed blocks: the block named by its ``type``."""
        value = getattr(self, block_attribute(getattr(self, "type")))  # noqa: B009  (declared by the subclass)
        assert isinstance(value, SpecModel)
        return value

    def dump(self) -> dict[str, Any]:
        """The model as the CRD would show it (camelCase keys, unset optional fields omitted)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def ref(self, name: str) -> SecretRef | None:
        """The ``…SecretRef`` twin of the :func:`secret` field ``name``."""
        value = getattr(self, twin_name(name))
        assert value is None or isinstance(value, SecretRef)
        return value


class SecretRef(SpecModel):
    """A reference to one key of a Kubernetes Secret; ``namespace`` defaults to the DataFlow's."""

    name: str = Field(description="Secret name.", max_length=253, json_schema_extra={CRD: {"minLength": 1}})
    namespace: str | None = Field(
        default=None,
        description="The DataFlow's own namespace, or omitted: a Secret of another namespace is never read.",
        max_length=63,
    )
    key: str = Field(
        description="Key inside the Secret's data.", max_length=253, json_schema_extra={CRD: {"minLength": 1}}
    )

    @model_validator(mode="after")
    def _non_empty(self) -> SecretRef:
        if not self.name:
            raise ValueError("secret name is required")
        if not self.key:
            raise ValueError("secret key is required")
        return self


@dataclass(frozen=True)
class SecretField:
    """What :func:`secret` declares about a field beyond its description and default."""

    what: str
    """How the ref's description names the value (``the PEM CA bundle``)."""
    required: tuple[Side, ...] = ()
    """The sides on which the literal or its ref must be set (``source``/``sink``; both for a model
    that is not a connector's config)."""
    in_manifest: bool = True
    """False for a *secret target*: only the mounted Secret fills it, the CRD has its ref only."""
    ref_note: str = ""
    """Appended to the ref's description (``The value is a comma-separated list.``)."""


def secret(
    description: str,
    *,
    default: str | None = None,
    max_length: int | None = None,
    max_items: int | None = None,
    item_max_length: int | None = None,
    alias: str | None = None,
    what: str | None = None,
    required: bool | tuple[Side, ...] = False,
    in_manifest: bool = True,
    ref_note: str = "",
    side: Side | None = None,
) -> Any:
    """A field whose value may come from a Kubernetes Secret: the literal, and its ``…SecretRef`` twin.

    ``max_length`` / ``max_items`` / ``item_max_length`` bound what a manifest may spell (CRD only:
    a resolved Secret value is not bounded). ``required=True`` means on both sides.
    """
    bounds: dict[str, Any] = {}
    if max_length is not None:
        bounds["maxLength"] = max_length
    if max_items is not None:
        bounds["maxItems"] = max_items
    if item_max_length is not None:
        bounds["items"] = {"type": "string", "maxLength": item_max_length}
    marker = SecretField(
        what=what or "",
        required=BOTH if required is True else (() if required is False else required),
        in_manifest=in_manifest,
        ref_note=ref_note,
    )
    extra: dict[str, Any] = {SECRET: marker.__dict__, CRD: bounds}
    if side is not None:
        extra[SIDE] = side
    return Field(default=default, alias=alias, description=description, json_schema_extra=extra)


def only(side: Side, **crd_keywords: Any) -> dict[str, Any]:
    """``json_schema_extra`` of a field one side uses (plus any CRD-only keywords)."""
    return {SIDE: side, **({CRD: crd_keywords} if crd_keywords else {})}


def crd(**keywords: Any) -> dict[str, Any]:
    """``json_schema_extra`` carrying schema keywords only the CRD states."""
    return {CRD: keywords}


def block_attribute(type_name: str) -> str:
    """Attribute of the typed block of ``type_name`` (``snakeCase`` → ``snake_case``)."""
    return to_snake(type_name)


def twin_name(name: str) -> str:
    """Attribute of the ``…SecretRef`` twin of ``name`` (``schema_`` → ``schema_secret_ref``)."""
    return name.rstrip("_") + "_secret_ref"


def crd_keywords(info: FieldInfo) -> dict[str, Any]:
    value = _extra(info).get(CRD) or {}
    assert isinstance(value, dict)
    return value


def side_of(info: FieldInfo) -> Side | None:
    value = _extra(info).get(SIDE)
    return value if value in BOTH else None


def secret_marker(info: FieldInfo) -> SecretField | None:
    value = _extra(info).get(SECRET)
    return SecretField(**{**value, "required": tuple(value["required"])}) if isinstance(value, dict) else None


def twin_of(info: FieldInfo) -> str | None:
    """For a generated ``…SecretRef`` twin: the attribute name of its literal."""
    value = _extra(info).get(SECRET_TWIN)
    return value if isinstance(value, str) else None


def secret_fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo, SecretField]]:
    """Each :func:`secret` field of ``model``, in declaration order."""
    for name, info in model.model_fields.items():
        marker = secret_marker(info)
        if marker is not None:
            yield name, info, marker


def required_secrets(model: type[BaseModel], side: Side | None) -> list[str]:
    """Attribute names of the :func:`secret` fields ``model`` requires on ``side`` (None: any side)."""
    return [
        name for name, _info, marker in secret_fields(model)
        if marker.required and (side is None or side in marker.required)
    ]


def require_one_of(model: SpecModel, also: tuple[str, ...] = ()) -> None:
    """Raise unless each required :func:`secret` field (and each of ``also``) or its twin is set.

    The required fields are those declared ``required`` for the model's :attr:`SpecModel.side`;
    the CRD's admission policy states the same rule (``scripts/gen_policy.py`` reads the marker).
    """
    missing = []
    fields = type(model).model_fields
    for name in [*required_secrets(type(model), type(model).side), *also]:
        if getattr(model, name, None) in (None, "", []) and model.ref(name) is None:
            alias = fields[name].alias or name
            missing.append(f"{alias} or {alias}SecretRef is required")
    if missing:
        raise ValueError("; ".join(missing))
