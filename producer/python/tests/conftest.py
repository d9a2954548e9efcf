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
