"""changetrail.django end to end: Django (SQLite in memory, tests/ctapp) ->
the binding -> the real broker -> the consumer daemon -> MongoDB -> read back
with instance.history and the admin's History page (Django's test client).

- a rolled-back transaction (and a rolled-back savepoint) emits nothing;
- values as stored: a Product created relying on Decimal/date/JSON/UUID
  defaults, reloaded and saved with one field changed, records that field alone;
- QuerySet.update(), bulk_create() and bulk_update() in a view are recorded in
  the request's context, with the user as actor;
- instance.history.as_of(T) gives the field values at T;
- the admin History page shows the change with user and URL; a screenshot of
  it in headless Chromium is kept in docs/img/django-admin-history.png when
  CT_SCREENSHOT=1 (and Chromium, chromedriver, selenium are there).
"""
import datetime
import decimal
import os
import time
import uuid

import pytest

django = pytest.importorskip("django")

from django.contrib.auth.models import User  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402

import changetrail.django as ctd  # noqa: E402
from changetrail import Producer, history  # noqa: E402
from ctapp.models import Product  # noqa: E402


@pytest.fixture
def setup(pipeline):
    p = Producer(pipeline.producer_config())
    ctd.set_producer(p)
    h = history.set_default(pipeline.db)
    qs = Product.objects.all()
    qs._raw_delete(qs.db)  # what the tests before left, without events
    yield p, h
    history.set_default(None)
    ctd.set_producer(None)
    p.close()


def _now():
    time.sleep(0.05)
    t = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.05)
    return t


def _product_events(reader, topic, expect):
    return [m["value"] for m in reader.read(topic, expect=expect, timeout=5)
            if m["value"]["collection"] == "ctapp.product"]


def test_rollback_emits_nothing_and_savepoints(setup, pipeline, reader):
    p, _ = setup
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Product.objects.create(sku="RB-0", stock=1)
            raise RuntimeError("rolled back")
    with transaction.atomic():
        Product.objects.create(sku="SP-1", stock=1)
        try:
            with transaction.atomic():  # a savepoint, rolled back
                Product.objects.create(sku="SP-2", stock=2)
                raise RuntimeError("savepoint rolled back")
        except RuntimeError:
            pass
        # nothing is sent before the commit
        p.flush(5)
        assert p.stats()["emitted"] == 0
    assert Client().get("/rollback/").status_code == 200
    p.flush(10)
    evs = _product_events(reader, pipeline.topic, expect=1)
    assert [(e["op"], e["after"]["sku"]) for e in evs] == [("insert", "SP-1")], evs
    assert not Product.objects.filter(sku__in=["RB-0", "SP-2", "RB-1"]).exists()


def test_values_as_stored(setup, pipeline, reader):
    p, h = setup
    Product.objects.create(sku="N-1", stock=3)          # price, available, attrs, ref: defaults
    obj = Product.objects.get(sku="N-1")
    obj.stock = 4
    obj.save()
    obj = Product.objects.get(sku="N-1")
    obj.price = 0                                        # the same value, assigned as an int
    obj.available = "2024-01-01"
    obj.attrs = {"sizes": [1, 2], "colour": "red"}
    obj.ref = "12345678123456781234567812345678"
    obj.internal_note = "excluded"
    obj.save()                                           # changes nothing that is tracked
    p.flush(10)
    evs = _product_events(reader, pipeline.topic, expect=2)
    assert [e["op"] for e in evs] == ["insert", "update"], evs
    assert evs[0]["after"] == {"id": obj.pk, "sku": "N-1", "stock": 3, "price": "0.00", "available": "2024-01-01",
                               "attrs": {"colour": "red", "sizes": [1, 2]},
                               "ref": "12345678-1234-5678-1234-567812345678"}
    pipeline.drain()
    log = h.log("ctapp.product", obj.pk)
    assert [r["version"] for r in log] == [2, 1]
    assert log[0]["changes"] == [{"op": "change", "path": ["stock"], "from": 3, "to": 4}]
    assert log[0]["diff"] == [("change", "stock", (3, 4))]


