"""changetrail.history - reading history back in Python, over pymongo.

The consumer stores history in MongoDB (docs/storage.md, stored form v2:
native BSON). This module reads it the way the C history library
(history/*.c, the CLI's `log`, `show --at`, `context`, `actor`, `blame`)
does, and returns plain dicts:

    from changetrail import history
    h = history.History("mongodb://localhost:27017/", database="changetrail")
    for r in h.log("shop.product", "7"):          # newest first
        print(r["version"], r["ts"], r["actor"], r["diff"])
    h.as_of("shop.product", "7", datetime(2024, 5, 1, tzinfo=timezone.utc))["doc"]
    h.revert("shop.product", "7", version=3)      # emits the old state as an update

A record dict: id, collection, document_id, version, op, label, ts (an aware
datetime, exact to the microsecond), actor, context_id, source, seq, parent,
relation, changes (the stored elementary changes) and diff (the same changes
in dictdiffer's form: [("change", "qty", (10, 7)), ("add", "", [("name",
"A")]), ...], which dictdiffer.patch()/revert() accept).

Module-level functions (log, as_of, ...) use the History given to
set_default() (or made from CHANGETRAIL_MONGODB_URI / the Django setting
CHANGETRAIL["MONGODB"] = {"uri": ..., "database": ...}).

State at a version is rebuilt like history/rebuild.c: forward from version 1
(or from a checkpoint written by `changetrail prune`) applying each record's
changes, or backward from the stored state when that touches fewer records;
a deleted document is shown as it was before its delete. Unlike the C
library it does not re-check each record's hash (`changetrail verify` does).
"""

from __future__ import annotations

import copy
import datetime
import os
import threading
from typing import Any, Dict, Iterable, List, Optional, Union

__all__ = ["History", "HistoryError", "set_default", "get_default", "log", "as_of", "version", "context",
           "actor", "blame", "revert", "to_dictdiffer", "apply_changes", "revert_changes", "ts_us_of"]

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
KEEPS_DOC = ("event", "relation_add", "relation_remove")
Time = Union[datetime.datetime, datetime.date, str, int, float]


class HistoryError(Exception):
    """History that cannot be read as asked: no such version, changes that do
    not apply to the document they were computed from, ..."""


# ------------------------------------------------------------------ times

