"""changetrail.django - history of Django models through changetrail.

Django is imported only when these functions run, so `import changetrail`
works without it. docs/python.md has the whole story; in short:

settings.py:

    CHANGETRAIL = {
        "PRODUCER": {                      # ct_producer_config_set keys
            "source": "shop",
            "kafka.bootstrap.servers": "kafka:9092",
        },
        "MODELS": ["shop.Order",                     # what track_models() tracks
                   {"model": "shop.Account", "exclude": ["password"]}],
        "MONGODB": {"uri": "mongodb://mongo:27017/", "database": "changetrail"},  # reading
    }
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "changetrail.django.ChangetrailMiddleware", ...]

models.py:

    @changetrail.django.track(exclude=["password"])
    class Account(models.Model): ...

What is recorded:
- save() and delete() (signals), many-to-many add/remove/clear, and the bulk
  paths of the model's managers: QuerySet.update(), bulk_create(),
  bulk_update() (track() installs a QuerySet that reads the affected rows).
  Raw SQL, QuerySet._raw_delete() and writes by other programs are not seen.
- save() reads the row back first (one SELECT by primary key) for `before`:
  an update that changes no tracked field sends nothing.
- Every event is emitted when the transaction commits (transaction.on_commit):
  nothing for a rolled-back transaction or savepoint. The document is taken
  at the time of the change (the row read back before the save for `before`,
  the instance after it), with the context open at that time.
- Values as stored: every field is converted by its own to_python() and
  written the way the database gives it back (Decimal quantized to its
  decimal_places, datetimes in UTC, dates, UUIDs and decimals as strings,
  JSON as the JSON it stores, files as their name), so a reload-and-save that
  changes one field records that field alone.

The collection is the model's label ("shop.order"), the document id its
primary key. instance.history reads the history back (HistoryManager).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import threading
import uuid
import weakref
from typing import Any, Dict, Iterable, List, Optional, Sequence

import changetrail
from . import Producer, context, current_context

_producer: Optional[Producer] = None
_producer_lock = threading.Lock()


class TrackOptions:
    """How one model is tracked."""

    def __init__(self, producer: Optional[Producer] = None, include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = None, history_attr: Optional[str] = "history"):
        self.producer = producer
        self.include = set(include) if include else None
        self.exclude = set(exclude or ())
        self.history_attr = history_attr


_tracked: Dict[Any, TrackOptions] = {}


def get_producer() -> Producer:
    """The process-wide producer made from settings.CHANGETRAIL["PRODUCER"]."""
    global _producer
    with _producer_lock:
        if _producer is None or _producer.closed:
            from django.conf import settings
            from django.core.exceptions import ImproperlyConfigured
            conf = getattr(settings, "CHANGETRAIL", {}).get("PRODUCER")
            if not conf:
                raise ImproperlyConfigured('changetrail: settings.CHANGETRAIL["PRODUCER"] is not set')
            _producer = Producer(conf)
        return _producer


changetrail._default_factory = get_producer


def set_producer(producer: Optional[Producer]) -> None:
    """Uses `producer` instead of the one from settings (tests, custom set-up);
    it also becomes changetrail's default producer."""
    global _producer
    with _producer_lock:
        _producer = producer
    changetrail.set_default_producer(producer)


def collection_of(model) -> str:
    """Collection name of a model: its lowercase label, "app_label.modelname"."""
    return model._meta.label_lower


# ------------------------------------------------------------- values as stored

def stored_value(field, value: Any) -> Any:
    """`value` of `field` as the database gives it back, in JSON: the field's
    own to_python() first (what an assigned int, str or float becomes), then
    the form a reload would have."""
    from django.db import models
    if value is None:
        return None
    if isinstance(field, models.ForeignKey):
        return stored_value(field.target_field, value)
    if isinstance(field, models.FileField):
        name = getattr(value, "name", value)
        return str(name) if name else ""
    if isinstance(field, models.JSONField):
        # what the database stores is the JSON text, decoded on load
        return json.loads(json.dumps(value, cls=field.encoder))
    v = field.to_python(value)
    if v is None:
        return None
    if isinstance(field, models.DecimalField):
        if field.decimal_places is not None:
            v = v.quantize(decimal.Decimal(1).scaleb(-field.decimal_places))
        return str(v)
    if isinstance(field, models.DateTimeField):
        from django.conf import settings
        from django.utils import timezone
        if settings.USE_TZ:
            if timezone.is_naive(v):
                v = timezone.make_aware(v, timezone.get_default_timezone())
            v = v.astimezone(datetime.timezone.utc)
        return v.isoformat()
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, (str, int, float, bool, list, dict)):
        return v
    return str(v)


