"""changetrail.django: model signals (save, delete, many-to-many in both
directions and clear) and the request middleware, with an in-memory SQLite
database (conftest.py) and the tiny app tests/ctapp, against the real broker."""
import datetime
import decimal

import pytest

django = pytest.importorskip("django")

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

import changetrail.django as ctd  # noqa: E402
from changetrail import Producer  # noqa: E402
from ctapp.models import Article, Tag  # noqa: E402


@pytest.fixture
def producer(bootstrap, topic):
    p = Producer({"source": "django-test", "topic": topic, "kafka.bootstrap.servers": bootstrap,
                  "kafka.linger.ms": 5, "track.ctapp.article.exclude": "secret"})
    ctd.set_producer(p)
    ctd.track_models([Article, "ctapp.Tag"])
    yield p
    ctd.untrack(Article)
    ctd.untrack(Tag)
    ctd.set_producer(None)
    p.close()


class User:
    is_authenticated = True

    def get_username(self):
        return "alice"


def test_middleware_and_signals(producer, topic, reader):
    def view(request):
        t1, t2, t3 = (Tag.objects.create(name=n) for n in ("red", "green", "blue"))
        a = Article.objects.create(title="Hello", price=decimal.Decimal("9.90"), secret="s3cret",
                                   published=datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc))
        a.title = "Hello, world"
        a.save()
        a.tags.add(t1, t2)
        a.tags.remove(t1)
        t3.article_set.add(a)  # reverse side
        a.tags.clear()         # removes t2 and t3
        a.delete()
        return HttpResponse(str(a.title))

    mw = ctd.ChangetrailMiddleware(view)
    req = RequestFactory().post("/articles/?draft=1")
    req.user = User()
    assert mw(req).status_code == 200
    producer.flush(10)

    msgs = reader.read(topic, expect=14)
    vals = [m["value"] for m in msgs]
    ctx_ids = {v["context"]["id"] for v in vals}
    assert len(ctx_ids) == 1, "every event of the request is in its one context"
    for v in vals:
        assert v["context"]["metadata"] == {"method": "POST", "url": "/articles/?draft=1", "user": "alice"}
        assert v["actor"] == "alice"
        assert "s3cret" not in str(v)
    art = sorted((m for m in msgs if m["key"].startswith("ctapp.article/")), key=lambda m: m["offset"])
    ops = [(m["value"]["op"], m["value"].get("relation", {}).get("document_id")) for m in art]
    t = {tag.name: str(tag.pk) for tag in Tag.objects.all()}
    assert ops == [("insert", None), ("update", None), ("relation_add", t["red"]), ("relation_add", t["green"]),
                   ("relation_remove", t["red"]), ("relation_add", t["blue"]),
                   ("relation_remove", t["green"]), ("relation_remove", t["blue"]), ("delete", None)], ops
    first = art[0]["value"]
    assert first["after"]["title"] == "Hello" and first["after"]["price"] == "9.90"
    assert first["after"]["published"] == "2024-05-01T12:00:00+00:00"
    assert "secret" not in first["after"]
    assert art[2]["value"]["relation"]["name"] == "tags"
    assert art[2]["value"]["relation"]["collection"] == "ctapp.tag"
    assert art[-1]["value"]["before"]["title"] == "Hello, world"
    tags = [m for m in msgs if m["key"].startswith("ctapp.tag/")]
    assert sorted(m["value"]["op"] for m in tags) == ["insert"] * 3
    kinds = sorted(v["op"] for v in vals if v["collection"] == "_changetrail.context")
    assert kinds == ["context_begin", "context_end"]


def test_anonymous_request_has_no_user(producer, topic, reader):
    def view(request):
        Tag.objects.create(name="anon")
        return HttpResponse("ok")

    req = RequestFactory().get("/tags/")
    ctd.ChangetrailMiddleware(view)(req)
    producer.flush(10)
    tag = [m["value"] for m in reader.read(topic, expect=3) if m["value"]["collection"] == "ctapp.tag"]
    assert len(tag) == 1
    assert tag[0]["context"]["metadata"] == {"method": "GET", "url": "/tags/"}
    assert "actor" not in tag[0]


def test_settings_entry_with_exclude_and_include():
    """CHANGETRAIL["MODELS"] entries as dicts: exclude / include per model; the primary key always stays."""
    ctd.track_models([{"model": "ctapp.Tag", "exclude": ["name"]}])
    try:
        assert ctd.serialize(Tag(pk=3, name="x")) == {"id": 3}
    finally:
        ctd.untrack(Tag)
    ctd.track_models([{"model": "ctapp.Article", "include": ["title"]}])
    try:
        assert ctd.serialize(Article(pk=4, title="t", secret="s")) == {"id": 4, "title": "t"}
    finally:
        ctd.untrack(Article)
    assert "secret" in ctd.serialize(Article(pk=4, title="t", secret="s"))  # untracked: every field
