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

The library is the one the wheel carries (changetrail/_lib), unless the
environment variable CHANGETRAIL_LIB names another (a path to
libchangetrail.so); without either, ctypes.util.find_library("changetrail").
At load the library's version must match the ABI this binding mirrors.
Errors of the C library are raised as ChangetrailError(code, message).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import ctypes.util
import datetime
import decimal
import json
import os
import threading
import uuid
import weakref
from ._version import ABI_VERSION, __version__
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, Union

__all__ = [
    "ChangetrailError",
    "Producer",
    "Delivery",
    "context",
    "current_context_id",
    "current_context",
    "current_metadata",
    "use_context",
    "join_context",
    "live_context",
    "set_default_producer",
    "get_default_producer",
    "__version__",
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
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", "libchangetrail.so.0")
    if os.path.exists(bundled):  # the wheel's own
        return bundled
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
            "ct_context_ref": (P, [P]),
            "ct_context_attach": (I, [P, E]),
            "ct_context_join": (I, [P, S, S, E]),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(lib, name, None)
            if fn is None:
                raise ChangetrailError(-14, f"libchangetrail ({path}) has no {name}: an older library "
                                       f"than this binding ({ABI_VERSION}); install the matching one")
            fn.restype = res
            fn.argtypes = args
        _check_abi(lib)
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
    contexts follow the code (contextvars: per asyncio task and thread).

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
             seq: int = 0, context: Optional["_Ctx"] = None) -> Optional[str]:
        """Emits one change (ct_emit). Documents are dicts (serialised with json)
        or JSON text. parent = (collection, document_id); relation = (name,
        collection, document_id). Returns the event id, or None when an update
        changed no tracked field (nothing was sent). `context`: the context
        to emit in (default: the one open here, see changetrail.context)."""
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
        ctx = _current.get() if context is None else context
        h = ctx.acquire() if ctx is not None and ctx.producer is self else None
        c.context = h
        out = ctypes.create_string_buffer(37)
        err = _CtError()
        try:
            _check(self._lib.ct_emit(self._handle(), ctypes.byref(c), out, ctypes.byref(err)), err)
        finally:
            if h is not None:
                ctx.release(h)
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
    def context(self, **metadata: Any) -> "context":
        """Same as changetrail.context(self, **metadata)."""
        return context(self, **metadata)


# ------------------------------------------------------------ contexts
#
# A context is held by a contextvars.ContextVar, so it follows the code, not
# the thread: every asyncio task (which copies the context it was created in)
# and every thread sees its own. Underneath it is a ct_context handle (one
# reference held by the `with` block); events carry it explicitly in
# ct_change.context, so the C library's per-thread stack is never left open
# across Python code. Nested contexts merge their metadata into the root's
# (ct_context_enter on the root, attached for the moment of the call) and keep
# the root's id.

_current: "contextvars.ContextVar[Optional[_Ctx]]" = contextvars.ContextVar("changetrail_context", default=None)


