"""Concurrent HTTP load against a running `guardrail serve` (scripts/load-server).

Each of N client threads keeps one keep-alive connection and loops over the pages a
triage session hits: the findings list (API and UI, with filters and the next page),
an item page and its revision history. Prints latency percentiles per route.

Usage: load_client.py --url http://127.0.0.1:PORT --token TOKEN --items N
                      [--clients 50] [--seconds 20]
"""
import argparse
import http.client
import json
import random
import threading
import time
from urllib.parse import quote, urlparse


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--items", type=int, required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    u = urlparse(a.url)
    if u.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("load tests stay on loopback")
    headers = {"Authorization": f"Bearer {a.token}", "Accept": "text/html,application/json"}
    results = {}
    errors = []
    lock = threading.Lock()
    stop = time.monotonic() + a.seconds

    def routes(rng, last):
        item = rng.randint(1, a.items)
        score = rng.choice(["", "&min_score=7", "&severity=critical", "&account=100000000003"])
        yield "GET /api/v1/findings", f"/api/v1/findings?state=open&limit=50{score}"
        if last.get("next_cursor"):  # the worker put the page's cursor in `last`
            yield ("GET /api/v1/findings (next page)",
                   f"/api/v1/findings?state=open&limit=50{score}&cursor={quote(last['next_cursor'])}")
        yield "GET /findings", f"/findings?state=open{score}"
        yield "GET /items/{id}", f"/items/{item}"
        yield "GET /api/v1/items/{id}/revisions", f"/api/v1/items/{item}/revisions?limit=20"

    def worker(seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        local = {}
        while time.monotonic() < stop:
            last = {}
            for name, path in routes(rng, last):
                t0 = time.perf_counter()
                try:
                    conn.request("GET", path, headers=headers)
                    r = conn.getresponse()
                    body = r.read()
                    status = r.status
                except Exception as e:  # a dropped connection is a failed request
                    conn.close()
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                    with lock:
                        errors.append(f"{name}: {e}")
                    continue
                dt = (time.perf_counter() - t0) * 1000
                if status != 200:
                    with lock:
                        errors.append(f"{name}: HTTP {status} {body[:200]!r}")
                elif name == "GET /api/v1/findings":
                    last["next_cursor"] = json.loads(body).get("next_cursor")
                local.setdefault(name, []).append(dt)
        with lock:
            for k, v in local.items():
                results.setdefault(k, []).extend(v)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    total = sum(len(v) for v in results.values())
    print(f"{a.clients} clients, {elapsed:.1f} s, {total} requests, {total / elapsed:.0f} req/s, {len(errors)} errors")
    print(f"{'route':<36} {'n':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in sorted(results):
        v = sorted(results[name])
        print(f"{name:<36} {len(v):>7} {percentile(v, 50):>8.1f} {percentile(v, 95):>8.1f} "
              f"{percentile(v, 99):>8.1f} {v[-1]:>8.1f}")
    for e in errors[:5]:
        print("error:", e)
    print(json.dumps({k: {"n": len(v), "p99_ms": percentile(sorted(v), 99)} for k, v in results.items()}))


if __name__ == "__main__":
    main()
