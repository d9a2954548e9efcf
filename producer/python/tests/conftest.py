"""Fixtures of the changetrail binding's tests.

The tests run the binding against the real broker named by CT_KAFKA_BOOTSTRAP
(deploy/local/services.sh env). Without it the broker tests are skipped,
unless CT_TEST_REQUIRE_SERVERS=1, when they fail. libchangetrail.so comes from
CHANGETRAIL_LIB (ctest passes the built one).
"""
import os
import time
import uuid

import pytest


@pytest.fixture(scope="session")
def bootstrap():
    bs = os.environ.get("CT_KAFKA_BOOTSTRAP")
    if not bs:
        if os.environ.get("CT_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail("CT_KAFKA_BOOTSTRAP is not set and CT_TEST_REQUIRE_SERVERS=1")
        pytest.skip("CT_KAFKA_BOOTSTRAP not set (eval \"$(deploy/local/services.sh env)\")")
    return bs


@pytest.fixture
def topic():
    return f"ct-py-{uuid.uuid4().hex[:12]}"


class TopicReader:
    """Reads every message of a topic from the beginning with confluent-kafka."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def read(self, topic, expect, timeout=20.0):
        import json

        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"ct-py-reader-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            md = c.list_topics(topic, timeout=10)
            parts = sorted(md.topics[topic].partitions)
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            out, deadline = [], time.monotonic() + timeout
            while len(out) < expect and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    raise RuntimeError(str(m.error()))
                out.append({"key": m.key().decode(), "headers": dict(m.headers() or []),
                            "value": json.loads(m.value()), "partition": m.partition(),
                            "offset": m.offset()})
            # a short drain, so that unexpected extra messages are seen too
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    out.append({"key": m.key().decode(), "headers": dict(m.headers() or []),
                                "value": json.loads(m.value()), "partition": m.partition(),
                                "offset": m.offset()})
            return out
        finally:
            c.close()


@pytest.fixture
def reader(bootstrap):
    return TopicReader(bootstrap)


# ------------------------------------------------------------ Django
# One settings for the whole session (settings can be configured once per
# process): the test app, the admin and what it needs, an in-memory SQLite
# database whose tables are made by migrate --run-syncdb.

def pytest_configure(config):
    try:
        import django
    except ImportError:
        return
    from django.conf import settings
    if settings.configured:
        return
    settings.configure(
        INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions", "django.contrib.messages", "ctapp"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware",
                    "changetrail.django.ChangetrailMiddleware"],
        ROOT_URLCONF="ctapp.urls",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                       "django.contrib.auth.context_processors.auth",
                                                       "django.contrib.messages.context_processors.messages"]}}],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True, TIME_ZONE="UTC", SECRET_KEY="test-only", ALLOWED_HOSTS=["testserver"],
        STATIC_URL="/static/", DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    django.setup()
    from django.core.management import call_command
    call_command("migrate", run_syncdb=True, verbosity=0)


# ------------------------------------------------------------ the pipeline
# Events emitted by a test go to its own topic; the real consumer daemon
# (CT_CONSUMER_BIN, ctest passes the built one) writes them into its own
# database on the local MongoDB server (CT_MONGODB_URI), then exits when idle.

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def consumer_binary():
    b = os.environ.get("CT_CONSUMER_BIN")
    if b:
        return b
    return os.path.join(SOURCE, "build", "consumer", "changetrail-consumer")


class Pipeline:
    def __init__(self, bootstrap, uri, topic):
        from pymongo import MongoClient
        self.bootstrap, self.uri, self.topic = bootstrap, uri, topic
        self.database = "ctpy_" + topic.replace("-", "_")
        self.client = MongoClient(uri, serverSelectionTimeoutMS=5000)
        self.db = self.client[self.database]
        self.group = 0

    def producer_config(self, **extra):
        conf = {"source": "pytest", "topic": self.topic, "kafka.bootstrap.servers": self.bootstrap,
                "kafka.linger.ms": 5}
        conf.update(extra)
        return conf

    def drain(self, timeout=120):
        """Runs the consumer over the topic until it is idle (its own group
        each time, so it starts from the beginning; what it wrote before comes
        back as redeliveries and changes nothing)."""
        import subprocess
        import tempfile
        self.group += 1
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
            f.write("[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
                    "topic.metadata.refresh.interval.ms = 1000\n"
                    "[mongodb]\nuri = %s\ndatabase = %s\n"
                    "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s-%d\nbatch_ms = 50\n"
                    "exit_on_idle_ms = 1500\nshutdown_timeout_ms = 10000\nlog_level = warn\n[http]\nlisten =\n"
                    % (self.bootstrap, self.uri, self.database, self.topic, self.topic, self.topic, self.group))
            config = f.name
        try:
            # the daemon reads CHANGETRAIL_* as configuration: not the binding's CHANGETRAIL_LIB
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGETRAIL_")}
            subprocess.run([consumer_binary(), "--config", config], check=True, timeout=timeout, env=env)
        finally:
            os.unlink(config)

    def history(self):
        from changetrail.history import History
        return History(self.db)

    def close(self):
        self.client.drop_database(self.database)
        self.client.close()


@pytest.fixture
def mongodb_uri():
    uri = os.environ.get("CT_MONGODB_URI")
    if not uri:
        if os.environ.get("CT_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail("CT_MONGODB_URI is not set and CT_TEST_REQUIRE_SERVERS=1")
        pytest.skip("CT_MONGODB_URI not set (eval \"$(deploy/local/services.sh env)\")")
    return uri


@pytest.fixture
def pipeline(bootstrap, mongodb_uri, topic):
    pytest.importorskip("pymongo")
    p = Pipeline(bootstrap, mongodb_uri, topic)
    yield p
    p.close()
