#!/usr/bin/env python3
"""gen-diff-vectors.py - test vectors for changetrail's structural diff (common/diff.c).

The expected diffs come from the REAL dictdiffer, so that tests/unit/test_diff.c
checks the C implementation against the library it claims to be compatible with.

    pip: dictdiffer==0.10.0        (pinned in tests/requirements.txt)

usage:
    scripts/gen-diff-vectors.py [--out tests/vectors/diff/vectors.json]
    scripts/gen-diff-vectors.py --check     # regenerate in memory, compare with
                                            # the committed file (exit 1 if they
                                            # differ, 77 if dictdiffer is missing)

Output: a JSON array, one vector per line:
    {"a": doc, "b": doc, "diff": [[action, path, data], ...]}
Python tuples are written as JSON arrays (json.dumps does that), so a change is
["change", path, [old, new]] and an add/remove is [action, path, [[key, value], ...]].

changetrail deviates from dictdiffer in three documented ways (docs/diff.md). The
expected diff of a vector is still produced by dictdiffer's own traversal, with
only its leaf comparison or its path spelling adjusted, and the vector is marked:
    "deviation": ["bool-vs-number" | "int64-precision" | "empty-key-path", ...],
    "dictdiffer_diff": what unmodified dictdiffer returned (when it differs).
  - bool-vs-number: Python has True == 1, so dictdiffer sees no change between
    true and 1 (or false and 0, 0.0); changetrail reports a change.
  - int64-precision: dictdiffer compares two different ints with math.isclose,
    i.e. as doubles, so 2**53+1 -> 2**53 is "no change"; changetrail compares
    integers exactly (a relative tolerance still applies whenever a real is
    involved, as in dictdiffer).
  - empty-key-path: a key "" makes dictdiffer's dotted path ambiguous (['', 'a']
    prints as '.a', [''] as the root path ''); changetrail then uses the list
    path, which is what dictdiffer gives with dot_notation=False.
The generation is seeded and deterministic (same file for the same dictdiffer).
"""
import argparse
import json
import math
import os
import random
import sys

PINNED = "0.10.0"
SEED = 20240617
N_RANDOM = 500
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "vectors", "diff", "vectors.json")

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

KEYS = ["a", "b", "c", "id", "name", "tags", "x", "y", "0", "1", "", "x.y", "a.b.c", ".", "..",
        "$set", "$", "$ref", "~", "/", "~1", "a/b", "ключ", "键", "😀", "é", "e\u0301",
        " ", "null", "true"]
STRINGS = ["", "a", "b", "hello", "Hello", "ünïcödé", "日本語", "😀🎉", "e\u0301", "é",
           "line\nbreak", "tab\t", "quote\"", "back\\slash", "nul\u0000byte", "1", "true", "null"]
SPECIAL_INTS = [0, 1, -1, 2, 42, 2**31 - 1, -2**31, 2**53, 2**53 + 1, -2**53 - 1,
                INT64_MIN, INT64_MAX, INT64_MAX - 1, INT64_MIN + 1, 10**18, 10**18 + 1]
SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.30000000000000004, 1.5, 1e-300, 5e-324,
                  1.7976931348623157e308, -1.7976931348623157e308, 2.0**53, 1e16, 3.14159,
                  9007199254740993.0]


def rand_scalar(r):
    k = r.randrange(10)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k in (2, 3):
        return r.choice(SPECIAL_INTS) if r.random() < 0.3 else r.randint(-1000, 1000)
    if k in (4, 5):
        return r.choice(SPECIAL_FLOATS) if r.random() < 0.3 else round(r.uniform(-1e6, 1e6), r.randrange(0, 8))
    return r.choice(STRINGS)


def rand_value(r, depth):
    k = r.randrange(10)
    if depth <= 0 or k < 5:
        return rand_scalar(r)
    if k < 8:
        return rand_dict(r, depth - 1)
    return [rand_value(r, depth - 1) for _ in range(r.randrange(5))]


def rand_dict(r, depth, min_keys=0):
    d = {}
    for _ in range(r.randrange(min_keys, 6)):
        d[r.choice(KEYS)] = rand_value(r, depth)
    return d


