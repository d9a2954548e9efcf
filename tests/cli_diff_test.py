#!/usr/bin/env python3
"""changetrail diff / patch / revert as a user runs them: output, round trips,
and exit status 2 with a clear message on bad input.

usage: cli_diff_test.py PATH/TO/changetrail
"""
import json
import os
import subprocess
import sys
import tempfile

CLI = sys.argv[1]
failures = []
passed = 0


def run(*args, stdin=None):
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(f"{name}: {detail}")


with tempfile.TemporaryDirectory() as d:
    def write(name, text):
        path = os.path.join(d, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    a = {"sku": "A-1", "qty": 10, "tags": ["new"], "price": {"amount": 9.5, "currency": "EUR"},
         "": {"$x": 1, "a.b": [1, 2, 3]}, "caf\u00e9": True}
    b = {"sku": "A-1", "qty": 7, "tags": ["new", "sale"], "price": {"amount": 8.0, "currency": "EUR"},
         "": {"$x": 2, "a.b": [1]}, "caf\u00e9": None, "added": {"x": []}}
    fa = write("a.json", json.dumps(a))
    fb = write("b.json", json.dumps(b))

    rc, out, err = run("diff", fa, fb)
    check("diff exit 0", rc == 0, f"rc={rc} err={err}")
    diff = json.loads(out) if rc == 0 else []
    check("diff is a list of triples", isinstance(diff, list) and diff and all(len(x) == 3 for x in diff), out)
    check("diff has the qty change", ["change", "qty", [10, 7]] in diff, out)
    fd = write("d.json", json.dumps(diff))

    rc, out, err = run("patch", fa, fd)
    check("patch exit 0", rc == 0, err)
    check("patch(a, diff) == b", rc == 0 and json.loads(out) == b, out)
    rc, out, err = run("revert", fb, fd)
    check("revert exit 0", rc == 0, err)
    check("revert(b, diff) == a", rc == 0 and json.loads(out) == a, out)

    # stdin as "-"
    rc, out, err = run("diff", "-", fb, stdin=json.dumps(a))
    check("diff reads stdin", rc == 0 and json.loads(out) == diff, err)

    rc, out, err = run("diff", "--format", "jsonpatch", fa, fb)
    check("jsonpatch exit 0", rc == 0, err)
    ops = json.loads(out) if rc == 0 else []
    check("jsonpatch ops are RFC 6902", all(o.get("op") in ("add", "remove", "replace") and
                                           isinstance(o.get("path"), str) for o in ops), out)
    check("jsonpatch replaces /qty", {"op": "replace", "path": "/qty", "value": 7} in ops, out)

    rc, out, err = run("diff", fa, fa)
    check("identical docs give []", rc == 0 and json.loads(out) == [], out)

    # reals keep their shortest exact form
    rc, out, err = run("diff", write("r1.json", '{"x":0.1}'), write("r2.json", '{"x":0.2}'))
    check("reals printed shortest", rc == 0 and out.strip() == '[["change","x",[0.1,0.2]]]', out)

    # Bad input: exit 2 and a message naming the file and the problem.
    bad = [
        ("missing file", ["diff", os.path.join(d, "nope.json"), fb], "nope.json"),
        ("invalid JSON", ["diff", write("bad.json", '{"a":'), fb], "invalid JSON"),
        ("duplicate key", ["diff", write("dup.json", '{"a":1,"a":2}'), fb], "duplicate"),
        ("unknown format", ["diff", "--format", "yaml", fa, fb], "--format"),
        ("one file", ["diff", fa], "two files"),
        ("unknown option", ["diff", "--bogus", fa, fb], "unknown option"),
        ("patch that does not apply", ["patch", write("x.json", '{"z":1}'),
                                       write("xd.json", '[["change","qty",[10,7]]]')], "qty"),
        ("diff not a list", ["patch", fa, write("nl.json", '{"a":1}')], None),
        ("unknown command", ["frobnicate"], "unknown command"),
    ]
    utf8 = os.path.join(d, "utf8.json")
    with open(utf8, "wb") as f:
        f.write(b'{"a":"\xff\xfe"}')
    bad.append(("invalid UTF-8", ["diff", utf8, fb], "utf8.json"))
    for name, args, needle in bad:
        rc, out, err = run(*args)
        check(f"{name}: exit 2", rc == 2, f"rc={rc} out={out!r} err={err!r}")
        check(f"{name}: nothing on stdout", out == "", out)
        if needle:
            check(f"{name}: message", needle in err, err)

    rc, out, err = run("--help")
    check("--help lists diff", rc == 0 and "diff" in out and "revert" in out, out)
    rc, out, err = run("diff", "--help")
    check("diff --help", rc == 0 and "jsonpatch" in out, out)

for f in failures:
    print("FAIL", f)
print(f"cli diff: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