class _Ctx:
    """An open root context: its producer, its ct_context handle, its id and
    the metadata accumulated so far (a copy of what the C library holds)."""

    def __init__(self, producer: "Producer", handle: int, metadata: Dict[str, Any]):
        self.producer = producer
        self._handle = handle
        self._lock = threading.Lock()
        self.id = producer._lib.ct_context_id(handle).decode()
        self.metadata = dict(metadata)

    def acquire(self) -> Optional[int]:
        """A new reference to the handle (None once the context has ended);
        give it back with release()."""
        with self._lock:
            if self._handle is None or self.producer.closed:
                return None
            return self.producer._lib.ct_context_ref(self._handle)

    def release(self, handle: Optional[int]) -> None:
        if handle is not None and not self.producer.closed:
            self.producer._lib.ct_context_unref(handle)

    def merge(self, metadata: Dict[str, Any]) -> None:
        """Merges metadata into the root (ct_context_enter nested on it)."""
        if not metadata:
            return
        lib, p = self.producer._lib, self.producer
        h = self.acquire()
        if h is None:
            raise ChangetrailError(-1, "context has ended")
        err = _CtError()
        try:
            _check(lib.ct_context_attach(h, ctypes.byref(err)), err)
            try:
                _check(lib.ct_context_enter(p._handle(), _b(_dumps(metadata, p)), ctypes.byref(err)), err)
                lib.ct_context_exit(p._handle(), ctypes.byref(_CtError()))
            finally:
                lib.ct_context_exit(p._handle(), ctypes.byref(_CtError()))
        finally:
            self.release(h)
        self.metadata.update(metadata)

    def close(self) -> None:
        with self._lock:
            h, self._handle = self._handle, None
        self.release(h)

    def pin(self) -> Optional["_Ctx"]:
        """A second holder of this context, with its own reference: the
        changeset stays open (no context_end) until it is closed too. For
        events emitted later in this context (on a transaction's commit)."""
        h = self.acquire()
        if h is None:
            return None
        c = _Ctx.__new__(_Ctx)
        c.producer, c._handle, c._lock, c.id, c.metadata = self.producer, h, threading.Lock(), self.id, dict(
            self.metadata)
        return c


def _dumps(metadata: Mapping[str, Any], producer: "Producer") -> str:
    return json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"), default=producer._json_default)


_live: "weakref.WeakValueDictionary[str, _Ctx]" = weakref.WeakValueDictionary()


def _open_root(producer: "Producer", metadata: Dict[str, Any], join: Optional[str] = None) -> _Ctx:
    lib, err = producer._lib, _CtError()
    md = _b(_dumps(metadata, producer))
    if join is None:
        _check(lib.ct_context_enter(producer._handle(), md, ctypes.byref(err)), err)
    else:
        _check(lib.ct_context_join(producer._handle(), _b(join), md, ctypes.byref(err)), err)
    h = lib.ct_context_current()
    lib.ct_context_exit(producer._handle(), ctypes.byref(_CtError()))  # the reference from current() holds it
    ctx = _Ctx(producer, h, metadata)
    if join is None:
        _live[ctx.id] = ctx
    return ctx


def live_context(context_id: str) -> Optional[_Ctx]:
    """The context with this id if it is open in this process, else None."""
    ctx = _live.get(context_id)
    return ctx if ctx is not None and ctx.acquire_ok() else None


_default_producer: Optional["Producer"] = None
_default_factory: Optional[Callable[[], "Producer"]] = None


def set_default_producer(producer: Optional["Producer"]) -> None:
    """The producer changetrail.context() and the integrations use when none is given."""
    global _default_producer
    _default_producer = producer


def get_default_producer() -> "Producer":
    """The default producer: the one set with set_default_producer(), else the
    integration's (changetrail.django makes it from settings)."""
    if _default_producer is not None and not _default_producer.closed:
        return _default_producer
    if _default_factory is not None:
        return _default_factory()
    raise ChangetrailError(-14, "no producer: call changetrail.set_default_producer() "
                           "(or configure settings.CHANGETRAIL with changetrail.django)")


def current_context() -> Optional[_Ctx]:
    """The context open here (this task / thread), or None."""
    return _current.get()


def current_context_id() -> Optional[str]:
    """Id of the context open here (the root's id), or None. Falls back to
    the C library's per-thread context (ct_context_enter called directly)."""
    ctx = _current.get()
    if ctx is not None:
        return ctx.id
    lib = _load()
    h = lib.ct_context_current()
    if not h:
        return None
    try:
        return lib.ct_context_id(h).decode()
    finally:
        lib.ct_context_unref(h)


def current_metadata() -> Dict[str, Any]:
    """The accumulated metadata of the context open here ({} when none)."""
    ctx = _current.get()
    return dict(ctx.metadata) if ctx is not None else {}