def _fields(model):
    opts = _tracked.get(model) or TrackOptions()
    for f in model._meta.concrete_fields:
        if opts.include is not None and f.name not in opts.include and f.attname not in opts.include \
                and not f.primary_key:
            continue
        if f.name in opts.exclude or f.attname in opts.exclude:
            continue
        yield f


def serialize(instance) -> Dict[str, Any]:
    """The instance's tracked concrete fields as the database holds them
    (attname -> stored_value), foreign keys as their id."""
    return {f.attname: stored_value(f, f.value_from_object(instance)) for f in _fields(type(instance))}


def _p(model) -> Producer:
    opts = _tracked.get(model)
    p = opts.producer if opts is not None else None
    return p if p is not None else get_producer()


# ------------------------------------------------------------- on commit

class _Pending:
    """An event waiting for its transaction's commit, holding the context
    that was open at the time of the change (so the changeset stays open
    until then). Dropped with a rolled-back transaction: the context's hold
    is released when the callback is garbage (weakref.finalize)."""

    def __init__(self, producer: Producer, emits: List[tuple]):
        self.producer = producer
        self.emits = emits
        ctx = current_context()
        self.ctx = ctx.pin() if ctx is not None and ctx.producer is producer else None
        if self.ctx is not None:
            weakref.finalize(self, self.ctx.close)

    def __call__(self) -> None:
        try:
            for method, args, kw in self.emits:
                getattr(self.producer, method)(*args, context=self.ctx, **kw)
        finally:
            if self.ctx is not None:
                self.ctx.close()


def _later(producer: Producer, emits: List[tuple], using: Optional[str]) -> None:
    """Emits when the transaction of `using` commits (now in autocommit)."""
    from django.db import DEFAULT_DB_ALIAS, transaction
    if not emits:
        return
    transaction.on_commit(_Pending(producer, emits), using=using or DEFAULT_DB_ALIAS)


# ------------------------------------------------------------- signals

def _on_pre_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    if raw or instance.pk is None or instance._state.adding:
        instance.__dict__["_changetrail_before"] = None
        return
    # the row as the database holds it right before this save, in this transaction
    old = sender._base_manager.using(using).filter(pk=instance.pk).first()
    instance.__dict__["_changetrail_before"] = serialize(old) if old is not None else None


def _on_save(sender, instance, created, raw=False, using=None, **kwargs):
    if raw:  # loaddata: fixtures are not changes made by the application
        return
    before = instance.__dict__.pop("_changetrail_before", None)
    coll, pk, after = collection_of(sender), instance.pk, serialize(instance)
    if created or before is None:
        _later(_p(sender), [("emit_insert", (coll, pk, after), {})], using)
    elif before != after:
        _later(_p(sender), [("emit_update", (coll, pk, after), {"before": before})], using)


def _on_pre_delete(sender, instance, using=None, **kwargs):
    instance.__dict__["_changetrail_deleted"] = (instance.pk, serialize(instance))


def _on_delete(sender, instance, using=None, **kwargs):
    pk, before = instance.__dict__.pop("_changetrail_deleted", (instance.pk, serialize(instance)))
    _later(_p(sender), [("emit_delete", (collection_of(sender), pk), {"before": before})], using)


def _m2m_field(through, model):
    for f in model._meta.many_to_many:
        if f.remote_field.through is through:
            return f
    return None


