"""``camelCase``: rename object keys to **PascalCase**, as the original does.

Split on ``_``, drop empty parts, uppercase the first character of each part (when it has a
single-character uppercase form), keep the rest as is: ``first_name`` → ``FirstName``,
``id`` → ``Id``, ``userName`` → ``UserName``, ``__x`` → ``X``. ``deep`` recurses like snakeCase.
"""

from __future__ import annotations

from functools import lru_cache

from dataflow_processor.transforms.snake_case import CaseTransform


def _upper_first(part: str) -> str:
    first = part[0].upper()
    return (first if len(first) == 1 else part[0]) + part[1:]


@lru_cache(maxsize=65536)
def to_camel(key: str) -> str:
    return "".join(_upper_first(part) for part in key.split("_") if part)


class CamelCaseTransform(CaseTransform):
    type_name = "camelCase"
    convert = staticmethod(to_camel)
