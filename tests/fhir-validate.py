#!/usr/bin/env python3
"""Validates FHIR resources (NDJSON) against the R4 JSON schema: each
resource against its own type's definition, and the first few against the whole schema (its
top-level oneOf over every resource type is slow: ~30 ms a resource)."""
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
whole = jsonschema.Draft6Validator(schema)
by_type = {}
kinds, errors, messages = {}, 0, []
for n, line in enumerate(open(sys.argv[2]), 1):
    r = json.loads(line)
    t = r.get("resourceType")
    kinds[t] = kinds.get(t, 0) + 1
    if t not in by_type:
        by_type[t] = jsonschema.Draft6Validator({"$ref": "#/definitions/" + t, "definitions": schema["definitions"]})
    errs = list(by_type[t].iter_errors(r))
    if n <= 20:
        errs += list(whole.iter_errors(r))
    if errs:
        errors += 1
        messages += [f"line {n}: {list(e.absolute_path)}: {e.message[:200]}" for e in errs[:3]]
print(json.dumps({"resources": kinds, "errors": errors, "messages": messages[:10]}))
