"""changetrail.mongoengine - history of MongoEngine documents through changetrail.

MongoEngine (and its blinker signals) are imported only when track() runs,
so `import changetrail` works without them.

    from changetrail import Producer, context
    from changetrail.mongoengine import track

    producer = Producer({"source": "blog", "kafka.bootstrap.servers": "kafka:9092"})
    track(Post, producer)                  # post_save -> insert/update, post_delete -> delete
    with context(producer, user="alice"):
        Post(title="hello").save()

The collection is the document's MongoDB collection name, the document id
str(pk), and the document is `to_mongo()` with BSON types written as JSON:
ObjectId as its hex string, datetimes as ISO 8601, other values via str().
"""

from __future__ import annotations

import json
from typing import Any, Dict

from . import Producer, json_default

_connected: Dict[Any, Producer] = {}


def bson_default(o: Any) -> Any:
    """json_default that also writes BSON types (ObjectId, DBRef, ...) as strings."""
    try:
        return json_default(o)
    except TypeError:
        return str(o)


def collection_of(document) -> str:
    return document._get_collection_name()


def serialize(document) -> Dict[str, Any]:
    """The document as stored (to_mongo()) as a plain dict."""
    son = document.to_mongo()
    return son.to_dict() if hasattr(son, "to_dict") else dict(son)


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
    _emit(_connected[sender], "insert" if created else "update", document)


def on_post_delete(sender, document, **kwargs) -> None:
    """post_delete handler: delete, with the last state as `before`."""
    _emit(_connected[sender], "delete", document)


def track(document_class, producer: Producer) -> None:
    """Connects the post_save/post_delete handlers for `document_class`."""
    from mongoengine import signals

    _connected[document_class] = producer
    signals.post_save.connect(on_post_save, sender=document_class, weak=False)
    signals.post_delete.connect(on_post_delete, sender=document_class, weak=False)


def untrack(document_class) -> None:
    from mongoengine import signals

    signals.post_save.disconnect(on_post_save, sender=document_class)
    signals.post_delete.disconnect(on_post_delete, sender=document_class)
    _connected.pop(document_class, None)


__all__ = ["track", "untrack", "on_post_save", "on_post_delete", "serialize", "bson_default",
           "collection_of"]