def ts_us_of(t: Time) -> int:
    """Microseconds since the Unix epoch of `t`: an aware or naive (= UTC)
    datetime, a date (its midnight, UTC), an RFC 3339 / ISO 8601 string, or a
    number of seconds since the epoch."""
    if isinstance(t, str):
        s = t.strip().replace("Z", "+00:00").replace("z", "+00:00")
        t = datetime.datetime.fromisoformat(s)
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return int(round(t * 1_000_000))
    if isinstance(t, datetime.date) and not isinstance(t, datetime.datetime):
        t = datetime.datetime(t.year, t.month, t.day)
    if not isinstance(t, datetime.datetime):
        raise TypeError(f"not a time: {t!r}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _dt(us: Optional[int]) -> Optional[datetime.datetime]:
    return None if us is None else EPOCH + datetime.timedelta(microseconds=int(us))


def _rec_us(r: Dict[str, Any]) -> int:
    if r.get("ts_us") is not None:
        return int(r["ts_us"])
    ts = r.get("ts")
    return ts_us_of(ts) if ts is not None else 0


# ------------------------------------------------------------------ changes

def _dotted(path: List[Any]) -> Union[str, List[Any]]:
    """dictdiffer's spelling of a path (docs/diff.md): "" for the root, "a.b"
    when every component is a non-empty string without ".", else a list."""
    if not path:
        return ""
    if all(isinstance(c, str) and c and "." not in c for c in path):
        return ".".join(path)
    return list(path)


def to_dictdiffer(changes: Iterable[Dict[str, Any]]) -> List[tuple]:
    """The stored elementary changes in dictdiffer's form: consecutive
    add/remove items of one parent path form one entry, as the consumer
    computed them (storage.md, "The hash chain and the JSON form")."""
    out: List[tuple] = []
    for c in changes:
        path = [int(x) if isinstance(x, int) else x for x in c["path"]]
        if c["op"] == "change":
            out.append(("change", _dotted(path), (c.get("from"), c.get("to"))))
            continue
        parent, key = path[:-1], path[-1]
        if out and len(out[-1]) == 4 and out[-1][0] == c["op"] and out[-1][3] == parent:
            out[-1][2].append((key, c.get("value")))
        else:
            out.append((c["op"], _dotted(parent), [(key, c.get("value"))], parent))
    return [e if len(e) == 3 else (e[0], e[1], e[2]) for e in out]


def _walk(doc: Any, path: List[Any], what: str) -> Any:
    node = doc
    for i, k in enumerate(path):
        try:
            if isinstance(node, dict):
                node = node[k]
            elif isinstance(node, list) and isinstance(k, int):
                node = node[k]
            else:
                raise KeyError(k)
        except (KeyError, IndexError):
            raise HistoryError(f"{what}: component {i} of {path!r} is not in the document") from None
    return node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _apply(doc: Dict[str, Any], changes: List[Dict[str, Any]], reverse: bool) -> Dict[str, Any]:
    """ct_patch / ct_revert on the stored form: every step checks that the
    document is in the state the change was computed from."""
    cur = copy.deepcopy(doc)
    seq = list(reversed(changes)) if reverse else list(changes)
    who = "revert" if reverse else "patch"
    for c in seq:
        path = list(c["path"])
        op = c["op"]
        if op == "change":
            old, new = (c.get("to"), c.get("from")) if reverse else (c.get("from"), c.get("to"))
            if not path:
                if not _same(cur, old):
                    raise HistoryError(f"{who}: the root differs from the document")
                cur = copy.deepcopy(new)
                continue
            parent = _walk(cur, path[:-1], who)
            have = _walk(cur, path, who)
            if not _same(have, old):
                raise HistoryError(f"{who}: value at {path!r} differs from the document")
            parent[path[-1]] = copy.deepcopy(new)
            continue
        add = (op == "add") != reverse
        node = _walk(cur, path[:-1], who)
        key = path[-1]
        if isinstance(node, dict):
            if add:
                if key in node:
                    raise HistoryError(f"{who}: key {path!r} already present")
                node[key] = copy.deepcopy(c.get("value"))
            else:
                if key not in node or not _same(node[key], c.get("value")):
                    raise HistoryError(f"{who}: removed value at {path!r} differs from the document")
                del node[key]
        elif isinstance(node, list) and isinstance(key, int):
            if add:
                if key > len(node):
                    raise HistoryError(f"{who}: insert at {path!r} past the end")
                node.insert(key, copy.deepcopy(c.get("value")))
            else:
                if key >= len(node) or not _same(node[key], c.get("value")):
                    raise HistoryError(f"{who}: removed item at {path!r} differs from the document")
                del node[key]
        else:
            raise HistoryError(f"{who}: {path!r}: the node is not an object or array")
    return cur


def apply_changes(doc: Dict[str, Any], changes: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The document after the stored changes (ct_patch), on a copy."""
    return _apply(doc, changes, False)


def revert_changes(doc: Dict[str, Any], changes: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The document before the stored changes (ct_revert), on a copy."""
    return _apply(doc, changes, True)


# ------------------------------------------------------------------ records

def _record(r: Dict[str, Any]) -> Dict[str, Any]:
    changes = [dict(c) for c in (r.get("changes") or [])]
    out = {
        "id": r["_id"],
        "collection": r.get("collection"),
        "document_id": r.get("document_id"),
        "version": int(r.get("version") or 0),
        "op": r.get("op"),
        "label": r.get("label"),
        "ts": _dt(_rec_us(r)),
        "ts_us": _rec_us(r),
        "actor": r.get("actor"),
        "context_id": r.get("context_id"),
        "source": r.get("source"),
        "seq": r.get("seq"),
        "parent": r.get("parent"),
        "relation": r.get("relation"),
        "changes": changes,
        "diff": to_dictdiffer(changes),
    }
    if r.get("op") == "checkpoint":
        out.update(doc=r.get("doc"), deleted=bool(r.get("deleted")), pruned_before=r.get("pruned_before"))
    return out


class History:
    """History of one changetrail database. `db`: a pymongo Database, a
    MongoClient (with `database`), or a MongoDB URI."""

    def __init__(self, db: Any = None, database: str = "changetrail"):
        if db is None:
            db = os.environ.get("CHANGETRAIL_MONGODB_URI") or "mongodb://localhost:27017/"
        if isinstance(db, str):
            from pymongo import MongoClient
            self._client = MongoClient(db)
            db = self._client[database]
        else:
            from pymongo import MongoClient
            if isinstance(db, MongoClient):
                db = db[database]
        self.db = db

    # -------------------------------------------------------------- reads
    def _records(self, collection: str, document_id: Any) -> List[Dict[str, Any]]:
        # equality on (collection, document_id): the doc_version index on every server
        cur = self.db.history.find({"collection": collection, "document_id": str(document_id)})
        return sorted(cur, key=lambda r: int(r.get("version") or 0))

    def _state(self, collection: str, document_id: Any) -> Optional[Dict[str, Any]]:
        return self.db.state.find_one({"_id": f"{collection}/{document_id}"})

    def log(self, collection: str, document_id: Any, since: Optional[Time] = None,
            until: Optional[Time] = None, include_children: bool = False) -> List[Dict[str, Any]]:
        """The document's records, newest first (since inclusive, until
        exclusive); with include_children, also those of documents whose
        events named it as their parent."""
        recs = self._records(collection, document_id)
        if include_children:
            recs += list(self.db.history.find({"parent.collection": collection,
                                               "parent.document_id": str(document_id)}))
        lo = ts_us_of(since) if since is not None else None
        hi = ts_us_of(until) if until is not None else None
        recs = [r for r in recs if (lo is None or _rec_us(r) >= lo) and (hi is None or _rec_us(r) < hi)]
        recs.sort(key=lambda r: (_rec_us(r), int(r.get("version") or 0)), reverse=True)
        return [_record(r) for r in recs]

    def version(self, collection: str, document_id: Any, version: Optional[int] = None) -> Dict[str, Any]:
        """The document at `version` (default the latest): {collection,
        document_id, version, ts, actor, context_id, deleted, doc, hash}.
        Raises HistoryError when the version is not in the history."""
        records = self._records(collection, document_id)
        if not records:
            raise HistoryError(f"{collection}/{document_id} has no history")
        if version is None:
            version = int(records[-1]["version"])
        return self._rebuild(records, self._state(collection, document_id), int(version))

    def as_of(self, collection: str, document_id: Any, t: Time) -> Optional[Dict[str, Any]]:
        """The document as it was at time `t` (the newest version written at
        or before it), as version() gives it; None when it did not exist yet
        (check the result's "deleted" for a document deleted by then);
        HistoryError when that time is before a prune checkpoint."""
        at = ts_us_of(t)
        records = self._records(collection, document_id)
        best = 0
        for r in records:
            if _rec_us(r) <= at and int(r["version"]) > best:
                best = int(r["version"])
        if best == 0:
            if records and records[0].get("op") == "checkpoint" and _rec_us(records[0]) > at:
                raise HistoryError(f"{collection}/{document_id} has no version at or before {t} "
                                   "(older history was pruned)")
            return None
        return self._rebuild(records, self._state(collection, document_id), best)

    def _rebuild(self, records: List[Dict[str, Any]], state: Optional[Dict[str, Any]],
                 version: int) -> Dict[str, Any]:
        first = records[0]
        if first.get("op") != "checkpoint" and int(first["version"]) != 1:
            raise HistoryError(f"history starts at version {first['version']} without a checkpoint")
        base_i, target_i = 0, None
        for i, r in enumerate(records):
            if r.get("op") == "checkpoint" and int(r["version"]) <= version:
                base_i = i
            if int(r["version"]) == version:
                target_i = i
        if target_i is None or version < int(first["version"]):
            raise HistoryError(f"version {version} is not in the history "
                               f"({'pruned' if version < int(first['version']) else 'no such version'})")
        n, last = len(records), records[-1]
        backward = (state is not None and int(state.get("version") or 0) == int(last["version"])
                    and state.get("hash") == last.get("hash") and isinstance(state.get("doc"), dict)
                    and n - 1 - target_i < target_i - base_i)
        if backward:
            cur = {} if state.get("deleted") else copy.deepcopy(state["doc"])
            for i in range(n - 1, target_i, -1):
                cur = self._step(records[i], cur, forward=False)
        else:
            b = records[base_i]
            ck = b.get("op") == "checkpoint"
            if ck and not isinstance(b.get("doc"), dict):
                raise HistoryError(f"checkpoint {b['_id']} has no document")
            cur = {} if not ck or b.get("deleted") else copy.deepcopy(b["doc"])
            for i in range(base_i + 1 if ck else base_i, target_i + 1):
                cur = self._step(records[i], cur, forward=True)
        deleted, shown = False, None
        for i in range(target_i, -1, -1):
            r = records[i]
            if r.get("op") in KEEPS_DOC:
                continue
            if r.get("op") == "checkpoint":
                deleted = bool(r.get("deleted"))
                if deleted:
                    shown = copy.deepcopy(r.get("doc"))
            elif r.get("op") == "delete":
                deleted = True
                shown = revert_changes({}, r.get("changes") or [])
            break
        t = records[target_i]
        return {"collection": t.get("collection"), "document_id": t.get("document_id"), "version": version,
                "ts": _dt(_rec_us(t)), "actor": t.get("actor"), "context_id": t.get("context_id"),
                "op": t.get("op"), "deleted": deleted, "hash": t.get("hash"),
                "doc": shown if shown is not None else cur}

    @staticmethod
    def _step(r: Dict[str, Any], cur: Dict[str, Any], forward: bool) -> Dict[str, Any]:
        if r.get("op") in KEEPS_DOC:
            return cur
        changes = r.get("changes") or []
        # a delete of a document the history never held removes nothing that is there
        if forward and r.get("op") == "delete" and not cur:
            return cur
        try:
            return apply_changes(cur, changes) if forward else revert_changes(cur, changes)
        except HistoryError as e:
            raise HistoryError(f"version {r.get('version')}: {e}") from None

    def context(self, context_id: str) -> Dict[str, Any]:
        """A context (changeset): {id, actor, complete, metadata, parent_id,
        first_ts, last_ts, collections, event_count, records (oldest first)}."""
        c = self.db.contexts.find_one({"_id": context_id})
        recs = sorted(self.db.history.find({"context_id": context_id}),
                      key=lambda r: (_rec_us(r), r.get("collection") or "", int(r.get("version") or 0)))
        if c is None and not recs:
            raise HistoryError(f"no context {context_id}")
        c = c or {}
        md = c.get("metadata") if c.get("metadata") is not None else c.get("metadata_seen")

        def us(key):
            return c.get(key + "_us") if c.get(key + "_us") is not None else (
                ts_us_of(c[key]) if c.get(key) is not None else None)
        out = {"id": context_id, "actor": c.get("actor"), "complete": bool(c.get("complete")),
               "metadata": dict(md or {}), "parent_id": c.get("parent_id"),
               "first_ts": _dt(us("first_ts")), "last_ts": _dt(us("last_ts")),
               "collections": list(c.get("collections") or []), "event_count": int(c.get("event_count") or 0),
               "records": [_record(r) for r in recs]}
        if out["actor"] is None and recs:
            out["actor"] = recs[0].get("actor")
        if not c and recs:
            out["first_ts"], out["last_ts"] = _dt(_rec_us(recs[0])), _dt(_rec_us(recs[-1]))
            for r in recs:
                if r.get("collection") not in out["collections"]:
                    out["collections"].append(r.get("collection"))
        return out

    def actor(self, name: str, since: Optional[Time] = None, until: Optional[Time] = None,
              limit: int = 0) -> List[Dict[str, Any]]:
        """What `name` did: its records, newest first, since (inclusive) /
        until (exclusive); `ts` ranges are served by the (actor, ts) index."""
        f: Dict[str, Any] = {"actor": name}
        rng: Dict[str, Any] = {}
        if since is not None:
            rng["$gte"] = _dt(ts_us_of(since) // 1000 * 1000)
        if until is not None:
            rng["$lte"] = _dt(ts_us_of(until) // 1000 * 1000)
        if rng:
            f["ts"] = rng
        recs = [r for r in self.db.history.find(f)
                if (since is None or _rec_us(r) >= ts_us_of(since)) and
                (until is None or _rec_us(r) < ts_us_of(until))]
        recs.sort(key=lambda r: (_rec_us(r), int(r.get("version") or 0)), reverse=True)
        if limit:
            recs = recs[:limit]
        return [_record(r) for r in recs]

    def blame(self, collection: str, document_id: Any) -> List[Dict[str, Any]]:
        """For every leaf of the current document (shown as it was before its
        delete if deleted): {path, value, version, ts, actor, op, context_id,
        record_id} of the last record that wrote it (history/blame.c)."""
        records = self._records(collection, document_id)
        if not records:
            raise HistoryError(f"{collection}/{document_id} has no history")
        st = self._rebuild(records, self._state(collection, document_id), int(records[-1]["version"]))
        leaves: List[tuple] = []

        def walk(v, path):
            if isinstance(v, dict) and v:
                for k, m in v.items():
                    walk(m, path + [k])
            elif isinstance(v, list) and v:
                for i, m in enumerate(v):
                    walk(m, path + [i])
            else:
                leaves.append((path, v))
        if isinstance(st["doc"], dict):
            walk(st["doc"], [])
        below = len(records)
        if st["deleted"]:
            for i in range(len(records) - 1, -1, -1):
                op = records[i].get("op")
                if op == "delete":
                    below = i
                    break
                if op not in KEEPS_DOC:
                    break

        def touches(r, leaf):
            for c in r.get("changes") or []:
                p = list(c["path"])
                if c["op"] == "change":
                    if leaf[:len(p)] == p:
                        return True
                elif len(leaf) >= len(p) and leaf[:len(p)] == p:
                    return True
            return False
        out = []
        for path, value in leaves:
            by = None
            for i in range(below - 1, -1, -1):
                r = records[i]
                if r.get("op") == "checkpoint" or touches(r, path):
                    by = r
                    break
            out.append({"path": path, "value": value, "version": int(by["version"]) if by else None,
                        "ts": _dt(_rec_us(by)) if by else None, "actor": by.get("actor") if by else None,
                        "op": by.get("op") if by else None, "context_id": by.get("context_id") if by else None,
                        "record_id": by["_id"] if by else None})
        return out

    def revert(self, collection: str, document_id: Any, version: Optional[int] = None,
               since: Optional[Time] = None, emit: bool = True, producer: Any = None,
               label: Optional[str] = None) -> Dict[str, Any]:
        """The document as it was at `version` (or just before `since`, like
        mongoengine-history's revert(doc, since=...)). With emit=True, sends it
        as an update through `producer` (default: changetrail's default
        producer), with the current document as `before`, so the revert is
        history too; returns the reverted document."""
        if (version is None) == (since is None):
            raise ValueError("revert: give version= or since=")
        if since is not None:
            records = self._records(collection, document_id)
            lo = ts_us_of(since)
            older = [int(r["version"]) for r in records if _rec_us(r) < lo]
            if not older:
                raise HistoryError(f"{collection}/{document_id} has no version before {since}")
            version = max(older)
        target = self.version(collection, document_id, version)
        doc = copy.deepcopy(target["doc"])
        if emit:
            from . import get_default_producer, json_default
            p = producer if producer is not None else get_default_producer()
            now = self.version(collection, document_id)
            p.emit_update(collection, document_id, _jsonable(doc, json_default),
                          before=None if now["deleted"] else _jsonable(now["doc"], json_default),
                          label=label)
        return doc


def _jsonable(v: Any, default) -> Any:
    """BSON values (datetimes, ObjectIds, Int64) as JSON can carry them."""
    if isinstance(v, dict):
        return {k: _jsonable(x, default) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x, default) for x in v]
    if v is None or isinstance(v, (str, bool, float)):
        return v
    if isinstance(v, int):
        return int(v)
    try:
        return default(v)
    except TypeError:
        return str(v)


# ------------------------------------------------------------ module level

_default: Optional[History] = None
_default_lock = threading.Lock()


def set_default(h: Union[History, Any, None], database: str = "changetrail") -> Optional[History]:
    """Sets the History the module functions use (a History, a pymongo
    Database/MongoClient or a URI); None forgets it."""
    global _default
    with _default_lock:
        _default = h if (h is None or isinstance(h, History)) else History(h, database)
        return _default


def get_default() -> History:
    global _default
    with _default_lock:
        if _default is None:
            uri, database = os.environ.get("CHANGETRAIL_MONGODB_URI"), "changetrail"
            try:
                from django.conf import settings
                if settings.configured:
                    m = getattr(settings, "CHANGETRAIL", {}).get("MONGODB") or {}
                    uri, database = m.get("uri", uri), m.get("database", database)
            except ImportError:
                pass
            _default = History(uri, database)
        return _default


def log(collection: str, document_id: Any, **kw) -> List[Dict[str, Any]]:
    return get_default().log(collection, document_id, **kw)


def as_of(collection: str, document_id: Any, t: Time) -> Optional[Dict[str, Any]]:
    return get_default().as_of(collection, document_id, t)


def version(collection: str, document_id: Any, version: Optional[int] = None) -> Dict[str, Any]:
    return get_default().version(collection, document_id, version)


def context(context_id: str) -> Dict[str, Any]:
    return get_default().context(context_id)


def actor(name: str, since: Optional[Time] = None, until: Optional[Time] = None, **kw) -> List[Dict[str, Any]]:
    return get_default().actor(name, since, until, **kw)


def blame(collection: str, document_id: Any) -> List[Dict[str, Any]]:
    return get_default().blame(collection, document_id)


def revert(collection: str, document_id: Any, **kw) -> Dict[str, Any]:
    return get_default().revert(collection, document_id, **kw)
