#!/usr/bin/env python3
"""side_by_side.py - issue #7: changetrail next to the two things users would
use instead, on the same Kafka topics and the same MongoDB server (the local
mongo-java-server of deploy/local/mongodb.sh; sink "mongodb"), in one run:

  ct      changetrail-consumer (--no-write = null sink, or into MongoDB)
  python  tests/bench/peer_python.py: confluent-kafka + dictdiffer + pymongo,
          batched, bulk writes, commit after write (null sink or MongoDB)
  connect Kafka Connect standalone worker + MongoDB sink connector writing
          the raw events into MongoDB (tests/bench/connect.sh resolves it)

and changetrail's replay (`changetrail replay --no-write` and `--into DB`).
Run it through tests/bench/side_by_side.sh (servers, venv, build); it needs
CT_KAFKA_BOOTSTRAP and CT_MONGODB_URI.

What is measured (all systems run one at a time, each as a child process):
- throughput: each system drains the same pre-filled topic (4 partitions,
  N update events on N/10 documents) with its own consumer group and its own
  database. Progress is sampled every 100 ms: for python the group's
  committed offsets (it commits after MongoDB acknowledged each batch), for
  ct the events its /metrics counts as done (history records acknowledged by
  MongoDB, plus duplicates, empty updates and DLQ: ct commits offsets only
  once the states are written too, every state_flush_ms, 2 s by default, so
  its commits are too coarse to time with; the time and CPU until its last
  commit are reported beside), for connect the number of documents in its
  collection (Connect commits offsets on its own timer). The window runs from the first sample with
  progress to the first sample with everything persisted, so start-up (JVM,
  group join) is outside it: events/s = events in the window / its length;
  CPU s per 1k events = process CPU (utime+stime of all threads, from
  /proc/PID/stat) in the window; events per CPU-second = "per core" rate;
  peak RSS = VmHWM of the process at the end of the run.
- latency: a fresh 1-partition topic per system; the system is started and
  waits in its group; then events are produced at a fixed rate, each
  carrying its emit time in `ts`; progress is sampled every 20 ms; event k
  (offset k) is persisted at the first sample whose progress exceeds k.
  emit-to-persist = that sample time - emit time (p50, p99). Resolution is
  the sampling period; commit-based progress includes the commit round trip.
- replay: `changetrail replay` from earliest into a null sink and into
  MongoDB; the events done by the consumer it runs (its /metrics, served on
  `--metrics-listen 127.0.0.1:<free port>`) sampled every 50 ms; the rate of each tenth of
  the run (the first tenth from the first sample with progress); the end is
  when the replay's own progress (committed offsets) reached every event.

Prints markdown tables; --json FILE keeps every figure.
"""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
BOOT = os.environ.get("CT_KAFKA_BOOTSTRAP", "")
URI = os.environ.get("CT_MONGODB_URI", "")
RUN = time.strftime("%H%M%S", time.gmtime()) + str(os.getpid() % 1000)
WORK = ""  # per-run directory for configs and logs


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the events