def test_bulk_paths_in_the_request_context(setup, pipeline):
    p, h = setup
    User.objects.filter(username="alice").delete()
    User.objects.create_user("alice", password="pw")
    c = Client()
    assert c.login(username="alice", password="pw")
    r = c.post("/bulk/?from=test", HTTP_X_REQUEST_ID="req-42",
               HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert r.status_code == 200 and r.content == b"2"
    p.flush(10)
    pipeline.drain()
    b1, b2 = (Product.objects.get(sku=s) for s in ("B-1", "B-2"))
    l1, l2 = h.log("ctapp.product", b1.pk), h.log("ctapp.product", b2.pk)
    assert [r["op"] for r in l1] == ["update", "update", "insert"]   # create, update(), bulk_update()
    assert [r["op"] for r in l2] == ["update", "insert"]             # bulk_update() left B-2 as it was
    assert l1[1]["changes"] == [{"op": "change", "path": ["stock"], "from": 1, "to": 10}]
    assert l1[0]["changes"] == [{"op": "change", "path": ["stock"], "from": 10, "to": 11}]
    ctx_ids = {r["context_id"] for r in l1 + l2}
    assert len(ctx_ids) == 1 and None not in ctx_ids
    assert {r["actor"] for r in l1 + l2} == {"alice"}
    ctx = h.context(ctx_ids.pop())
    assert ctx["metadata"] == {"method": "POST", "url": "/bulk/?from=test", "user": "alice",
                               "request_id": "req-42",
                               "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                               "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert len(ctx["records"]) == 5


def test_instance_history_as_of_and_admin_page(setup, pipeline):
    p, h = setup
    User.objects.filter(username="admin").delete()
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    c = Client()
    assert c.login(username="admin", password="pw")
    t0 = _now()
    obj = Product.objects.create(sku="H-1", stock=5, price=decimal.Decimal("9.5"))
    t1 = _now()
    r = c.post(f"/admin/ctapp/product/{obj.pk}/change/",
               {"sku": "H-1", "stock": "6", "price": "12.00", "available": "2024-02-01",
                "attrs": '{"colour": "blue", "sizes": [1, 2]}', "ref": str(obj.ref), "internal_note": "n"})
    assert r.status_code == 302, r.content[:2000]
    t2 = _now()
    p.flush(10)
    pipeline.drain()

    obj.refresh_from_db()
    assert obj.stock == 6
    assert len(obj.history) == 2 and obj.history.most_recent()["actor"] == "admin"
    then = obj.history.as_of(t1)
    assert isinstance(then, Product) and then._state.adding and then.pk == obj.pk
    assert (then.stock, then.price, then.available, then.attrs) == (
        5, decimal.Decimal("9.50"), datetime.date(2024, 1, 1), {"colour": "red", "sizes": [1, 2]})
    assert then.ref == uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert obj.history.as_of(t2).stock == 6 and obj.history.version(1).stock == 5
    with pytest.raises(Product.DoesNotExist):
        obj.history.as_of(t0)
    assert Product.history(obj.pk).as_of(t2).price == decimal.Decimal("12.00")

    page = c.get(f"/admin/ctapp/product/{obj.pk}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="changetrail-record"') == 2
    assert '<td class="changetrail-actor">admin</td>' in html
    assert f"POST <code>/admin/ctapp/product/{obj.pk}/change/</code>" in html
    for cell in ("<td>stock</td><td>5</td><td>6</td>", "<td>price</td><td>9.50</td><td>12.00</td>",
                 "<td>attrs.colour</td><td>red</td><td>blue</td>",
                 "<td>available</td><td>2024-01-01</td><td>2024-02-01</td>"):
        assert cell in html, cell
    # a user without the view permission sees no history
    User.objects.filter(username="staff").delete()
    User.objects.create_user("staff", password="pw", is_staff=True)
    other = Client()
    assert other.login(username="staff", password="pw")
    assert other.get(f"/admin/ctapp/product/{obj.pk}/history/").status_code == 403
    state = c.get(f"/admin/ctapp/product/{obj.pk}/history/?version=1").content.decode()
    assert "State at version 1" in state and "<th>stock</th><td>5</td>" in state
    if os.environ.get("CT_SCREENSHOT") == "1":
        screenshot(html, os.environ.get("CT_SCREENSHOT_PATH") or os.path.join(
            os.path.dirname(__file__), "..", "..", "..", "docs", "img", "django-admin-history.png"))


def screenshot(html, path):
    """The page in headless Chromium (its CSS from Django's admin static files)."""
    import shutil
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    static = os.path.join(os.path.dirname(django.__file__), "contrib", "admin", "static")
    html = html.replace('"/static/', '"file://' + static + "/")
    d = tempfile.mkdtemp(prefix="ct-shot-")
    try:
        page = os.path.join(d, "history.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(html)
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  f"--user-data-dir={d}/profile", "--window-size=1280,760", "--allow-file-access-from-files"):
            opts.add_argument(a)
        drv = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
        try:
            drv.get("file://" + page)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            assert drv.save_screenshot(os.path.abspath(path))
        finally:
            drv.quit()
    finally:
        shutil.rmtree(d, ignore_errors=True)
