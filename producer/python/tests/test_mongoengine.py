"""changetrail.mongoengine with mongoengine itself (and blinker) against the
local MongoDB server: save (insert, update), embedded documents, lists,
delete, then the history read back through the consumer with the reading API
on the document (history(post).all(), as_of(), version())."""
import datetime
import time
import uuid

import pytest

me = pytest.importorskip("mongoengine")
pytest.importorskip("blinker")

from changetrail import Producer, context, history as ct_history  # noqa: E402
from changetrail import mongoengine as ctme  # noqa: E402


class Author(me.EmbeddedDocument):
    name = me.StringField()
    email = me.StringField()


class Post(me.Document):
    title = me.StringField(required=True)
    body = me.StringField(db_field="text")
    author = me.EmbeddedDocumentField(Author)
    tags = me.ListField(me.StringField())
    published = me.DateTimeField()
    meta = {"collection": "posts"}


@pytest.fixture
def app_db(mongodb_uri):
    name = "ctme_app_" + uuid.uuid4().hex[:10]
    conn = me.connect(db=name, host=mongodb_uri + name, alias="default", uuidRepresentation="standard")
    yield conn
    conn.drop_database(name)
    me.disconnect(alias="default")


def _now():
    time.sleep(0.05)
    t = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.05)
    return t


def test_mongoengine_save_update_embedded_delete_and_reading(app_db, pipeline, reader):
    p = Producer(pipeline.producer_config())
    ctme.track(Post, p)
    try:
        with context(p, user="alice", url="/posts/new") as cid:
            post = Post(title="Hello", body="first", author=Author(name="Ann", email="ann@example.com"),
                        tags=["a"], published=datetime.datetime(2024, 5, 1, 12, 0, 0, 123456))
            post.save()
        t1 = _now()
        with context(p, user="bob"):
            post.author.email = "ann@example.org"   # embedded document
            post.tags.append("b")
            post.save()
        t2 = _now()
        post.title = "Hello again"
        post.save()
        # a reload and a save that changes nothing: the same stored document
        again = Post.objects.get(pk=post.pk)
        again.save()
        post.delete()
        p.flush(10)
    finally:
        ctme.untrack(Post)
        p.close()

    evs = [m["value"] for m in sorted(reader.read(pipeline.topic, expect=7), key=lambda m: m["offset"])
           if m["value"]["collection"] == "posts"]
    pid = str(post.pk)
    assert {e["document_id"] for e in evs} == {pid}
    assert [e["op"] for e in evs] == ["insert", "update", "update", "update", "delete"]
    assert evs[0]["after"] == {"_id": pid, "title": "Hello", "text": "first",
                               "author": {"name": "Ann", "email": "ann@example.com"}, "tags": ["a"],
                               "published": "2024-05-01T12:00:00.123000+00:00"}
    assert evs[0]["context"]["id"] == cid and evs[0]["actor"] == "alice"
    assert evs[3]["after"] == evs[2]["after"], "a reloaded document is sent as it was saved"

    pipeline.drain()
    h = ctme.history(post, pipeline.history())
    log = h.all()
    assert [r["op"] for r in log] == ["delete", "update", "update", "insert"]
    assert log[2]["diff"] == [("change", "author.email", ("ann@example.com", "ann@example.org")),
                              ("add", "tags", [(1, "b")])]
    assert log[2]["actor"] == "bob"
    then = h.as_of(t1)
    assert isinstance(then, Post) and then.pk == post.pk and then.title == "Hello"
    assert then.author.email == "ann@example.com" and isinstance(then.author, Author)
    assert then.published == datetime.datetime(2024, 5, 1, 12, 0, 0, 123000) and then.body == "first"
    assert h.as_of(t2).tags == ["a", "b"] and h.version(3).title == "Hello again"
    with pytest.raises(Post.DoesNotExist):
        h.as_of(datetime.datetime.now(datetime.timezone.utc))   # deleted by now
    assert ct_history.History(pipeline.db).version("posts", pid)["deleted"]
