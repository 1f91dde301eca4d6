"""A small YAML writer for plain data (dicts, lists, str, int, float, bool, None).

PyYAML is not a dependency of the light package, and its reader follows YAML 1.1, which reads
`1e+15` (no dot in the mantissa) as a string: numbers here are written so that any YAML reader
reads them back as the same number.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words YAML 1.1 reads as booleans or null: always quoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def scalar(x: Any) -> str:
    """One YAML scalar that reads back as `x` (PyYAML and YAML 1.2 readers alike)."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return ".nan"
        if math.isinf(x):
            return ".inf" if x > 0 else "-.inf"
        text = repr(x)  # shortest text that round-trips
        mantissa, e, exponent = text.partition("e")
        if e:
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            text = f"{mantissa}e{exponent}"
        return text
    if isinstance(x, str):
        # JSON's escapes are YAML's too; characters YAML cannot hold raw (C1 controls, line
        # separators, surrogates, BOM) are escaped, the rest stays as written (YAML has no
        # surrogate pairs, so json's ASCII-only form would not read back).
        return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(x, ensure_ascii=False))
    raise TypeError(f"cannot write {type(x).__name__} as a YAML scalar")


def key(k: Any) -> str:
    """A mapping key: plain when it is a simple identifier, else a quoted string."""
    k = str(k)
    return k if _PLAIN_KEY.match(k) and k.lower() not in _RESERVED else json.dumps(k)


def _flow(x: Any) -> str:
    if isinstance(x, dict):
        return "{" + ", ".join(f"{key(k)}: {_flow(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in x) + "]"
    return scalar(x)


def dump(obj: dict[str, Any], indent: int = 0) -> list[str]:
    """Lines of a block mapping; nested dicts are block mappings, lists are flow sequences."""
    pad = " " * indent
    lines: list[str] = []
    for name, value in obj.items():
        k = key(name)
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{k}:")
            lines += dump(value, indent + 2)
        elif isinstance(value, (list, tuple)) and value and any(isinstance(v, (dict, list))
                                                              for v in value):
            lines.append(f"{pad}{k}:")
            lines += [f"{pad}  - {_flow(v)}" for v in value]
        elif isinstance(value, (list, tuple)) and value and any(isinstance(v, str)
                                                              for v in value):
            lines.append(f"{pad}{k}:")  # strings (warnings) one per line
            lines += [f"{pad}  - {scalar(v)}" for v in value]
        else:
            lines.append(f"{pad}{k}: {_flow(value)}")
    return lines


def comment(text: str) -> str:
    """`# text` on one line."""
    return "# " + " ".join(str(text).split())