def _on_m2m(sender, instance, action, reverse, model, pk_set, using=None, **kwargs):
    # connected for every sender: the link belongs to the model that declares the field
    owner = model if reverse else type(instance)
    if owner not in _tracked:
        return
    field = _m2m_field(sender, owner)
    if field is None:
        return
    # pk_set is None for clear: collect the linked ids before they are gone.
    if action == "pre_clear":
        if reverse:
            ids = set(model._default_manager.using(using).filter(**{field.name: instance.pk})
                      .values_list("pk", flat=True))
        else:
            ids = set(getattr(instance, field.name).values_list("pk", flat=True))
        instance._changetrail_cleared = ids
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_changetrail_cleared", set())
        instance.__dict__.pop("_changetrail_cleared", None)
        kind = "remove"
    elif action in ("post_add", "post_remove"):
        kind = action[5:]
    else:
        return
    method = "relation_add" if kind == "add" else "relation_remove"
    emits = []
    for pk in sorted(pk_set or (), key=str):
        if reverse:  # instance is the target side: the link belongs to model(pk).field
            emits.append((method, (collection_of(owner), pk, field.name, collection_of(type(instance)),
                                   instance.pk), {}))
        else:
            emits.append((method, (collection_of(owner), instance.pk, field.name, collection_of(model), pk), {}))
    _later(_p(owner), emits, using)


# ------------------------------------------------------------- bulk paths

class TrackedQuerySetMixin:
    """The bulk paths of a tracked model's QuerySet, recorded like saves:
    update() reads the affected rows before and after; bulk_create() and
    bulk_update() emit what they wrote (read back from the database). Events
    go out on commit, in the context open at the call."""

    def update(self, **kwargs):
        from django.db import transaction
        model, db = self.model, self.db
        with transaction.atomic(using=db, savepoint=False):
            befores = {o.pk: serialize(o) for o in self._chain()}
            n = super().update(**kwargs)
            _emit_changed(model, db, befores)
        return n

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        objs = super().bulk_create(objs, *args, **kwargs)
        model = self.model
        emits = [("emit_insert", (collection_of(model), o.pk, serialize(o)), {})
                 for o in objs if o.pk is not None]
        _later(_p(model), emits, self.db)
        return objs

    bulk_create.alters_data = True

    def bulk_update(self, objs, fields, *args, **kwargs):
        from django.db import transaction
        model, db = self.model, self.db
        objs = list(objs)
        with transaction.atomic(using=db, savepoint=False):
            pks = [o.pk for o in objs]
            befores = {o.pk: serialize(o) for o in model._base_manager.using(db).filter(pk__in=pks)}
            n = super().bulk_update(objs, fields, *args, **kwargs)
            _emit_changed(model, db, befores)
        return n

    bulk_update.alters_data = True


def _emit_changed(model, db, befores: Dict[Any, Dict[str, Any]]) -> None:
    if not befores:
        return
    coll, emits = collection_of(model), []
    for o in model._base_manager.using(db).filter(pk__in=list(befores)):
        after, before = serialize(o), befores.get(o.pk)
        if before != after:
            emits.append(("emit_update", (coll, o.pk, after), {"before": before}))
    emits.sort(key=lambda e: str(e[1][1]))
    _later(_p(model), emits, db)


def _install_queryset(model) -> None:
    for m in model._meta.managers:
        qs = m._queryset_class
        if not issubclass(qs, TrackedQuerySetMixin):
            m._queryset_class = type("Tracked" + qs.__name__, (TrackedQuerySetMixin, qs), {})


def _uninstall_queryset(model) -> None:
    for m in model._meta.managers:
        qs = m._queryset_class
        if issubclass(qs, TrackedQuerySetMixin) and qs.__name__.startswith("Tracked"):
            m._queryset_class = qs.__mro__[2]


# ------------------------------------------------------------- registration

