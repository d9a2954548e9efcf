#!/usr/bin/env python3
"""Checks the JSON Schemas in schemas/ against their examples, and the C
event validator against the event schema.

  schemas/examples/{valid,invalid}/*.json                 change-event.v1
  schemas/examples/history-record/{valid,invalid}/*.json  history-record.v1
  schemas/examples/context/{valid,invalid}/*.json         context.v1

An example is valid for Python when it is well-formed JSON in the sense of
the consumer's parser (jansson, strict: UTF-8, no duplicate keys, no NaN, no
U+0000, integers within int64, finite reals) and passes Draft 2020-12
validation with format checking plus the schemas' x-maxUtf8Bytes keyword.
Every event example also goes through tests/tools/ct_validate_event, which
must give the same verdict; for invalid ones its message must also say what
EXPECTED below says, so a file cannot fail for a reason other than its name.
Bounds of ct_limits (depth, sizes) are not in the schema; test_event.c covers
them.

Usage: schema_examples_test.py --schemas DIR --validator PATH [-v]
Exit 0 when everything agrees, 1 otherwise, 77 (skip) without jsonschema.
"""
import argparse
import json
import math
import os
import subprocess
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator, ValidationError
except ImportError:
    # As diff_vectors_current: ctest shows a skip, not a pass, when the
    # interpreter lacks tests/requirements.txt (scripts/test.sh provides it).
    print("schema examples: skipped, jsonschema is not installed for %s" % sys.executable)
    sys.exit(77)

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