def near(r, v):
    """A number dictdiffer may or may not consider equal to v."""
    if isinstance(v, float) and math.isfinite(v):
        return r.choice([math.nextafter(v, math.inf), math.nextafter(v, -math.inf),
                         v * (1 + 4 * sys.float_info.epsilon), v + 1.0,
                         int(v) if abs(v) < 2**63 and v == int(v) else v])
    if isinstance(v, int):
        return r.choice([float(v) if abs(v) < 2**63 else v,
                         v + 1 if v < INT64_MAX else v - 1,
                         v - 1 if v > INT64_MIN else v + 1])
    return v


def mutate(r, v, depth):
    """A modified copy of v: changed leaves, added/removed keys, grown/shrunk
    lists, type changes, reordered keys."""
    p = r.random()
    if p < 0.08:
        return rand_value(r, depth)                      # replace / type change
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            q = r.random()
            if q < 0.12:
                continue                                 # remove
            out[k] = mutate(r, x, depth - 1) if q < 0.55 else x
        for _ in range(r.choice([0, 0, 0, 1, 2])):
            out[r.choice(KEYS)] = rand_value(r, depth)   # add (or overwrite)
        if r.random() < 0.2:
            items = list(out.items())
            r.shuffle(items)
            out = dict(items)
        return out
    if isinstance(v, list):
        out = [mutate(r, x, depth - 1) if r.random() < 0.4 else x for x in v]
        q = r.random()
        if q < 0.25:
            out.extend(rand_value(r, depth) for _ in range(r.randrange(1, 4)))
        elif q < 0.5 and out:
            del out[r.randrange(len(out)):]
        return out
    if isinstance(v, (int, float)) and not isinstance(v, bool) and r.random() < 0.5:
        return near(r, v)
    if r.random() < 0.6:
        return rand_scalar(r)
    return v


def handwritten():
    """Pairs every run must contain, whatever the random ones do."""
    big = 2**53
    return [
        ({}, {}),
        ({"a": 1}, {"a": 1}),
        ({"a": {"b": [1, 2, {"c": "d"}]}}, {"a": {"b": [1, 2, {"c": "d"}]}}),
        ({}, {"a": {"b": "c"}}),
        ({"a": {"x": 1}}, {"a": {"x": 2}}),
        ({"fruits": []}, {"fruits": ["apple", "mango"]}),
        ({"l": [0, 1, 2, 3, 4]}, {"l": [0, 1]}),
        ({"l": [0, 1]}, {"l": [9, 1, 2, 3, 4]}),
        ({"a": 1, "b": 2, "c": 3}, {"c": 3, "d": 4, "a": 1, "e": 5}),
        ({"x.y": {"z": 1}}, {"x.y": {"z": 2}}),
        ({"a": {"b.c": 1}}, {"a": {"b.c": 1, "d": 2}}),
        ({"": 1}, {"": 2}),
        ({"": {"a": 1}}, {"": {"a": 2}}),
        ({"": {"a": 1}}, {"": {"a": 1, "b": 2}}),
        ({"a": {"": 1}}, {"a": {"": 1, "x": 0}}),
        ({"a": {"": {"": 1}}}, {"a": {"": {"": 2}}}),
        ({"$set": {"$inc": 1}}, {"$set": {"$inc": 2}, "$unset": ""}),
        ({"ключ": "значение", "😀": 1}, {"ключ": "другое", "😀": 2, "键": None}),
        ({"~": 1, "/": 2, "a~1b": 3}, {"~": 4, "/": 5, "a~1b": 6, "~0": 7}),
        ({"n": None}, {"n": 0}),
        ({"n": 0}, {"n": None}),
        ({"n": 1}, {"n": 1.0}),
        ({"n": 0}, {"n": -0.0}),
        ({"n": 0.1 + 0.2}, {"n": 0.3}),
        ({"n": 1.0}, {"n": math.nextafter(1.0, 2.0)}),
        ({"n": 1.0}, {"n": 1.0 + 4 * sys.float_info.epsilon}),
        ({"n": big + 1}, {"n": big}),
        ({"n": big + 1}, {"n": float(big)}),
        ({"n": INT64_MAX}, {"n": INT64_MAX - 1}),
        ({"n": INT64_MIN}, {"n": INT64_MAX}),
        ({"n": INT64_MAX}, {"n": float(INT64_MAX)}),
        ({"n": True}, {"n": 1}),
        ({"n": False}, {"n": 0}),
        ({"n": True}, {"n": 1.0}),
        ({"n": 0.0}, {"n": False}),
        ({"n": True}, {"n": False}),
        ({"n": True}, {"n": 2}),
        ({"t": {"a": 1}}, {"t": [1]}),
        ({"t": [1]}, {"t": {"0": 1}}),
        ({"t": "1"}, {"t": 1}),
        ({"t": ""}, {"t": None}),
        ({"t": {}}, {"t": []}),
        ({"s": "nul\u0000a"}, {"s": "nul\u0000b"}),
        ({"d": [[1, [2, [3]]]]}, {"d": [[1, [2, [4, 5]]]]}),
        ({"d": [{"a": [{"b": 1}]}]}, {"d": [{"a": [{"b": 2}, {}]}]}),
        ({"a": 1}, [1]),
        ([1, 2, 3], [1, 2]),
        ([], [{"a": 1}]),
        (1, 2),
        ("x", "x"),
        (None, {}),
        ({"a": {"b": 1}, "c": 2}, {"c": 3}),
    ]