def track(model=None, producer: Optional[Producer] = None, *, include: Optional[Sequence[str]] = None,
          exclude: Optional[Sequence[str]] = None, history_attr: Optional[str] = "history"):
    """Tracks a model (a class or "app.Model"): saves, deletes, many-to-many
    fields and the bulk QuerySet paths; installs `instance.history`
    (HistoryManager; history_attr=None for none). As a decorator:

        @track(exclude=["password"])
        class Account(models.Model): ...

    include/exclude: field names (or attnames) to record / leave out (the
    primary key is always there). `producer` defaults to get_producer()."""
    if model is None:
        def deco(cls):
            track(cls, producer, include=include, exclude=exclude, history_attr=history_attr)
            return cls
        return deco
    from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

    if isinstance(model, str):
        from django.apps import apps
        model = apps.get_model(model)
    uid = f"changetrail:{model._meta.label}"
    _tracked[model] = TrackOptions(producer, include, exclude, history_attr)
    pre_save.connect(_on_pre_save, sender=model, dispatch_uid=uid, weak=False)
    post_save.connect(_on_save, sender=model, dispatch_uid=uid, weak=False)
    pre_delete.connect(_on_pre_delete, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_on_delete, sender=model, dispatch_uid=uid, weak=False)
    # one receiver for every through model (those of a class being decorated may not exist yet)
    m2m_changed.connect(_on_m2m, dispatch_uid="changetrail:m2m", weak=False)
    _install_queryset(model)
    if history_attr and not hasattr(model, history_attr):
        setattr(model, history_attr, HistoryDescriptor())
    return model


def untrack(model) -> None:
    from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

    if isinstance(model, str):
        from django.apps import apps
        model = apps.get_model(model)
    uid = f"changetrail:{model._meta.label}"
    pre_save.disconnect(sender=model, dispatch_uid=uid)
    post_save.disconnect(sender=model, dispatch_uid=uid)
    pre_delete.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)
    _uninstall_queryset(model)
    opts = _tracked.pop(model, None)
    if opts is not None and opts.history_attr and isinstance(model.__dict__.get(opts.history_attr),
                                                             HistoryDescriptor):
        delattr(model, opts.history_attr)


def track_models(models: Optional[Iterable] = None, producer: Optional[Producer] = None) -> None:
    """track() every model of `models`, default settings.CHANGETRAIL["MODELS"]:
    "app.Model" or a model class, or {"model": ..., "include": [...],
    "exclude": [...]}
    (models decorated with @track need not be listed)."""
    if models is None:
        from django.conf import settings
        models = getattr(settings, "CHANGETRAIL", {}).get("MODELS", ())
    for m in list(models):
        if isinstance(m, dict):  # {"model": "shop.Account", "exclude": [...], "include": [...]}
            track(m["model"], producer, include=m.get("include"), exclude=m.get("exclude"),
                  history_attr=m.get("history_attr", "history"))
            continue
        opts = _tracked.get(m)
        track(m, producer if producer is not None else (opts.producer if opts else None),
              include=sorted(opts.include) if opts and opts.include else None,
              exclude=sorted(opts.exclude) if opts else None,
              history_attr=opts.history_attr if opts else "history")


# ------------------------------------------------------------- middleware

def request_metadata(request, user=None) -> Dict[str, Any]:
    """{"method", "url", "user"?, "request_id"?, "traceparent"?, "trace_id"?}
    of a request: the X-Request-ID header and the W3C traceparent header (its
    trace id parsed out) when present."""
    md: Dict[str, Any] = {"method": request.method, "url": request.get_full_path()}
    if user is not None and getattr(user, "is_authenticated", False):
        md["user"] = user.get_username()
    rid = request.headers.get("X-Request-ID") or request.headers.get("X-Correlation-ID")
    if rid and len(rid) <= 200:
        md["request_id"] = rid
    tp = request.headers.get("traceparent")
    if tp:
        parts = tp.strip().split("-")
        if (len(parts) >= 4 and len(parts[0]) == 2 and len(parts[1]) == 32 and len(parts[2]) == 16
                and all(c in "0123456789abcdef" for c in "".join(parts[:4]))):
            md["traceparent"] = tp.strip()
            md["trace_id"] = parts[1]
    return md