def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Filler:
    """Update events on n/10 documents of ~doc_bytes (after), keys collection/id."""

    def __init__(self, doc_bytes, linger_ms=20):
        base = len('{"sku":"S-99999","qty":99999,"price":{"amount":99999.5,"currency":"EUR"},'
                   '"tags":["a","b"],"notes":""}')
        self.pad = "".join(chr(97 + i % 26) for i in range(max(doc_bytes - base, 0)))
        self.ms = int(time.time() * 1000)
        self.rid = os.getpid() & 0xfff
        self.p = Producer({"bootstrap.servers": BOOT, "linger.ms": linger_ms, "enable.idempotence": True,
                           "queue.buffering.max.messages": 200000, "queue.buffering.max.kbytes": 1048576})

    def event(self, i, docs, now):
        d, v = i % docs, i // docs
        ms = self.ms
        return ("items/d%d" % d,
                '{"schema":"changetrail.event.v1","event_id":"%08x-%04x-7%03x-8%03x-%012x","ts":"%s",'
                '"source":"bench","collection":"items","document_id":"d%d","op":"%s","actor":"bench",'
                '"after":{"sku":"S-%d","qty":%d,"price":{"amount":%d.5,"currency":"EUR"},"tags":["a","b"],'
                '"notes":"%s"}}' % (ms >> 16, ms & 0xffff, self.rid, (i >> 48) & 0xfff, i & 0xffffffffffff,
                                    rfc3339(now), d, "update" if v else "insert", d, v, v, self.pad))

    def produce(self, topic, k, v):
        while True:
            try:
                self.p.produce(topic, v.encode(), k.encode())
                return
            except BufferError:
                self.p.poll(0.01)

    def fill(self, topic, n):
        docs = max(n // 10, 1)
        t = time.time()
        for i in range(n):
            if i % 1000 == 0:
                t = time.time()
                self.p.poll(0)
            self.produce(topic, *self.event(i, docs, t))
        self.p.flush(120)

    def paced(self, topic, n, rate):
        """n events at `rate`/s; returns their emit times (wall clock, = their ts)."""
        docs = max(n // 10, 1)
        emit, t0 = [], time.time() + 0.05
        for i in range(n):
            due = t0 + i / rate
            d = due - time.time()
            if d > 0:
                time.sleep(d)
            now = time.time()
            self.produce(topic, *self.event(i, docs, now))
            self.p.poll(0)
            emit.append(now)
        self.p.flush(60)
        return emit


def create_topic(name, partitions):
    a = AdminClient({"bootstrap.servers": BOOT})
    for f in a.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(30)
    time.sleep(0.5)


def delete_topics(names):
    if names:
        a = AdminClient({"bootstrap.servers": BOOT})
        for f in a.delete_topics(names).values():
            try:
                f.result(30)
            except Exception as e:  # noqa: BLE001 - cleanup only
                log("delete topic:", e)


# ---------------------------------------------------------------- progress

class Committed:
    def __init__(self, group, topic, partitions):
        self.c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False})
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]

    def __call__(self):
        try:
            return sum(max(tp.offset, 0) for tp in self.c.committed(self.tps, timeout=5))
        except Exception:  # noqa: BLE001 - a transient failure is a missed sample
            return None

    def close(self):
        self.c.close()


class Count:
    def __init__(self, db, coll):
        from pymongo import MongoClient
        self.cl = MongoClient(URI, serverSelectionTimeoutMS=3000)
        self.coll = self.cl[db][coll]

    def __call__(self):
        try:
            return self.coll.estimated_document_count()
        except Exception:  # noqa: BLE001
            return None

    def close(self):
        self.cl.close()


class Metrics:
    """Events a changetrail-consumer is done with, from its /metrics."""
    DONE = ("persisted", "duplicate", "empty", "dlq")

    def __init__(self, port):
        self.port = port

    def __call__(self):
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except Exception:  # noqa: BLE001 - not up yet, or gone: a missed sample
            return None
        got = dict(re.findall(r'^changetrail_events_total\{result="(\w+)"\} (\d+)$', text, re.M))
        return sum(int(got.get(k, 0)) for k in self.DONE) if got else None

    def close(self):
        pass


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError):
        return None


def proc_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Sampler(threading.Thread):
    def __init__(self, pid, progress, period):
        super().__init__(daemon=True)
        self.pid, self.progress, self.period = pid, progress, period
        self.samples, self.hwm, self.halt = [], None, threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.time()
            p = self.progress()
            cpu = proc_cpu(self.pid)
            h = proc_hwm_kb(self.pid)
            if h:
                self.hwm = h
            if p is not None:
                self.samples.append((t, p, cpu))
            self.halt.wait(max(self.period - (time.time() - t), 0.001))

    def reached(self, n):
        return bool(self.samples) and self.samples[-1][1] >= n


# ---------------------------------------------------------------- the systems

def ct_bin(name):
    return os.path.join(ARGS.build_dir, "consumer" if name == "changetrail-consumer" else "cli", name)


def ct_config(topic, group, db, no_write, port=None):
    path = os.path.join(WORK, f"{group}.ini")
    listen = f"127.0.0.1:{port}" if port else ""
    with open(path, "w") as f:
        f.write(f"[kafka]\nbootstrap.servers = {BOOT}\n[mongodb]\nuri = {URI}\ndatabase = {db}\n"
                f"[consumer]\ntopic = {topic}\ndlq_topic = {topic}.dlq\ngroup_id = {group}\nbatch_size = 500\n"
                f"batch_ms = 200\nno_write = {'true' if no_write else 'false'}\n[http]\nlisten = {listen}\n")
    return path


