#!/usr/bin/env python3
"""nowrite_cpu.py - CPU per event of `changetrail-consumer --no-write` (docs/performance.md,
"the consumer's CPU per event"): fills a topic the way side_by_side.py does (N update events
on N/10 documents of ~doc_bytes, 4 partitions) on the local servers, then runs the daemon
--runs times over it, each with its own consumer group until it is idle for 1 s, and prints
user + system CPU per event (start-up included) and peak RSS of each run, from the kernel's
accounting of the child (wait4), one key=value line per run; and the rate of each tenth of
the run from the daemon's "batch written" log lines, with the largest deviation of tenths
2..10 from their mean (side_by_side.py's flatness measure, taken from the daemon itself).

usage (servers up: eval "$(deploy/local/services.sh env)"; the tests' venv python):
  tests/bench/nowrite_cpu.py [--events 100000] [--doc-bytes 1024] [--runs 5] [--build-dir build]
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import side_by_side as sbs  # noqa: E402  (its Filler and create_topic)


def tenths(logpath):
    """Rates of the ten tenths of the run (events/s) and the largest deviation of 2..10."""
    pts = []
    done = 0
    with open(logpath) as f:
        for line in f:
            if 'msg="batch written"' not in line:
                continue
            ts = datetime.datetime.fromisoformat(re.search(r"ts=(\S+)Z", line).group(1)).timestamp()
            done += int(re.search(r" events=(\d+)", line).group(1))
            pts.append((ts, done))
    if len(pts) < 11:
        return [], None
    rates, prev, k = [], pts[0], 1
    for t, c in pts:
        if c >= done * k / 10:
            rates.append((c - prev[1]) / max(t - prev[0], 1e-3))
            prev, k = (t, c), k + 1
    steady = rates[1:]
    mean = sum(steady) / len(steady)
    return rates, max(abs(r - mean) / mean for r in steady)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--doc-bytes", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build-dir", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--topic", help="drain this already filled topic (kept) instead of a new one")
    ap.add_argument("--keep-topic", action="store_true", help="do not delete the topic filled here")
    ap.add_argument("--kafka", action="append", default=[], metavar="KEY=VALUE",
                    help="a [kafka] setting for the daemon (repeatable), e.g. queued.max.messages.kbytes=65536")
    ap.add_argument("--fill", help=argparse.SUPPRESS)  # internal: fill this topic and exit
    args = ap.parse_args()
    if args.fill:
        sbs.Filler(args.doc_bytes).fill(args.fill, args.events)
        return
    if not sbs.BOOT:
        sys.exit("nowrite_cpu: CT_KAFKA_BOOTSTRAP must be set (eval \"$(deploy/local/services.sh env)\")")
    binary = os.path.join(args.build_dir, "consumer", "changetrail-consumer")
    stamp = f"{os.getpid()}-{int(time.time())}"
    topic = args.topic or f"nowrite-cpu-{stamp}"
    if not args.topic:
        sbs.create_topic(topic, 4)
        # filled by a child: the producer's buffers would otherwise be in this
        # process, and a forked daemon's peak RSS counts them until it execs
        subprocess.check_call([sys.executable, __file__, "--fill", topic, "--events", str(args.events),
                               "--doc-bytes", str(args.doc_bytes)])
        print(f"bench=nowrite_cpu topic={topic}", flush=True)
    kafka = "".join(f"{kv.split('=', 1)[0].strip()} = {kv.split('=', 1)[1].strip()}\n" for kv in args.kafka)
    work = tempfile.mkdtemp(prefix="ct-nowrite-cpu-")
    for run in range(args.runs):
        cfg = os.path.join(work, f"run{run}.ini")
        with open(cfg, "w") as f:
            f.write(f"[kafka]\nbootstrap.servers = {sbs.BOOT}\n{kafka}[mongodb]\nuri = mongodb://127.0.0.1:1/\n"
                    f"database = unused\n[consumer]\ntopic = {topic}\ndlq_topic = {topic}.dlq\n"
                    f"group_id = {topic}-{stamp}-run{run}\nbatch_size = 500\nbatch_ms = 200\nexit_on_idle_ms = 1000\n"
                    f"no_write = true\n[http]\nlisten =\n")
        logpath = os.path.join(work, f"run{run}.log")
        with open(logpath, "w") as log:
            p = subprocess.Popen([binary, "--config", cfg], stderr=log)
            _, status, ru = os.wait4(p.pid, 0)  # this child's own CPU and peak RSS
            p.returncode = os.waitstatus_to_exitcode(status)
        cpu = ru.ru_utime + ru.ru_stime
        rates, dev = tenths(logpath)
        print(f"bench=nowrite_cpu run={run} events={args.events} doc_bytes={args.doc_bytes} rc={p.returncode} "
              f"cpu_us_per_event={cpu * 1e6 / args.events:.2f} peak_rss_mb={ru.ru_maxrss / 1024:.0f} "
              f"tenths={','.join(f'{r:.0f}' for r in rates)} "
              f"max_dev_10_100={100 * dev if dev is not None else float('nan'):.1f}%", flush=True)
    if not args.topic and not args.keep_topic:
        sbs.delete_topics([topic])


if __name__ == "__main__":
    main()
