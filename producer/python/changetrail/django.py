"""changetrail.django - history of Django models through changetrail.

Django is imported only when these functions run, so `import changetrail`
works without it.

settings.py:

    CHANGETRAIL = {
        "PRODUCER": {                      # ct_producer_config_set keys
            "source": "shop",
            "kafka.bootstrap.servers": "kafka:9092",
            "track.auth.user.exclude": "password",
        },
        "MODELS": ["shop.Order", "shop.Product"],   # what track_models() connects
    }
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "changetrail.django.ChangetrailMiddleware", ...]

apps.py (ready()):  changetrail.django.track_models()

Every saved instance is emitted as insert/update with its concrete fields
(`attname` -> value, foreign keys as their id), every deleted one as delete
(with the last state as `before`), and many-to-many changes as
relation_add/relation_remove. The collection is the model's label
("shop.order"), the document id its primary key. The middleware wraps each
request in a context with the user, the method and the URL, so the request's
changes form one changeset with the user as actor.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, Optional

from . import Producer, context

_producer: Optional[Producer] = None
_producer_lock = threading.Lock()
_connected: Dict[Any, Producer] = {}


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


def set_producer(producer: Optional[Producer]) -> None:
    """Uses `producer` instead of the one from settings (tests, custom set-up)."""
    global _producer
    with _producer_lock:
        _producer = producer


def collection_of(model) -> str:
    """Collection name of a model: its lowercase label, "app_label.modelname"."""
    return model._meta.label_lower


def serialize(instance) -> Dict[str, Any]:
    """The instance's concrete fields as a dict (attname -> value); values that
    json cannot write are handled by the producer's json_default."""
    return {f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields}


def _p(producer: Optional[Producer]) -> Producer:
    return producer if producer is not None else get_producer()


# ----------------------------------------------------------------- signals

def _on_save(sender, instance, created, raw=False, using=None, **kwargs):
    if raw:  # loaddata: fixtures are not changes made by the application
        return
    p = _p(_connected.get(sender))
    op = p.emit_insert if created else p.emit_update
    op(collection_of(sender), instance.pk, serialize(instance))


def _on_delete(sender, instance, using=None, **kwargs):
    p = _p(_connected.get(sender))
    p.emit_delete(collection_of(sender), instance.pk, before=serialize(instance))


def _m2m_field(through, model):
    for f in model._meta.many_to_many:
        if f.remote_field.through is through:
            return f
    return None


def _on_m2m(sender, instance, action, reverse, model, pk_set, using=None, **kwargs):
    # pk_set is None for clear: collect the linked ids before they are gone.
    if action == "pre_clear":
        if reverse:
            field = _m2m_field(sender, model)
            ids = set(model._default_manager.using(using).filter(**{field.name: instance.pk})
                      .values_list("pk", flat=True)) if field else set()
        else:
            field = _m2m_field(sender, type(instance))
            ids = set(getattr(instance, field.name).values_list("pk", flat=True)) if field else set()
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
    owner = model if reverse else type(instance)
    field = _m2m_field(sender, owner)
    if field is None:
        return
    p = _p(_connected.get(sender) or _connected.get(owner))
    emit = p.relation_add if kind == "add" else p.relation_remove
    for pk in sorted(pk_set or (), key=str):
        if reverse:  # instance is the target side: the link belongs to model(pk).field
            emit(collection_of(owner), pk, field.name, collection_of(type(instance)), instance.pk)
        else:
            emit(collection_of(owner), instance.pk, field.name, collection_of(model), pk)


def track(model, producer: Optional[Producer] = None) -> None:
    """Emits the changes of `model` (a model class or "app.Model"): saves,
    deletes and its many-to-many fields. `producer` defaults to get_producer()
    (made on first use)."""
    from django.apps import apps
    from django.db.models.signals import m2m_changed, post_delete, post_save

    if isinstance(model, str):
        model = apps.get_model(model)
    uid = f"changetrail:{model._meta.label}"
    _connected[model] = producer
    post_save.connect(_on_save, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_on_delete, sender=model, dispatch_uid=uid, weak=False)
    for f in model._meta.many_to_many:
        through = f.remote_field.through
        _connected[through] = producer
        m2m_changed.connect(_on_m2m, sender=through, dispatch_uid=f"{uid}.{f.name}", weak=False)


def untrack(model) -> None:
    from django.apps import apps
    from django.db.models.signals import m2m_changed, post_delete, post_save

    if isinstance(model, str):
        model = apps.get_model(model)
    uid = f"changetrail:{model._meta.label}"
    post_save.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)
    for f in model._meta.many_to_many:
        m2m_changed.disconnect(sender=f.remote_field.through, dispatch_uid=f"{uid}.{f.name}")
        _connected.pop(f.remote_field.through, None)
    _connected.pop(model, None)


def track_models(models: Optional[Iterable] = None, producer: Optional[Producer] = None) -> None:
    """track() every model of `models`, default settings.CHANGETRAIL["MODELS"]."""
    if models is None:
        from django.conf import settings
        models = getattr(settings, "CHANGETRAIL", {}).get("MODELS", ())
    for m in models:
        track(m, producer)


# -------------------------------------------------------------- middleware

class ChangetrailMiddleware:
    """Wraps each request in a changetrail context with metadata
    {"user", "method", "url"} (user: the authenticated user's username, if
    any; put this after AuthenticationMiddleware). Every change the request
    makes carries the context's id, and the user as actor."""

    producer: Optional[Producer] = None  # class attribute: set to override get_producer()

    def __init__(self, get_response):
        self.get_response = get_response

    def metadata(self, request) -> Dict[str, Any]:
        md: Dict[str, Any] = {"method": request.method, "url": request.get_full_path()}
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            md["user"] = user.get_username()
        return md

    def __call__(self, request):
        with context(_p(self.producer), **self.metadata(request)):
            return self.get_response(request)