def start(system, sink, topic, tag):
    """Starts one system on topic; returns (Popen, group, db, log file, metrics port of ct)."""
    group = f"sbs-{RUN}-{system}-{sink}-{tag}"
    db = f"sbs_{RUN}_{system}_{tag}".replace("-", "_")
    logf = open(os.path.join(WORK, f"{group}.log"), "w")
    port = None
    if system == "ct":
        port = free_port()
        cfg = ct_config(topic, group, db, sink == "null", port)
        cmd = [ct_bin("changetrail-consumer"), "--config", cfg]
    elif system == "python":
        cmd = [sys.executable, os.path.join(HERE, "peer_python.py"), "--bootstrap", BOOT, "--topic", topic,
               "--group", group, "--uri", URI, "--db", db] + (["--null-sink"] if sink == "null" else [])
    elif system == "connect":
        cmd, group = connect_cmd(topic, group, db)
    else:
        raise ValueError(system)
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    return p, group, db, logf, port


def connect_cmd(topic, name, db):
    libs = os.environ.get("CT_CONNECT_LIBS", "")
    if not libs or not os.path.isdir(libs):
        raise RuntimeError("CT_CONNECT_LIBS is not set (tests/bench/connect.sh install prints it)")
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    worker = os.path.join(d, "worker.properties")
    with open(worker, "w") as f:
        f.write(f"""bootstrap.servers={BOOT}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
offset.storage.file.filename={d}/connect.offsets
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:{ARGS.connect_rest_port}
plugin.discovery=hybrid_warn
consumer.max.poll.records=500
consumer.fetch.min.bytes=1
consumer.fetch.max.wait.ms=100
consumer.auto.offset.reset=earliest
""")
    conn = os.path.join(d, "mongo-sink.properties")
    with open(conn, "w") as f:
        f.write(f"""name={name}
connector.class=com.mongodb.kafka.connect.MongoSinkConnector
tasks.max={ARGS.connect_tasks}
topics={topic}
connection.uri={URI}
database={db}
collection=events
max.batch.size=500
bulk.write.ordered=false
writemodel.strategy=com.mongodb.kafka.connect.sink.writemodel.strategy.InsertOneDefaultStrategy
errors.tolerance=none
""")
    log4j = os.path.join(d, "log4j2.properties")
    with open(log4j, "w") as f:
        f.write("status = error\nappender.out.type = Console\nappender.out.name = STDOUT\n"
                "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n"
                "rootLogger.level = INFO\nrootLogger.appenderRef.out.ref = STDOUT\n")
    # connect-standalone.sh's heap and kafka-run-class.sh's JVM flags
    cmd = ["java", "-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
           "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={log4j}", "-cp", os.path.join(libs, "*"),
           "org.apache.kafka.connect.cli.ConnectStandalone", worker, conn]
    return cmd, "connect-" + name


def progress_of(system, group, db, topic, partitions, port=None):
    if system == "connect":
        return Count(db, "events")
    if system == "ct":
        return Metrics(port)
    return Committed(group, topic, partitions)


def stop(p, logf, timeout=60):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"pid {p.pid} still alive after {timeout}s: SIGKILL")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    logf.close()


def drop_db(db):
    from pymongo import MongoClient
    cl = MongoClient(URI, serverSelectionTimeoutMS=3000)
    try:
        cl.drop_database(db)
    except Exception as e:  # noqa: BLE001 - cleanup only
        log("drop", db, e)
    cl.close()


def wait_in_group(group, timeout=90):
    a = AdminClient({"bootstrap.servers": BOOT})
    end = time.time() + timeout
    while time.time() < end:
        try:
            g = a.describe_consumer_groups([group])[group].result(10)
            if str(g.state).endswith("STABLE") and any(m.assignment.topic_partitions for m in g.members):
                return True
        except Exception:  # noqa: BLE001 - group not there yet
            pass
        time.sleep(0.2)
    return False


