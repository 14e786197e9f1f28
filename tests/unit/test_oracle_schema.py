"""The published JSON Schemas (spec/schema/*.schema.json, draft 2020-12) against every documented
example: the requests of examples/eval-*.json and of README.md, the responses eval gives them, and
the error line of ``backstop eval --jsonl``.

No JSON Schema library is a dependency of backstop, so the test carries a small validator for the
keywords the schemas use (``type``, ``const``, ``enum``, ``pattern``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``, ``minimum``, ``oneOf``, ``not``, ``$ref`` to
``#/$defs/...``); it refuses a schema with any other keyword, so a schema cannot silently use
one it does not check.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from backstop.cli import _eval_jsonl, evaluate_request
from backstop.jsonio import loads

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {n: json.loads((ROOT / "spec" / "schema" / f"{n}.schema.json").read_text(encoding="utf-8"))
           for n in ("request", "response", "error")}
KNOWN = {"$schema", "$id", "title", "description", "$defs", "$ref", "type", "const", "enum", "pattern",
         "properties", "required", "additionalProperties", "items", "minItems", "minimum", "oneOf", "not"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _type_ok(t: str, v) -> bool:
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def errors(schema: dict, v, root: dict, path: str = "$") -> list[str]:
    unknown = set(schema) - KNOWN
    assert not unknown, f"schema keyword(s) the test validator does not check: {unknown}"
    out: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        out += errors(root["$defs"][ref[len("#/$defs/"):]], v, root, path)
    if "type" in schema and not _type_ok(schema["type"], v):
        return out + [f"{path}: not {schema['type']}: {v!r}"]
    if "const" in schema and v != schema["const"]:
        out.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and v not in schema["enum"]:
        out.append(f"{path}: not one of {schema['enum']}")
    if "pattern" in schema and isinstance(v, str) and not re.search(schema["pattern"], v):
        out.append(f"{path}: {v!r} does not match {schema['pattern']}")
    if "minimum" in schema and isinstance(v, (int, float)) and v < schema["minimum"]:
        out.append(f"{path}: below {schema['minimum']}")
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in v:
                out.append(f"{path}.{k}: required")
        for k, x in v.items():
            if k in props:
                out += errors(props[k], x, root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}.{k}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(schema["additionalProperties"], x, root, f"{path}.{k}")
    if isinstance(v, list):
        if len(v) < schema.get("minItems", 0):
            out.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for n, x in enumerate(v):
                out += errors(schema["items"], x, root, f"{path}[{n}]")
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not errors(s, v, root, path)]
        if len(ok) != 1:
            out.append(f"{path}: matches {len(ok)} of the oneOf alternatives, not exactly 1")
    if "not" in schema and not errors(schema["not"], v, root, path):
        out.append(f"{path}: matches a 'not' schema")
    return out


def valid(name: str, v) -> list[str]:
    return errors(SCHEMAS[name], v, SCHEMAS[name])


def documented_requests() -> list[tuple[str, dict]]:
    out = [(f.name, json.loads(f.read_text(encoding="utf-8"))) for f in sorted((ROOT / "examples").glob("eval-*.json"))]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    i = readme.index("## JSON formats for eval")
    out.append(("README request", json.loads(re.search(r"### Request\s*(?:<!--.*?-->\s*)?```json\n(.*?)```", readme[i:], re.S).group(1))))
    for file, req, _ in re.findall(r"<!-- eval-example: (\S+) -->\s*```json\n(.*?)```\s*```json\n(.*?)```", readme, re.S):
        out.append((f"README {file}", json.loads(req)))
    return out


def test_schemas_declare_draft_2020_12_and_a_version():
    for s in SCHEMAS.values():
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert "/v1/" in s["$id"]


@pytest.mark.parametrize("label,req", documented_requests(), ids=[x[0] for x in documented_requests()])
def test_documented_request_and_its_response_validate(label, req):
    assert valid("request", req) == []
    assert valid("response", evaluate_request(loads(json.dumps(req)))) == []


def test_jsonl_error_line_validates():
    out = io.StringIO()
    _eval_jsonl(io.StringIO('{"operation":"engine"}\n{"positions":[],"mark_prices":{}}\n'), out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert valid("error", line) == []


def test_the_schemas_refuse_what_eval_refuses():
    req = json.loads((ROOT / "examples" / "eval-okx-long.json").read_text(encoding="utf-8"))
    bad = json.loads(json.dumps(req))
    bad["positions"][0]["size"] = 100.0                       # a JSON float
    assert valid("request", bad)
    bad = json.loads(json.dumps(req))
    bad["positions"][0]["lev"] = "20"                         # an unknown key
    assert valid("request", bad)
    resp = evaluate_request(loads(json.dumps(req)))
    del resp["results"][0]["quantities"]["tier"]["rules"]     # a quantity without its rules
    assert valid("response", resp)