# Invalid event example -> (C error name, text its message must contain).
P, S = "malformed input", "schema violation"
EXPECTED = {
    "missing_schema": (S, "field 'schema': required"),
    "missing_event_id": (S, "field 'event_id': required"),
    "missing_ts": (S, "field 'ts': required"),
    "missing_source": (S, "field 'source': required"),
    "missing_collection": (S, "field 'collection': required"),
    "missing_document_id": (S, "field 'document_id': required"),
    "missing_op": (S, "field 'op': required"),
    "schema_wrong_version": (S, "field 'schema': must be \"changetrail.event.v1\""),
    "op_unknown": (S, "field 'op': must be one of insert, update, delete"),
    "op_uppercase": (S, "field 'op': must be one of"),
    "op_not_string": (S, "field 'op': must be one of"),
    "event_id_not_uuid": (S, "field 'event_id': not a UUIDv7"),
    "event_id_uuid_v4": (S, "field 'event_id': not a UUIDv7"),
    "event_id_uppercase": (S, "field 'event_id': not a UUIDv7"),
    "event_id_bad_variant": (S, "field 'event_id': not a UUIDv7"),
    "event_id_no_dashes": (S, "field 'event_id': not a UUIDv7"),
    "event_id_braces": (S, "field 'event_id': not a UUIDv7"),
    "ts_no_fraction": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_milliseconds": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_nanoseconds": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_offset_instead_of_z": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_lowercase_z": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_lowercase_t": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_space_separator": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_feb_30": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_feb_29_not_leap_year": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_feb_29_1900_not_leap": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_april_31": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_hour_24": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_leap_second": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_month_13": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_trailing_newline": (S, "field 'ts': not a canonical RFC 3339"),
    "ts_number": (S, "field 'ts': not a canonical RFC 3339"),
    "source_empty": (S, "field 'source': must be 1 to 255 bytes"),
    "collection_empty": (S, "field 'collection': must be 1 to 255 bytes"),
    "collection_with_slash": (S, "field 'collection': must not contain '/'"),
    "collection_number": (S, "field 'collection': must be a string"),
    "collection_256_chars": (S, "field 'collection': must be 1 to 255 bytes long (is 256)"),
    "collection_256_utf8_bytes": (S, "field 'collection': must be 1 to 255 bytes long (is 256)"),
    "document_id_empty": (S, "field 'document_id': must be 1 to 1024 bytes"),
    "document_id_1025_chars": (S, "field 'document_id': must be 1 to 1024 bytes"),
    "document_id_number": (S, "field 'document_id': must be a string"),
    "document_id_nul_escape": (P, "json: \\u0000 is not allowed"),
    "extra_top_level_property": (S, "field 'extra': not allowed"),
    "misspelled_property": (S, "field 'colection': not allowed"),
    "insert_without_after": (S, "field 'after': required when op is 'insert'"),
    "update_without_after": (S, "field 'after': required when op is 'update'"),
    "snapshot_without_after": (S, "field 'after': required when op is 'snapshot'"),
    "delete_with_after": (S, "field 'after': not allowed when op is 'delete'"),
    "event_without_label": (S, "field 'label': required when op is 'event'"),
    "relation_add_without_relation": (S, "field 'relation': required when op is 'relation_add'"),
    "relation_remove_without_relation": (S, "field 'relation': required when op is 'relation_remove'"),
    "context_begin_without_context": (S, "field 'context': required when op is 'context_begin'"),
    "context_end_without_context": (S, "field 'context': required when op is 'context_end'"),
    "after_array": (S, "field 'after': must be an object"),
    "after_null": (S, "field 'after': must be an object"),
    "before_string": (S, "field 'before': must be an object"),
    "context_missing_id": (S, "field 'context.id': required"),
    "context_id_not_uuid": (S, "field 'context.id': not a UUID"),
    "context_id_nil_uuid": (S, "field 'context.id': not a UUID"),
    "context_parent_id_uppercase": (S, "field 'context.parent_id': not a UUID"),
    "context_extra_property": (S, "field 'context.user': not allowed"),
    "context_metadata_array": (S, "field 'context.metadata': must be an object"),
    "context_not_object": (S, "field 'context': must be an object"),
    "parent_missing_document_id": (S, "field 'parent.document_id': required"),
    "parent_collection_with_slash": (S, "field 'parent.collection': must not contain '/'"),
    "parent_extra_property": (S, "field 'parent.version': not allowed"),
    "relation_missing_name": (S, "field 'relation.name': required"),
    "relation_extra_property": (S, "field 'relation.position': not allowed"),
    "relation_document_id_empty": (S, "field 'relation.document_id': must be 1 to 1024 bytes"),
    "seq_negative": (S, "field 'seq': must be an integer from 0 to 9007199254740991"),
    "seq_fraction": (S, "field 'seq': must be an integer"),
    "seq_string": (S, "field 'seq': must be an integer"),
    "seq_above_2_pow_53": (S, "field 'seq': must be an integer"),
    "seq_int64_overflow": (P, "json: number out of range"),
    "label_empty": (S, "field 'label': must be 1 to 255 bytes"),
    "label_null": (S, "field 'label': must be a string"),
    "label_256_chars": (S, "field 'label': must be 1 to 255 bytes"),
    "actor_number": (S, "field 'actor': must be a string"),
    "actor_1025_chars": (S, "field 'actor': must be 1 to 1024 bytes"),
    "top_level_array": (S, "event: must be a JSON object"),
    "top_level_string": (P, "json: '[' or '{' expected"),
    "empty_file": (P, "json: '[' or '{' expected near end of file"),
    "not_json_truncated": (P, "json: "),
    "not_json_trailing_comma": (P, "json: "),
    "not_json_single_quotes": (P, "json: "),
    "duplicate_top_level_key": (P, "json: duplicate object key near '\"op\"'"),
    "duplicate_key_in_after": (P, "json: duplicate object key near '\"x\"'"),
    "invalid_utf8_in_after": (P, "json: invalid UTF-8"),
    "overlong_utf8_in_collection": (P, "json: invalid UTF-8"),
    "lone_surrogate_in_label": (P, "json: "),
    "nan_in_after": (P, "json: "),
    "nul_escape_in_after": (P, "json: \\u0000 is not allowed"),
    "raw_nul_byte_after_number": (P, "json: NUL byte at offset"),
}

SHARED_DEFS = ("name", "collection", "id", "uuid7", "uuid", "timestamp")


class NotWellFormed(Exception):
    pass