def throughput(system, sink, topic, n, partitions, tag):
    log(f"throughput: {system} -> {sink}, {n} events, topic {topic}")
    p, group, db, logf, port = start(system, sink, topic, tag)
    prog = progress_of(system, group, db, topic, partitions, port)
    s = Sampler(p.pid, prog, 0.1)
    s.start()
    end = time.time() + ARGS.timeout
    while not s.reached(n) and p.poll() is None and time.time() < end:
        time.sleep(0.1)
    time.sleep(0.15)
    s.halt.set()
    s.join()
    commit_t = commit_cpu = None
    if system == "ct" and s.reached(n):
        # ct's progress is history acknowledged; its offsets follow with the
        # next state write: time that too, so both figures are on record.
        com = Committed(group, topic, partitions)
        while p.poll() is None and time.time() < end:
            c = com()
            if c is not None and c >= n:
                commit_t, commit_cpu = time.time(), proc_cpu(p.pid)
                break
            time.sleep(0.05)
        com.close()
    hwm = s.hwm
    ok = s.reached(n)
    stop(p, logf)
    prog.close()
    if sink == "mongodb":
        drop_db(db)
    row = {"system": system, "sink": sink, "events": n, "tag": tag, "ok": ok, "peak_rss_mb": (hwm or 0) / 1024}
    smp = [x for x in s.samples if x[2] is not None]
    first = next((x for x in smp if x[1] > 0), None)
    last = next((x for x in smp if x[1] >= n), None)
    if first is last:  # all in one sample period (tiny runs): from the last sample without progress
        first = next((x for x in reversed(smp) if x[1] == 0), None)
    if not ok or not first or not last or last[0] <= first[0]:
        log(f"  {system}/{sink}: did not finish ({smp[-1][1] if smp else 0}/{n}); log {logf.name}")
        row["ok"] = False
        return row
    done = last[1] - first[1]
    cpu = last[2] - first[2]
    row.update(events_per_s=done / (last[0] - first[0]), cpu_s_per_1k=cpu / done * 1000,
               events_per_cpu_s=done / cpu if cpu > 0 else None, window_events=done)
    if commit_t and commit_cpu is not None:
        row.update(events_per_s_committed=done / (commit_t - first[0]),
                   cpu_s_per_1k_committed=(commit_cpu - first[2]) / done * 1000)
    log("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return row


def latency(system, sink, doc_bytes, n, rate, tag):
    topic = f"sbs-{RUN}-lat-{system}-{sink}-{tag}"
    create_topic(topic, 1)
    TOPICS.append(topic)
    log(f"latency: {system} -> {sink}, {n} events at {rate}/s, topic {topic}")
    p, group, db, logf, port = start(system, sink, topic, "lat" + tag)
    row = {"system": system, "sink": sink, "tag": tag, "rate": rate, "events": n, "ok": False}
    if not wait_in_group(group):
        log(f"  {system}: never joined its group; log {logf.name}")
        stop(p, logf)
        return row
    time.sleep(1.0)
    prog = progress_of(system, group, db, topic, 1, port)
    s = Sampler(p.pid, prog, 0.02)
    s.start()
    emit = Filler(doc_bytes, linger_ms=5).paced(topic, n, rate)
    end = time.time() + ARGS.timeout
    while not s.reached(n) and p.poll() is None and time.time() < end:
        time.sleep(0.05)
    s.halt.set()
    s.join()
    stop(p, logf)
    prog.close()
    if sink == "mongodb":
        drop_db(db)
    if not s.reached(n):
        log(f"  {system}: persisted {s.samples[-1][1] if s.samples else 0}/{n}; log {logf.name}")
        return row
    lat, j = [], 0
    smp = s.samples
    for k in range(n):
        while smp[j][1] <= k:
            j += 1
        lat.append((smp[j][0] - emit[k]) * 1000)
    lat.sort()
    row.update(ok=True, p50_ms=lat[len(lat) // 2], p99_ms=lat[min(int(len(lat) * 0.99), len(lat) - 1)])
    log(f"  p50={row['p50_ms']:.1f} ms p99={row['p99_ms']:.1f} ms")
    return row


def replay(topic, n, sink, partitions, tag):
    log(f"replay: -> {sink}, {n} events, topic {topic}")
    live = f"sbs_{RUN}_live"
    cfg = ct_config(topic, f"sbs-{RUN}-replay-{sink}-{tag}", live, False)
    into = f"sbs_{RUN}_replay_{tag}"
    cmd = [ct_bin("changetrail"), "replay", "--config", cfg, "--from", "earliest", "--topic", topic,
           "--idle-ms", "2000"] + (["--no-write"] if sink == "null" else ["--into", into])
    logpath = os.path.join(WORK, f"replay-{sink}-{tag}.log")
    # the consumer replay runs gets no CHANGETRAIL_* variables: its /metrics only through --metrics-listen
    port = free_port()
    cmd += ["--metrics-listen", f"127.0.0.1:{port}"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    first = p.stderr.readline()
    m = re.search(r"\(group (\S+)\)", first)
    row = {"system": "ct replay", "sink": sink, "events": n, "tag": tag, "ok": False}
    if not m:
        log("  replay did not start:", first.strip())
        stop(p, open(logpath, "w"))
        return row
    rest = []
    t = threading.Thread(target=lambda: rest.extend(p.stderr), daemon=True)
    t.start()
    prog = Metrics(port)
    s = Sampler(p.pid, prog, 0.05)
    s.start()
    end = time.time() + ARGS.timeout
    while not s.reached(n) and p.poll() is None and time.time() < end:
        time.sleep(0.05)
    s.halt.set()
    s.join()
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait()
    t.join(5)
    with open(logpath, "w") as f:
        f.write(first + "".join(rest))
    prog.close()
    if sink == "mongodb":
        drop_db(into)
        drop_db(live)
    smp = s.samples
    if not s.reached(n):
        log(f"  replay: {smp[-1][1] if smp else 0}/{n}; log {logpath}")
        return row
    # time each tenth was reached; the first tenth is timed from the first progress, or, when everything
    # came in one sample period (tiny runs), from the last sample without progress, as throughput() does
    first_s = next(x for x in smp if x[1] > 0)
    if first_s[1] >= n:
        first_s = next((x for x in reversed(smp) if x[1] == 0), first_s)
    marks = [first_s]
    for k in range(1, 11):
        marks.append(next(x for x in smp if x[1] >= n * k / 10))
    rates = []
    for k in range(1, 11):
        a, b = marks[k - 1], marks[k]
        rates.append((b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else None)
    steady = [r for r in rates[1:] if r]
    mean = statistics.mean(steady) if steady else 0
    span = marks[10][0] - first_s[0]  # 0: finished before the first sample with its metrics: no rate to give
    row.update(ok=True, events_per_s=(marks[10][1] - first_s[1]) / span if span > 0 else None, tenths=rates,
               max_dev_10_100=max(abs(r - mean) / mean for r in steady) if mean else None)
    log(f"  {fmt(row['events_per_s'], '.0f')} events/s; tenths " + " ".join(f"{r:.0f}" if r else "-" for r in rates))
    return row


# ---------------------------------------------------------------- report

def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def report(res):
    out = []
    out.append("| system | sink | doc | events | events/s | CPU s / 1k events | events per CPU-s | peak RSS MB |"
               " p50 ms | p99 ms | ct: events/s, CPU s / 1k to the last commit |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    lat = {(r["system"], r["sink"], r["tag"]): r for r in res["latency"] if r.get("ok")}
    for r in res["throughput"]:
        size = r["tag"].split("-")[0]
        lr = lat.get((r["system"], r["sink"], size), {}) if r["tag"].endswith("-main") else {}
        if not r.get("ok"):
            out.append(f"| {r['system']} | {r['sink']} | {size} | {r['events']} | did not finish | | | | | | |")
            continue
        out.append(f"| {r['system']} | {r['sink']} | {size} | {r['events']} | {r['events_per_s']:.0f} |"
                   f" {r['cpu_s_per_1k']:.3f} | {fmt(r.get('events_per_cpu_s'), '.0f')} | {r['peak_rss_mb']:.0f} |"
                   f" {fmt(lr.get('p50_ms'), '.0f')} | {fmt(lr.get('p99_ms'), '.0f')} |"
                   + (f" {r['events_per_s_committed']:.0f}, {r['cpu_s_per_1k_committed']:.3f} |"
                      if "events_per_s_committed" in r else " - |"))
    if res["replay"]:
        out.append("")
        out.append("| replay into | doc | events | events/s | rate of each tenth of the run (events/s) |"
                   " max deviation 10%..100% |")
        out.append("|---|---|---|---|---|---|")
        for r in res["replay"]:
            if not r.get("ok"):
                out.append(f"| {r['sink']} | {r['tag']} | {r['events']} | did not finish | | |")
                continue
            dev = r["max_dev_10_100"]
            out.append(f"| {r['sink']} | {r['tag'].split('-')[0]} | {r['events']} | {fmt(r['events_per_s'], '.0f')} | "
                       + " ".join(fmt(x, ".0f") for x in r["tenths"])
                       + (f" | {100 * dev:.1f}% |" if dev is not None else " | - |"))
    out.append("")
    out.append(targets(res))
    return "\n".join(out)


def targets(res):
    def get(system, sink, size="1KB"):
        for r in res["throughput"]:
            if r["system"] == system and r["sink"] == sink and r["tag"] == f"{size}-main" and r.get("ok"):
                return r
        return None
    lines = ["Targets (issue #7):"]
    ct_n, py_n = get("ct", "null"), get("python", "null")
    if ct_n and py_n and ct_n.get("events_per_cpu_s") and py_n.get("events_per_cpu_s"):
        x = ct_n["events_per_cpu_s"] / py_n["events_per_cpu_s"]
        lines.append(f"- per core, ct >= 4x python at 1 KB into a null sink: {x:.1f}x -> {'MET' if x >= 4 else 'NOT MET'}")
    ct_f = get("ct", "mongodb")
    peers = [r for r in (get("python", "mongodb"), get("connect", "mongodb")) if r]
    if ct_f and peers and all(r["cpu_s_per_1k"] > 0 for r in peers):
        best = max(peers, key=lambda r: r["events_per_s"])
        tp = ct_f["events_per_s"] / best["events_per_s"]
        cpu = ct_f["cpu_s_per_1k"] / best["cpu_s_per_1k"]
        lines.append(f"- into MongoDB (the local mongo-java-server), the best peer's throughput "
                     f"({best['system']}, {best['events_per_s']:.0f}/s) "
                     f"at <= 1/3 of its CPU: ct {ct_f['events_per_s']:.0f}/s = {tp:.2f}x, CPU per event "
                     f"{cpu:.2f}x -> {'MET' if tp >= 0.95 and cpu <= 1 / 3 else 'NOT MET'}")
        if "events_per_s_committed" in ct_f:
            tpc = ct_f["events_per_s_committed"] / best["events_per_s"]
            cpuc = ct_f["cpu_s_per_1k_committed"] / best["cpu_s_per_1k"]
            lines.append(f"  (to ct's last commit, its states written: {ct_f['events_per_s_committed']:.0f}/s = "
                         f"{tpc:.2f}x, CPU per event {cpuc:.2f}x -> "
                         f"{'MET' if tpc >= 0.95 and cpuc <= 1 / 3 else 'NOT MET'})")
    kc = get("connect", "mongodb")
    if ct_f and kc and ct_f.get("events_per_cpu_s") and kc.get("events_per_cpu_s") and kc["peak_rss_mb"]:
        x = ct_f["events_per_cpu_s"] / kc["events_per_cpu_s"]
        m = ct_f["peak_rss_mb"] / kc["peak_rss_mb"]
        lines.append(f"- >= Kafka Connect's per-core rate (with diffs) at <= 10% of its memory: per core {x:.2f}x, "
                     f"RSS {100 * m:.1f}% -> rate {'MET' if x >= 1 else 'NOT MET'}, memory "
                     f"{'MET' if m <= 0.10 else 'NOT MET'}")
    for r in res["replay"]:
        if r.get("ok") and r["max_dev_10_100"] is not None:
            lines.append(f"- replay {r['sink']} {r['events']} events flat within 10% from 10% to 100%: max deviation "
                         f"{100 * r['max_dev_10_100']:.1f}% -> {'MET' if r['max_dev_10_100'] <= 0.10 else 'NOT MET'}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main():
    global ARGS, WORK, TOPICS
    ap = argparse.ArgumentParser(description="changetrail vs a Python peer vs Kafka Connect (issue #7)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (< 2 minutes): proves the harness works")
    ap.add_argument("--sizes", default="1024,4096", help="document sizes in bytes")
    ap.add_argument("--n-null", type=int, default=100000, help="events for the null-sink runs")
    ap.add_argument("--n-db", type=int, default=20000, help="events for the MongoDB runs")
    ap.add_argument("--n-big", type=int, default=1000000, help="events of the large 1 KB null-sink and replay run (0: none)")
    ap.add_argument("--lat-n", type=int, default=3000)
    ap.add_argument("--lat-rate", type=int, default=300, help="events/s of the latency runs (below every system's capacity)")
    ap.add_argument("--systems", default="ct,python,connect")
    ap.add_argument("--big-systems", default="ct,python", help="null-sink systems also run at --n-big")
    ap.add_argument("--connect-tasks", type=int, default=2)
    ap.add_argument("--connect-rest-port", type=int, default=int(os.environ.get("CT_CONNECT_PORT", "31083")))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds one system may take")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", help="write every figure to this file")
    ARGS = ap.parse_args()
    if ARGS.smoke:
        ARGS.n_null, ARGS.n_db, ARGS.n_big, ARGS.lat_n, ARGS.lat_rate = 2000, 1000, 0, 200, 200
        ARGS.sizes = "1024"
    if not BOOT or not URI:
        sys.exit("side_by_side: CT_KAFKA_BOOTSTRAP and CT_MONGODB_URI must be set (tests/bench/side_by_side.sh)")
    systems = ARGS.systems.split(",")
    WORK = tempfile.mkdtemp(prefix=f"ct-sbs-{RUN}-")
    TOPICS = []
    log(f"run {RUN}, logs in {WORK}")
    res = {"run": RUN, "args": vars(ARGS), "throughput": [], "latency": [], "replay": []}
    try:
        for size in [int(x) for x in ARGS.sizes.split(",")]:
            tag = f"{size // 1024}KB" if size % 1024 == 0 else f"{size}B"
            t_null, t_db = f"sbs-{RUN}-null-{tag}", f"sbs-{RUN}-db-{tag}"
            for t, n in ((t_null, ARGS.n_null), (t_db, ARGS.n_db)):
                create_topic(t, 4)
                TOPICS.append(t)
                t0 = time.time()
                Filler(size).fill(t, n)
                log(f"filled {t}: {n} events of ~{size} B in {time.time() - t0:.1f}s")
            for system in systems:
                if system != "connect":
                    res["throughput"].append(throughput(system, "null", t_null, ARGS.n_null, 4, f"{tag}-main"))
            for system in systems:
                res["throughput"].append(throughput(system, "mongodb", t_db, ARGS.n_db, 4, f"{tag}-main"))
            for system in systems:
                for sink in (("null", "mongodb") if system != "connect" else ("mongodb",)):
                    res["latency"].append(latency(system, sink, size, ARGS.lat_n, ARGS.lat_rate, tag))
            if tag == "1KB":
                res["replay"].append(replay(t_null, ARGS.n_null, "null", 4, f"{tag}"))
                res["replay"].append(replay(t_db, ARGS.n_db, "mongodb", 4, f"{tag}"))
        if ARGS.n_big:
            t_big = f"sbs-{RUN}-big-1KB"
            create_topic(t_big, 4)
            TOPICS.append(t_big)
            t0 = time.time()
            Filler(1024).fill(t_big, ARGS.n_big)
            log(f"filled {t_big}: {ARGS.n_big} events in {time.time() - t0:.1f}s")
            for system in ARGS.big_systems.split(","):
                if system in systems:
                    res["throughput"].append(throughput(system, "null", t_big, ARGS.n_big, 4, "1KB-big"))
            res["replay"].append(replay(t_big, ARGS.n_big, "null", 4, "1KB-big"))
    finally:
        delete_topics(TOPICS)
    text = report(res)
    print(text)
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(res, f, indent=1)
    bad = [r for r in res["throughput"] + res["latency"] + res["replay"] if not r.get("ok")]
    if bad:
        log(f"{len(bad)} measurement(s) did not finish; logs in {WORK}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
