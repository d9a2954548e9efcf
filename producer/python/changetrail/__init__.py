"""changetrail - Python binding of the changetrail producer (libchangetrail).

A thin ctypes layer over the C library: every call goes to the C producer,
which does the work (event encoding, tracked fields, contexts, Kafka
delivery, spool). See docs/producer.md for the semantics.

    import changetrail

    with changetrail.Producer({"source": "shop",
                               "kafka.bootstrap.servers": "127.0.0.1:9092",
                               "track.users.exclude": "password"}) as p:
        with changetrail.context(p, user="alice", url="/orders/7"):
            p.emit_update("orders", "7", {"qty": 3}, before={"qty": 2})

The library is found through the environment variable CHANGETRAIL_LIB (a
path to libchangetrail.so), else ctypes.util.find_library("changetrail").
Errors of the C library are raised as ChangetrailError(code, message).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime
import decimal
import json
import os
import threading
import uuid
from typing import Any, Callable, Iterator, Mapping, Optional, Tuple, Union

__all__ = [
    "ChangetrailError",
    "Producer",
    "Delivery",
    "context",
    "current_context_id",
    "library_version",
    "OP_INSERT", "OP_UPDATE", "OP_DELETE", "OP_SNAPSHOT", "OP_EVENT",
    "OP_RELATION_ADD", "OP_RELATION_REMOVE",
]

# ct_op (include/changetrail/event.h); values are stable.
OP_INSERT, OP_UPDATE, OP_DELETE, OP_SNAPSHOT, OP_EVENT, OP_RELATION_ADD, OP_RELATION_REMOVE = range(7)

# ct_error_code (include/changetrail/common.h)
ERROR_NAMES = {
    0: "CT_OK", -1: "CT_EINVAL", -2: "CT_ENOMEM", -3: "CT_ELIMIT", -4: "CT_EPARSE",
    -5: "CT_ESCHEMA", -6: "CT_ENOTFOUND", -7: "CT_EIO", -8: "CT_EKAFKA", -9: "CT_EMONGO",
    -10: "CT_EQUEUEFULL", -11: "CT_ETIMEDOUT", -12: "CT_ECONFLICT", -13: "CT_EINTERNAL",
    -14: "CT_ECONFIG",
}
globals().update({name: code for code, name in ERROR_NAMES.items()})
__all__ += list(ERROR_NAMES.values())


class ChangetrailError(Exception):
    """A failure reported by libchangetrail: `code` (a negative CT_E* value),
    `name` ("CT_ECONFIG", ...) and `message` (one line, from ct_error)."""

    def __init__(self, code: int, message: str):
        self.code = code
        self.name = ERROR_NAMES.get(code, "CT_E?")
        self.message = message
        super().__init__(f"{self.name}: {message}")


# ------------------------------------------------------------ C structures
# Mirrors of the C structs, member for member, in the headers' order.

class _CtError(ctypes.Structure):  # ct_error
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 512)]


class _CtChange(ctypes.Structure):  # ct_change
    _fields_ = [
        ("op", ctypes.c_int),  # ct_op (an enum: int)
        ("collection", ctypes.c_char_p),
        ("document_id", ctypes.c_char_p),
        ("after_json", ctypes.c_char_p),
        ("after_len", ctypes.c_long),
        ("after", ctypes.c_void_p),  # const json_t *
        ("before_json", ctypes.c_char_p),
        ("before_len", ctypes.c_long),
        ("before", ctypes.c_void_p),  # const json_t *
        ("label", ctypes.c_char_p),
        ("actor", ctypes.c_char_p),
        ("parent_collection", ctypes.c_char_p),
        ("parent_document_id", ctypes.c_char_p),
        ("relation_name", ctypes.c_char_p),
        ("relation_collection", ctypes.c_char_p),
        ("relation_document_id", ctypes.c_char_p),
        ("seq", ctypes.c_int64),
        ("context", ctypes.c_void_p),  # ct_context *
    ]


class _CtProducerStats(ctypes.Structure):  # ct_producer_stats
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "emitted", "delivered", "failed", "unchanged", "queue_full", "rejected",
        "spooled", "spool_replayed", "spool_bytes", "in_flight")]


class _CtDelivery(ctypes.Structure):  # ct_delivery
    _fields_ = [
        ("event_id", ctypes.c_char_p),
        ("collection", ctypes.c_char_p),
        ("document_id", ctypes.c_char_p),
        ("code", ctypes.c_int),
        ("message", ctypes.c_char_p),
        ("partition", ctypes.c_int32),
        ("offset", ctypes.c_int64),
    ]


_DELIVERY_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(_CtDelivery), ctypes.c_void_p)


class Delivery:
    """Outcome of one event, given to Producer(on_delivery=...)."""

    __slots__ = ("event_id", "collection", "document_id", "code", "message", "partition", "offset")

    def __init__(self, d: _CtDelivery):
        dec = lambda b: b.decode("utf-8", "replace") if b is not None else None  # noqa: E731
        self.event_id = dec(d.event_id)
        self.collection = dec(d.collection)
        self.document_id = dec(d.document_id)
        self.code = d.code
        self.message = dec(d.message) or ""
        self.partition = d.partition
        self.offset = d.offset

    @property
    def ok(self) -> bool:
        return self.code == 0

    def __repr__(self) -> str:
        return (f"Delivery({self.collection}/{self.document_id} event={self.event_id} code={self.code} "
                f"partition={self.partition} offset={self.offset})")


# ------------------------------------------------------------ the library

_lib = None
_lib_lock = threading.Lock()


def _find_library() -> str:
    path = os.environ.get("CHANGETRAIL_LIB")
    if path:
        return path
    found = ctypes.util.find_library("changetrail")
    if found:
        return found
    return "libchangetrail.so.0"  # let the dynamic loader try (LD_LIBRARY_PATH, ld.so.cache)


def _load():
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        path = _find_library()
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise ChangetrailError(-7, f"cannot load libchangetrail ({path}): {e}; "
                                   "set CHANGETRAIL_LIB to its path") from None
        P, I, S, E = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_CtError)
        sigs = {
            "ct_version": (S, []),
            "ct_strerror": (S, [I]),
            "ct_producer_config_new": (P, []),
            "ct_producer_config_destroy": (None, [P]),
            "ct_producer_config_set": (I, [P, S, S, E]),
            "ct_producer_config_set_delivery_cb": (None, [P, _DELIVERY_CB, P]),
            "ct_producer_new": (I, [P, ctypes.POINTER(P), E]),
            "ct_producer_flush": (I, [P, I, E]),
            "ct_producer_destroy": (I, [P, I]),
            "ct_producer_stats_get": (None, [P, ctypes.POINTER(_CtProducerStats)]),
            "ct_emit": (I, [P, ctypes.POINTER(_CtChange), ctypes.c_char_p, E]),
            "ct_context_enter": (I, [P, S, E]),
            "ct_context_exit": (I, [P, E]),
            "ct_context_current": (P, []),
            "ct_context_unref": (None, [P]),
            "ct_context_id": (S, [P]),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        _lib = lib
        return lib


def library_version() -> str:
    """Version of the loaded libchangetrail ("MAJOR.MINOR.PATCH")."""
    return _load().ct_version().decode()


def _check(rc: int, err: _CtError) -> int:
    if rc < 0:
        msg = err.message.decode("utf-8", "replace") if err.code else ""
        raise ChangetrailError(rc, msg or _load().ct_strerror(rc).decode())
    return rc


def _b(s: Optional[Any]) -> Optional[bytes]:
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8")


def json_default(o: Any) -> Any:
    """Default serialisation of values json cannot write: datetimes and dates
    as ISO 8601, Decimal and UUID as strings, sets as sorted lists."""
    if isinstance(o, (datetime.datetime, datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, (decimal.Decimal, uuid.UUID)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    raise TypeError(f"changetrail: cannot serialise {type(o).__name__}; pass json_default=")


Document = Union[Mapping[str, Any], str, bytes, None]


class Producer:
    """One libchangetrail producer (ct_producer). Thread-safe, like the C one;
    contexts are per thread.

    config: keys and values of ct_producer_config_set ("source",
      "kafka.bootstrap.servers", "track.<collection>.exclude", ...); values
      are converted with str() (booleans as "true"/"false").
    on_delivery: optional callable(Delivery), called from the producer's own
      background thread for every delivered or failed event.
    json_default: serialiser for values json.dumps cannot write (see
      json_default()).
    """

    def __init__(self, config: Mapping[str, Any], on_delivery: Optional[Callable[[Delivery], None]] = None,
                 json_default: Callable[[Any], Any] = json_default):
        lib = _load()
        self._lib = lib
        self._p = None
        self._json_default = json_default
        self._cb = None
        err = _CtError()
        conf = lib.ct_producer_config_new()
        if not conf:
            raise ChangetrailError(-2, "out of memory")
        try:
            for key, value in config.items():
                if isinstance(value, bool):
                    value = "true" if value else "false"
                _check(lib.ct_producer_config_set(conf, _b(key), _b(value), ctypes.byref(err)), err)
            if on_delivery is not None:
                def trampoline(d, _opaque):
                    try:
                        on_delivery(Delivery(d.contents))
                    except Exception:  # never let an exception cross into C
                        import traceback
                        traceback.print_exc()
                self._cb = _DELIVERY_CB(trampoline)  # kept alive as long as the producer
                lib.ct_producer_config_set_delivery_cb(conf, self._cb, None)
            p = ctypes.c_void_p()
            _check(lib.ct_producer_new(conf, ctypes.byref(p), ctypes.byref(err)), err)
            self._p = p
        finally:
            lib.ct_producer_config_destroy(conf)

    # -------------------------------------------------------------- life
    def _handle(self) -> ctypes.c_void_p:
        if self._p is None:
            raise ChangetrailError(-1, "producer is closed")
        return self._p

    @property
    def closed(self) -> bool:
        return self._p is None

    def flush(self, timeout: float = 10.0) -> None:
        """Waits until every event so far is delivered or failed; ChangetrailError
        (CT_ETIMEDOUT) when some are still pending after `timeout` seconds."""
        err = _CtError()
        _check(self._lib.ct_producer_flush(self._handle(), int(timeout * 1000), ctypes.byref(err)), err)

    def close(self, timeout: float = 10.0) -> int:
        """Flushes for at most `timeout` seconds and frees the producer. Returns
        the number of events that could not be kept (0 with a spool). Idempotent."""
        if self._p is None:
            return 0
        p, self._p = self._p, None
        return self._lib.ct_producer_destroy(p, int(timeout * 1000))

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stats(self) -> dict:
        """ct_producer_stats as a dict (emitted, delivered, failed, unchanged, ...)."""
        s = _CtProducerStats()
        self._lib.ct_producer_stats_get(self._handle(), ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in _CtProducerStats._fields_}

    # -------------------------------------------------------------- emit
    def _doc(self, doc: Document) -> Optional[bytes]:
        if doc is None:
            return None
        if isinstance(doc, bytes):
            return doc
        if isinstance(doc, str):
            return doc.encode("utf-8")
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=self._json_default).encode("utf-8")

    def emit(self, op: int, collection: str, document_id: Any, after: Document = None, *,
             before: Document = None, label: Optional[str] = None, actor: Optional[str] = None,
             parent: Optional[Tuple[str, Any]] = None, relation: Optional[Tuple[str, str, Any]] = None,
             seq: int = 0) -> Optional[str]:
        """Emits one change (ct_emit). Documents are dicts (serialised with json)
        or JSON text. parent = (collection, document_id); relation = (name,
        collection, document_id). Returns the event id, or None when an update
        changed no tracked field (nothing was sent)."""
        c = _CtChange()
        c.op = op
        c.collection = _b(collection)
        c.document_id = _b(document_id)
        after_b, before_b = self._doc(after), self._doc(before)
        c.after_json, c.after_len = after_b, len(after_b) if after_b is not None else 0
        c.before_json, c.before_len = before_b, len(before_b) if before_b is not None else 0
        c.label = _b(label)
        c.actor = _b(actor)
        if parent is not None:
            c.parent_collection, c.parent_document_id = _b(parent[0]), _b(parent[1])
        if relation is not None:
            c.relation_name, c.relation_collection, c.relation_document_id = (_b(x) for x in relation)
        c.seq = seq
        out = ctypes.create_string_buffer(37)
        err = _CtError()
        _check(self._lib.ct_emit(self._handle(), ctypes.byref(c), out, ctypes.byref(err)), err)
        return out.value.decode() or None

    def emit_insert(self, collection: str, document_id: Any, document: Document, **kw) -> Optional[str]:
        return self.emit(OP_INSERT, collection, document_id, document, **kw)

    def emit_update(self, collection: str, document_id: Any, document: Document,
                    before: Document = None, **kw) -> Optional[str]:
        return self.emit(OP_UPDATE, collection, document_id, document, before=before, **kw)

    def emit_delete(self, collection: str, document_id: Any, before: Document = None, **kw) -> Optional[str]:
        return self.emit(OP_DELETE, collection, document_id, None, before=before, **kw)

    def emit_snapshot(self, collection: str, document_id: Any, document: Document, **kw) -> Optional[str]:
        return self.emit(OP_SNAPSHOT, collection, document_id, document, **kw)

    def emit_event(self, collection: str, document_id: Any, label: str, document: Document = None,
                   **kw) -> Optional[str]:
        """A manual event ("exported", "discontinued") on a document."""
        return self.emit(OP_EVENT, collection, document_id, document, label=label, **kw)

    def relation_add(self, collection: str, document_id: Any, name: str, related_collection: str,
                     related_id: Any, **kw) -> Optional[str]:
        """A many-to-many link `name` from collection/document_id to
        related_collection/related_id was added."""
        return self.emit(OP_RELATION_ADD, collection, document_id,
                         relation=(name, related_collection, related_id), **kw)

    def relation_remove(self, collection: str, document_id: Any, name: str, related_collection: str,
                        related_id: Any, **kw) -> Optional[str]:
        return self.emit(OP_RELATION_REMOVE, collection, document_id,
                         relation=(name, related_collection, related_id), **kw)

    # ------------------------------------------------------------ context
    def context(self, **metadata: Any) -> "contextlib.AbstractContextManager[str]":
        """Same as changetrail.context(self, **metadata)."""
        return context(self, **metadata)


def current_context_id() -> Optional[str]:
    """Id of the innermost context open on this thread (the root's id), or None."""
    lib = _load()
    ctx = lib.ct_context_current()
    if not ctx:
        return None
    try:
        return lib.ct_context_id(ctx).decode()
    finally:
        lib.ct_context_unref(ctx)


@contextlib.contextmanager
def context(producer: Producer, **metadata: Any) -> Iterator[str]:
    """Opens a context on this thread for the `with` block (ct_context_enter /
    ct_context_exit); yields its id. Nested contexts merge their metadata into
    the root's and keep the root's id. A `user` or `actor` key becomes the
    actor of the events emitted inside."""
    lib = producer._lib
    err = _CtError()
    md = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), default=producer._json_default)
    _check(lib.ct_context_enter(producer._handle(), md.encode("utf-8"), ctypes.byref(err)), err)
    try:
        yield current_context_id()
    finally:
        err2 = _CtError()
        rc = lib.ct_context_exit(producer._handle(), ctypes.byref(err2))
        if rc < 0 and not producer.closed:
            _check(rc, err2)