class ChangetrailMiddleware:
    """Wraps each request in a changetrail context with metadata (see
    request_metadata(): user, method, URL, request id, W3C trace). Every change
    the request makes carries the context's id, and the user as actor. Works
    under WSGI and ASGI (sync and async); put it after AuthenticationMiddleware."""

    sync_capable = True
    async_capable = True
    producer: Optional[Producer] = None  # class attribute: set to override get_producer()

    def __init__(self, get_response):
        import asyncio
        self.get_response = get_response
        self._async = asyncio.iscoroutinefunction(get_response)
        if self._async:
            try:
                from asgiref.sync import markcoroutinefunction
                markcoroutinefunction(self)
            except ImportError:  # pragma: no cover
                self._is_coroutine = asyncio.coroutines._is_coroutine

    def metadata(self, request) -> Dict[str, Any]:
        return request_metadata(request, getattr(request, "user", None))

    def __call__(self, request):
        if self._async:
            return self.__acall__(request)
        with context(self.producer if self.producer is not None else get_producer(), **self.metadata(request)):
            return self.get_response(request)

    async def __acall__(self, request):
        user = None
        if hasattr(request, "auser"):
            user = await request.auser()
        elif hasattr(request, "user"):
            from asgiref.sync import sync_to_async
            user = await sync_to_async(lambda: request.user if request.user.is_authenticated else None)()
        md = request_metadata(request, user)
        async with context(self.producer if self.producer is not None else get_producer(), **md):
            return await self.get_response(request)


# ------------------------------------------------------------- reading

class HistoryManager:
    """instance.history: the history of one model instance, read from MongoDB
    (changetrail.history; settings.CHANGETRAIL["MONGODB"]).

        article.history.all()          # records, newest first (dicts)
        article.history.as_of(t)       # an unsaved Article as it was at t
        article.history.version(3)     # an unsaved Article at version 3
        article.history.blame()        # who set each field
        article.history.revert(version=2)   # saves nothing; emits the old state
    """

    def __init__(self, model, pk):
        self.model = model
        self.pk = pk

    @property
    def _h(self):
        from . import history
        return history.get_default()

    @property
    def collection(self) -> str:
        return collection_of(self.model)

    def all(self, **kw) -> List[Dict[str, Any]]:
        return self._h.log(self.collection, self.pk, **kw)

    log = all

    def __iter__(self):
        return iter(self.all())

    def __len__(self):
        return len(self.all())

    def most_recent(self) -> Optional[Dict[str, Any]]:
        recs = self.all()
        return recs[0] if recs else None

    def state(self, version: Optional[int] = None) -> Dict[str, Any]:
        """The stored state dict at `version` (changetrail.history.version)."""
        return self._h.version(self.collection, self.pk, version)

    def version(self, version: int):
        return self.instance_from(self.state(version)["doc"])

    def as_of(self, t):
        """The instance as it was at `t`: an unsaved model instance with the
        field values then (pk included); DoesNotExist when it did not exist
        yet or had been deleted by then."""
        st = self._h.as_of(self.collection, self.pk, t)
        if st is None or st["deleted"]:
            raise self.model.DoesNotExist(f"{self.collection}/{self.pk} did not exist at {t}")
        return self.instance_from(st["doc"])

    def instance_from(self, doc: Dict[str, Any]):
        """An unsaved instance from a stored document (each field's to_python)."""
        values = {}
        for f in self.model._meta.concrete_fields:
            if f.attname in doc:
                v = doc[f.attname]
                if v is not None:
                    target = f.target_field if f.is_relation else f
                    v = target.to_python(v)
                values[f.attname] = v
        obj = self.model(**values)
        obj._state.adding = True
        return obj

    def blame(self) -> List[Dict[str, Any]]:
        return self._h.blame(self.collection, self.pk)

    def revert(self, **kw) -> Dict[str, Any]:
        kw.setdefault("producer", _p(self.model))
        return self._h.revert(self.collection, self.pk, **kw)


class HistoryDescriptor:
    """Model.history on an instance: its HistoryManager. On the class: a
    function of a primary key giving one (Model.history(pk))."""

    def __get__(self, instance, owner):
        if instance is None:
            return lambda pk: HistoryManager(owner, pk)
        if instance.pk is None:
            raise ValueError("history of an unsaved instance")
        return HistoryManager(owner, instance.pk)
