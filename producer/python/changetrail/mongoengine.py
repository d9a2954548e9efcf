"""changetrail.mongoengine - history of MongoEngine documents through changetrail.

MongoEngine (and blinker, which its signals need: pip install
"changetrail[mongoengine]") are imported only when these functions run, so
`import changetrail` works without them.

    from changetrail import Producer, context
    from changetrail.mongoengine import track, history

    producer = Producer({"source": "blog", "kafka.bootstrap.servers": "kafka:9092"})
    track(Post, producer)                  # post_save -> insert/update, post_delete -> delete
    with context(producer, user="alice"):
        Post(title="hello").save()
    history(post).all()                    # records, newest first (changetrail.history)
    history(post).as_of(t)                 # an unsaved Post as it was at t

The collection is the document's MongoDB collection name, the document id
str(pk), and the document is `to_mongo()` written as JSON the way MongoDB
holds it: ObjectId as its hex string, datetimes in UTC (+00:00) to the millisecond
(BSON dates hold milliseconds), Decimal128 and other BSON types as strings.
Document.save() and delete() are seen (mongoengine's signals);
QuerySet.update(), Document.update() / modify() and insert() do not send
signals and are not recorded.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Dict, List, Optional

from . import Producer, json_default

_connected: Dict[Any, Optional[Producer]] = {}


def bson_default(o: Any) -> Any:
    """json_default that also writes BSON types (ObjectId, DBRef, ...) as strings."""
    try:
        return json_default(o)
    except TypeError:
        return str(o)


def _as_stored(v: Any) -> Any:
    """A to_mongo() value as a reload gives it back: BSON dates hold
    milliseconds (and are UTC), so a datetime is cut to the millisecond."""
    if isinstance(v, dict):
        return {k: _as_stored(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_as_stored(x) for x in v]
    if isinstance(v, datetime.datetime):
        # naive datetimes are UTC in mongoengine (pymongo gives them back so)
        v = v.replace(tzinfo=datetime.timezone.utc) if v.tzinfo is None else v.astimezone(datetime.timezone.utc)
        return v.replace(microsecond=v.microsecond // 1000 * 1000)
    return v


def collection_of(document) -> str:
    return document._get_collection_name()


def serialize(document) -> Dict[str, Any]:
    """The document as stored (to_mongo()) as a plain dict."""
    son = document.to_mongo()
    return _as_stored(son.to_dict() if hasattr(son, "to_dict") else dict(son))


def _producer(sender) -> Producer:
    p = _connected.get(sender)
    if p is None:
        from . import get_default_producer
        p = get_default_producer()
    return p


def _emit(producer: Producer, op: str, document) -> None:
    coll, doc_id = collection_of(document), str(document.pk)
    body = serialize(document)
    # Serialised here with bson_default, so ObjectIds and datetimes never fail.
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=bson_default)
    if op == "delete":
        producer.emit_delete(coll, doc_id, before=text)
    elif op == "insert":
        producer.emit_insert(coll, doc_id, text)
    else:
        producer.emit_update(coll, doc_id, text)


def on_post_save(sender, document, created=False, **kwargs) -> None:
    """post_save handler: insert when `created`, else update."""
    _emit(_producer(sender), "insert" if created else "update", document)


def on_post_delete(sender, document, **kwargs) -> None:
    """post_delete handler: delete, with the last state as `before`."""
    _emit(_producer(sender), "delete", document)


def track(document_class, producer: Optional[Producer] = None) -> None:
    """Connects the post_save/post_delete handlers for `document_class`
    (`producer` defaults to changetrail's default producer)."""
    from mongoengine import signals

    if not signals.signals_available:
        raise ImportError("changetrail.mongoengine: mongoengine's signals need blinker (pip install blinker)")
    _connected[document_class] = producer
    signals.post_save.connect(on_post_save, sender=document_class, weak=False)
    signals.post_delete.connect(on_post_delete, sender=document_class, weak=False)


def untrack(document_class) -> None:
    from mongoengine import signals

    signals.post_save.disconnect(on_post_save, sender=document_class)
    signals.post_delete.disconnect(on_post_delete, sender=document_class)
    _connected.pop(document_class, None)


# ------------------------------------------------------------------ reading

def _from_json(field, v: Any) -> Any:
    from bson import ObjectId
    from mongoengine import fields as f
    if v is None:
        return None
    if isinstance(field, f.EmbeddedDocumentField):
        return document_from(field.document_type, v)
    if isinstance(field, f.ListField) and field.field is not None and isinstance(v, list):
        return [_from_json(field.field, x) for x in v]
    if isinstance(field, (f.ObjectIdField, f.ReferenceField)) and isinstance(v, str) and ObjectId.is_valid(v):
        return ObjectId(v)
    if isinstance(field, f.DateTimeField) and isinstance(v, str):
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        return t.astimezone(datetime.timezone.utc).replace(tzinfo=None) if t.tzinfo else t
    return field.to_python(v)


def document_from(cls, doc: Dict[str, Any]):
    """An unsaved instance of `cls` (a Document or EmbeddedDocument class)
    from a stored document (the JSON form changetrail recorded)."""
    values = {}
    for name, field in cls._fields.items():
        key = field.db_field or name
        if key in doc:
            values[name] = _from_json(field, doc[key])
    return cls(**values)


class DocumentHistory:
    """The history of one mongoengine document (changetrail.history)."""

    def __init__(self, cls, pk, h=None):
        self.cls, self.pk = cls, str(pk)
        self._hist = h

    @property
    def _h(self):
        if self._hist is not None:
            return self._hist
        from . import history
        return history.get_default()

    @property
    def collection(self) -> str:
        return self.cls._get_collection_name()

    def all(self, **kw) -> List[Dict[str, Any]]:
        return self._h.log(self.collection, self.pk, **kw)

    log = all

    def state(self, version: Optional[int] = None) -> Dict[str, Any]:
        return self._h.version(self.collection, self.pk, version)

    def version(self, version: int):
        return document_from(self.cls, self.state(version)["doc"])

    def as_of(self, t):
        """The document as it was at `t`, unsaved; DoesNotExist when it did
        not exist then (or had been deleted)."""
        st = self._h.as_of(self.collection, self.pk, t)
        if st is None or st["deleted"]:
            raise self.cls.DoesNotExist(f"{self.collection}/{self.pk} did not exist at {t}")
        return document_from(self.cls, st["doc"])

    def blame(self) -> List[Dict[str, Any]]:
        return self._h.blame(self.collection, self.pk)

    def revert(self, **kw) -> Dict[str, Any]:
        kw.setdefault("producer", _producer(self.cls))
        return self._h.revert(self.collection, self.pk, **kw)


def history(document, h=None) -> DocumentHistory:
    """history(post) (or history(Post, pk)): the document's DocumentHistory;
    `h` a changetrail.history.History (default: history.get_default())."""
    return DocumentHistory(type(document), document.pk, h)


__all__ = ["track", "untrack", "on_post_save", "on_post_delete", "serialize", "bson_default",
           "collection_of", "history", "document_from", "DocumentHistory"]