class context:
    """A changeset: every event emitted inside carries its id and metadata,
    and a `user` or `actor` key becomes the events' actor.

        with changetrail.context(user="alice", url="/orders/7") as cid: ...
        async with changetrail.context(job="import"): ...
        @changetrail.context(job="nightly")          # each call its own context
        def nightly(): ...

    The producer is optional (default: get_default_producer()); the old form
    context(producer, **metadata) still works. Inside an open context it
    nests: the metadata merges into the root's and the id stays the root's.
    The context is a contextvars value: asyncio tasks and threads started
    with a copy of the context (asyncio.create_task, contextvars.copy_context,
    asgiref's sync_to_async) see it; others see their own."""

    def __init__(self, producer: Optional["Producer"] = None, /, **metadata: Any):
        self._producer = producer
        self._metadata = metadata
        self._join: Optional[str] = None  # join_context: the id continued
        self._stack: list = []

    def _again(self) -> "context":
        """A new context like this one (a decorated function's call opens its own)."""
        return context(self._producer, **self._metadata)

    def __enter__(self) -> str:
        outer = _current.get()
        if outer is not None and outer.acquire_ok():
            outer.merge(self._metadata)
            self._stack.append((_current.set(outer), None))
            return outer.id
        p = self._producer if self._producer is not None else get_default_producer()
        ctx = _open_root(p, self._metadata, join=self._join)
        self._stack.append((_current.set(ctx), ctx))
        return ctx.id

    def __exit__(self, *exc) -> None:
        token, ctx = self._stack.pop()
        _current.reset(token)
        if ctx is not None:
            ctx.close()

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(self, *exc) -> None:
        self.__exit__(*exc)

    def __call__(self, fn: Callable) -> Callable:
        import functools
        import inspect
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*a, **kw):
                async with self._again():
                    return await fn(*a, **kw)
            return awrapper

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with self._again():
                return fn(*a, **kw)
        return wrapper


class join_context(context):
    """Continues a context that began elsewhere (its id from a task's headers,
    a request from another service): events inside carry `context_id`, with
    `metadata`; no begin/end markers are sent (ct_context_join), the changeset
    keeps those of the place that opened it. Inside an open context it nests
    like changetrail.context. Context manager (sync and async) and decorator."""

    def __init__(self, context_id: str, producer: Optional["Producer"] = None, /, **metadata: Any):
        super().__init__(producer, **metadata)
        self._join = context_id

    def _again(self) -> "context":
        return join_context(self._join, self._producer, **self._metadata)


def _acquire_ok(self: _Ctx) -> bool:
    with self._lock:
        return self._handle is not None and not self.producer.closed


_Ctx.acquire_ok = _acquire_ok  # type: ignore[attr-defined]


@contextlib.contextmanager
def use_context(ctx: Optional[_Ctx]) -> Iterator[Optional[str]]:
    """Makes `ctx` (from current_context() elsewhere: another thread, a
    callback run later) the context here for the block."""
    token = _current.set(ctx)
    try:
        yield ctx.id if ctx is not None else None
    finally:
        _current.reset(token)


# ------------------------------------------------------------ ABI check

def _check_abi(lib) -> None:
    """The binding mirrors the C structs of one ABI: the library's major
    version (and, before 1.0, its minor) must be the binding's."""
    have = lib.ct_version().decode()
    try:
        h = tuple(int(x) for x in have.split(".")[:2])
        w = tuple(int(x) for x in ABI_VERSION.split(".")[:2])
    except ValueError:
        raise ChangetrailError(-14, f"libchangetrail reports version {have!r}, not MAJOR.MINOR.PATCH") from None
    if h[0] != w[0] or (w[0] == 0 and h[1] != w[1]):
        raise ChangetrailError(
            -14, f"libchangetrail {have} (loaded from {getattr(lib, '_name', '?')}) does not match the ABI "
            f"this binding was written for ({ABI_VERSION}): install the changetrail wheel built with "
            f"its library, or point CHANGETRAIL_LIB at a libchangetrail {'.'.join(map(str, w))}.x")