def ct_are_different_factory(orig, hits):
    """changetrail's leaf comparison, expressed on top of dictdiffer's."""
    def ct_are_different(first, second, tolerance, absolute_tolerance=None):
        theirs = orig(first, second, tolerance, absolute_tolerance)
        fb, sb = isinstance(first, bool), isinstance(second, bool)
        both_num = isinstance(first, (int, float)) and isinstance(second, (int, float))
        if fb != sb and both_num:
            ours, why = True, "bool-vs-number"
        elif type(first) is int and type(second) is int:
            ours, why = first != second, "int64-precision"
        else:
            ours, why = theirs, None
        if ours != theirs:
            hits.add(why)
        return ours
    return ct_are_different


def compute(dictdiffer, a, b):
    vec = {"a": a, "b": b}
    raw = list(dictdiffer.diff(a, b))
    hits = set()
    orig = dictdiffer.are_different
    dictdiffer.are_different = ct_are_different_factory(orig, hits)
    try:
        ours = list(dictdiffer.diff(a, b))
        ours_list = list(dictdiffer.diff(a, b, dot_notation=False))
    finally:
        dictdiffer.are_different = orig
    assert len(ours) == len(ours_list)
    fixed = []
    for (act, path, data), (act2, lpath, data2) in zip(ours, ours_list):
        assert act == act2 and data == data2
        if isinstance(lpath, list) and "" in lpath:
            hits.add("empty-key-path")
            path = lpath
        fixed.append([act, path, data])
    vec["diff"] = fixed
    if hits:
        vec["deviation"] = sorted(hits)
        if json.dumps(raw) != json.dumps(fixed):
            vec["dictdiffer_diff"] = raw
    return vec


def generate(dictdiffer):
    r = random.Random(SEED)
    pairs = handwritten()
    for i in range(N_RANDOM):
        a = rand_dict(r, r.randrange(1, 6), min_keys=2)
        if i % 10 == 0:
            b = json.loads(json.dumps(a))                # identical
        else:
            b = mutate(r, a, 4)
            if not isinstance(b, dict):
                b = {"replaced": b}
        pairs.append((a, b))
    return [compute(dictdiffer, a, b) for a, b in pairs]


def dumps(vectors):
    lines = [json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
             for v in vectors]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="compare with the existing file instead of writing it")
    args = ap.parse_args()
    try:
        import dictdiffer
    except ImportError:
        print("gen-diff-vectors: dictdiffer is not installed (pip install dictdiffer==%s)" % PINNED,
              file=sys.stderr)
        return 77
    if dictdiffer.__version__ != PINNED:
        print("gen-diff-vectors: warning: dictdiffer %s, vectors were made with %s"
              % (dictdiffer.__version__, PINNED), file=sys.stderr)
    text = dumps(generate(dictdiffer))
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            if f.read() != text:
                print("gen-diff-vectors: %s differs from what dictdiffer %s gives now"
                      % (args.out, dictdiffer.__version__), file=sys.stderr)
                return 1
        print("gen-diff-vectors: %s matches dictdiffer %s" % (args.out, dictdiffer.__version__))
        return 0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    n = text.count("\n") - 2
    print("gen-diff-vectors: wrote %d vectors, %d bytes to %s" % (n, len(text.encode()), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