def _reject_dups(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise NotWellFormed("duplicate key %r" % k)
        obj[k] = v
    return obj


def _parse_int(s):
    v = int(s)
    if not INT64_MIN <= v <= INT64_MAX:
        raise NotWellFormed("integer out of int64 range")
    return v


def _parse_float(s):
    v = float(s)
    if not math.isfinite(v):
        raise NotWellFormed("real overflows a double")
    return v


def _parse_constant(s):
    raise NotWellFormed("%s is not JSON" % s)


def _check_strings(v):
    # Iterative: the examples are shallow, but nothing here should recurse on input.
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            strings = list(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            strings = []
            stack.extend(x)
        elif isinstance(x, str):
            strings = [x]
        else:
            continue
        for s in strings:
            if "\0" in s:
                raise NotWellFormed("U+0000 in a string")
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                raise NotWellFormed("lone surrogate in a string")


def strict_load(data):
    """What jansson with JSON_REJECT_DUPLICATES accepts, as Python values."""
    try:
        text = data.decode("utf-8")
        v = json.loads(text, object_pairs_hook=_reject_dups, parse_int=_parse_int,
                       parse_float=_parse_float, parse_constant=_parse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise NotWellFormed(str(e).splitlines()[0])
    if not isinstance(v, (dict, list)):
        raise NotWellFormed("top level is not an object or array")
    _check_strings(v)
    return v


def _max_utf8_bytes(validator, limit, instance, schema):
    if validator.is_type(instance, "string") and len(instance.encode("utf-8")) > limit:
        yield ValidationError("%r is longer than %d bytes of UTF-8" % (instance[:20], limit))


ContractValidator = jsonschema.validators.extend(Draft202012Validator, {"x-maxUtf8Bytes": _max_utf8_bytes})


def python_verdict(validator, path):
    """(ok, reason)"""
    with open(path, "rb") as f:
        data = f.read()
    try:
        doc = strict_load(data)
    except NotWellFormed as e:
        return False, "not well-formed: %s" % e
    err = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        return False, "%s: %s" % (where, err.message[:160])
    return True, ""


def examples(d):
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))


def run_c(validator_path, paths):
    out = subprocess.run([os.path.abspath(validator_path)] + paths, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit("validator failed (%d): %s" % (out.returncode, out.stderr.strip()))
    verdicts = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if parts[1] == "ok":
            verdicts[parts[0]] = (True, "", "")
        else:
            verdicts[parts[0]] = (False, parts[2], parts[3])
    return verdicts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemas", required=True)
    ap.add_argument("--validator", required=True)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    passed, failures = 0, []

    def check(ok, what):
        nonlocal passed
        if ok:
            passed += 1
        else:
            failures.append(what)

    schemas = {}
    for name in ("change-event.v1", "history-record.v1", "context.v1"):
        with open(os.path.join(args.schemas, name + ".schema.json"), encoding="utf-8") as f:
            schemas[name] = json.load(f)
        Draft202012Validator.check_schema(schemas[name])

    # The record schemas copy the event schema's definitions; they must not drift.
    ev_defs = schemas["change-event.v1"]["$defs"]
    for name in ("history-record.v1", "context.v1"):
        for k, v in schemas[name]["$defs"].items():
            if k in SHARED_DEFS:
                check(v == ev_defs[k], "%s: $defs/%s differs from change-event.v1's" % (name, k))

    ex = os.path.join(args.schemas, "examples")
    sets = [("change-event.v1", ex), ("history-record.v1", os.path.join(ex, "history-record")),
            ("context.v1", os.path.join(ex, "context"))]
    event_files = {}
    for schema_name, d in sets:
        v = ContractValidator(schemas[schema_name], format_checker=Draft202012Validator.FORMAT_CHECKER)
        for kind in ("valid", "invalid"):
            files = examples(os.path.join(d, kind))
            check(len(files) > 0, "%s: no %s examples in %s" % (schema_name, kind, d))
            for path in files:
                ok, reason = python_verdict(v, path)
                rel = os.path.relpath(path, ex)
                if args.verbose:
                    print("%-60s jsonschema: %s %s" % (rel, "valid" if ok else "invalid", reason))
                check(ok == (kind == "valid"),
                      "%s: jsonschema says %s, expected %s (%s)" % (rel, "valid" if ok else "invalid", kind, reason))
                if schema_name == "change-event.v1":
                    event_files[path] = (kind, ok)

    # The C validator must agree with jsonschema on every event example.
    c = run_c(args.validator, sorted(event_files))
    for path, (kind, py_ok) in sorted(event_files.items()):
        rel = os.path.relpath(path, ex)
        if path not in c:
            check(False, "%s: no verdict from the C validator" % rel)
            continue
        c_ok, code, msg = c[path]
        if args.verbose:
            print("%-60s C: %s" % (rel, "ok" if c_ok else "%s: %s" % (code, msg)))
        check(c_ok == py_ok, "%s: C says %s, jsonschema says %s%s" % (
            rel, "valid" if c_ok else "invalid", "valid" if py_ok else "invalid",
            "" if c_ok else " (C: %s: %s)" % (code, msg)))
        if kind == "invalid":
            name = os.path.splitext(os.path.basename(path))[0]
            exp = EXPECTED.get(name)
            if exp is None:
                check(False, "%s: no entry in EXPECTED (C says %s: %s)" % (rel, code, msg))
            else:
                check(not c_ok and code == exp[0] and exp[1] in msg,
                      "%s: C error %r %r, expected %r containing %r" % (rel, code, msg, exp[0], exp[1]))
            # A DLQ reason: one line, bounded.
            check("\n" not in msg and len(msg) < 400, "%s: C message not one short line: %r" % (rel, msg))

    for f in failures:
        print("FAIL " + f)
    print("schema examples: %d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
