#!/usr/bin/env python3
"""Tests for faultproxy.py: boto3 -> faultproxy -> moto_server, all on 127.0.0.1.

Run with the moto venv (it has boto3):
    /work/main/.venv-moto/bin/python scripts/faultproxy_test.py
(/work/main/scripts/moto creates the venv if it is missing.)
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROXY = os.path.join(HERE, "faultproxy.py")
MOTO_SERVER = os.path.join(REPO, ".venv-moto", "bin", "moto_server")

sys.path.insert(0, HERE)
import faultproxy  # noqa: E402  (pure functions are unit-tested directly)

# Make sure nothing can leave loopback: no proxies from the environment, no
# shared AWS config/credentials, no instance-metadata lookups.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ACCOUNT = "123456789012"  # moto's default account
MOTO_PORT: int | None = None
_moto_proc: subprocess.Popen | None = None
_tmpdir: tempfile.TemporaryDirectory | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def setUpModule() -> None:
    global MOTO_PORT, _moto_proc, _tmpdir
    if not os.path.exists(MOTO_SERVER):
        subprocess.run([os.path.join(HERE, "moto")], check=True, stdout=subprocess.DEVNULL)
    _tmpdir = tempfile.TemporaryDirectory(prefix="faultproxy-test-")
    MOTO_PORT = free_port()
    with open(os.path.join(_tmpdir.name, "moto.log"), "w") as stderr:
        _moto_proc = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(MOTO_PORT)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    wait_for_port(MOTO_PORT, _moto_proc)


def tearDownModule() -> None:
    if _moto_proc is not None:
        stop(_moto_proc)
    if _tmpdir is not None:
        _tmpdir.cleanup()


class Proxy:
    """A faultproxy subprocess in front of the module's moto server."""

    def __init__(self, *extra: str):
        d = tempfile.mkdtemp(dir=_tmpdir.name)
        self.port_file = os.path.join(d, "port")
        self.log_path = os.path.join(d, "log.jsonl")
        with open(os.path.join(d, "stderr"), "w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, PROXY, "--listen-port", "0",
                 "--upstream", f"http://127.0.0.1:{MOTO_PORT}",
                 "--port-file", self.port_file, "--log", self.log_path, *extra],
                stderr=stderr,
            )
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop(self.proc)
                raise RuntimeError("faultproxy did not start")
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}"

    def entries(self) -> list[dict]:
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f]

    def close(self) -> None:
        stop(self.proc)

    def client(self, service: str, retries: dict | None = None):
        """boto3 client via the proxy. Default: exactly one attempt.

        botocore's retries["max_attempts"] counts *retries* (max_attempts=1
        means two HTTP requests, which would hide every other fault);
        "total_max_attempts" counts all attempts.
        """
        cfg = botocore.config.Config(
            retries=retries or {"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=10,
        )
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=cfg,
        )

    def raw(self, method: str, path: str, headers: dict, body: bytes = b""):
        """One request with http.client; returns (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()


def fake_auth(service: str) -> str:
    """A SigV4-shaped Authorization header (moto does not verify signatures)."""
    return (f"AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=00")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


ASSUME_ROLE_DOC = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


def bucket_policy(bucket: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "t", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}],
    })


class ProxyTestCase(unittest.TestCase):
    def start_proxy(self, *extra: str) -> Proxy:
        proxy = Proxy(*extra)
        self.addCleanup(proxy.close)
        return proxy

    def assertErrorCode(self, call, code: str, status: int) -> None:
        with self.assertRaises(ClientError) as cm:
            call()
        self.assertEqual(cm.exception.response["Error"]["Code"], code)
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)


class ForwardingTest(ProxyTestCase):
    """No faults: responses are relayed faithfully and operations logged."""

    def test_forwarding_and_operation_log(self):
        p = self.start_proxy()
        iam, s3, ec2, sts = (p.client(s) for s in ("iam", "s3", "ec2", "sts"))

        role = unique("role")
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=ASSUME_ROLE_DOC)
        self.assertIn(role, [r["RoleName"] for r in iam.list_roles()["Roles"]])

        bucket = unique("bkt")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(bucket))
        self.assertEqual(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
                         json.loads(bucket_policy(bucket)))
        self.assertEqual(s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertIn(bucket, [b["Name"] for b in s3.list_buckets()["Buckets"]])
        payload = os.urandom(3000)
        s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=payload)
        self.assertEqual(s3.get_object(Bucket=bucket, Key="dir/obj.bin")["Body"].read(), payload)
        # HEAD keeps the object's Content-Length although no body is sent.
        self.assertEqual(s3.head_object(Bucket=bucket, Key="dir/obj.bin")["ContentLength"], len(payload))
        with self.assertRaises(ClientError) as cm:  # upstream errors pass through
            s3.get_object(Bucket=bucket, Key="missing")
        self.assertEqual(cm.exception.response["Error"]["Code"], "NoSuchKey")
        s3.delete_object(Bucket=bucket, Key="dir/obj.bin")  # 204 from moto
        s3.delete_bucket_policy(Bucket=bucket)

        groups = ec2.describe_security_groups()["SecurityGroups"]
        self.assertTrue(any(g["GroupName"] == "default" for g in groups))
        self.assertEqual(sts.get_caller_identity()["Account"], ACCOUNT)

        log = p.entries()
        expected = [
            ("iam", "CreateRole", "POST"), ("iam", "ListRoles", "POST"),
            ("s3", "CreateBucket", "PUT"), ("s3", "PutBucketPolicy", "PUT"),
            ("s3", "GetBucketPolicy", "GET"), ("s3", "HeadBucket", "HEAD"),
            ("s3", "ListBuckets", "GET"), ("s3", "PutObject", "PUT"),
            ("s3", "GetObject", "GET"), ("s3", "HeadObject", "HEAD"),
            ("s3", "GetObject", "GET"), ("s3", "DeleteObject", "DELETE"),
            ("s3", "DeleteBucketPolicy", "DELETE"),
            ("ec2", "DescribeSecurityGroups", "POST"), ("sts", "GetCallerIdentity", "POST"),
        ]
        self.assertEqual([(e["service"], e["operation"], e["method"]) for e in log], expected)
        self.assertEqual([e["seq"] for e in log], list(range(1, len(expected) + 1)))
        self.assertTrue(all(e["fault"] is None for e in log))
        statuses = {e["operation"]: e["status"] for e in log}
        self.assertEqual(statuses["CreateRole"], 200)
        self.assertEqual(statuses["DeleteObject"], 204)
        self.assertEqual([e["status"] for e in log if e["operation"] == "GetObject"], [200, 404])
        self.assertEqual(log[2]["path"], f"/{bucket}")
        self.assertEqual(log[3]["query"], "policy")

    def test_s3control_public_access_block(self):
        # Raw HTTP: botocore's s3control endpoint rules always prepend
        # "{AccountId}." to the host, which cannot work with 127.0.0.1.
        p = self.start_proxy()
        path = "/v20180820/configuration/publicAccessBlock"
        hdrs = {"Authorization": fake_auth("s3"), "x-amz-account-id": ACCOUNT}
        cfg = ("<PublicAccessBlockConfiguration xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\">"
               "<BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>"
               "<BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>false</RestrictPublicBuckets>"
               "</PublicAccessBlockConfiguration>").encode()
        status, _, _ = p.raw("PUT", path, hdrs, cfg)
        self.assertEqual(status, 200)
        status, _, body = p.raw("GET", path, hdrs)
        self.assertEqual(status, 200)
        self.assertIn(b"<BlockPublicPolicy>true</BlockPublicPolicy>", body)
        status, _, _ = p.raw("DELETE", path, hdrs)
        self.assertIn(status, (200, 204))
        self.assertEqual(
            [(e["service"], e["operation"]) for e in p.entries()],
            [("s3control", "PutPublicAccessBlock"), ("s3control", "GetPublicAccessBlock"),
             ("s3control", "DeletePublicAccessBlock")],
        )

    def test_config_json_protocol(self):
        p = self.start_proxy()
        p.client("config").describe_config_rules()
        self.assertEqual([(e["service"], e["operation"]) for e in p.entries()],
                         [("config", "DescribeConfigRules")])

    def test_chunked_request_body(self):
        p = self.start_proxy()
        s3 = p.client("s3")
        bucket = unique("chunk")
        s3.create_bucket(Bucket=bucket)
        data = b"hello chunked world " * 100
        chunks = [data[:7], data[7:1000], data[1000:]]
        body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"
        head = (f"PUT /{bucket}/chunked.txt HTTP/1.1\r\nHost: 127.0.0.1:{p.port}\r\n"
                f"Authorization: {fake_auth('s3')}\r\nTransfer-Encoding: chunked\r\n"
                f"Connection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as sock:
            sock.sendall(head + body)
            resp = b""
            while chunk := sock.recv(65536):
                resp += chunk
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp[:200])
        self.assertEqual(s3.get_object(Bucket=bucket, Key="chunked.txt")["Body"].read(), data)
        self.assertEqual(p.entries()[1]["operation"], "PutObject")

    def test_non_loopback_upstream_refused(self):
        r = subprocess.run(
            [sys.executable, PROXY, "--upstream", "http://192.0.2.1:80", "--port-file", "/dev/null"],
            capture_output=True, text=True, timeout=10,
        )
        self.assertEqual(r.returncode, 2)
        self.assertIn("loopback", r.stderr)


class EchoUpstreamTest(ProxyTestCase):
    """Header/body fidelity against a recording stdlib upstream (not moto)."""

    def setUp(self):
        import http.server
        import threading

        seen = self.seen = []

        class Echo(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                n = int(self.headers.get("Content-Length") or 0)
                seen.append((self.command, self.path, list(self.headers.items()), self.rfile.read(n)))
                status = int(self.headers.get("x-want-status") or 200)
                self.send_response(status)
                self.send_header("X-Multi", "a")
                self.send_header("X-Multi", "b")
                self.send_header("Connection", "close")  # like moto
                if status in (204, 304):
                    self.end_headers()
                    return
                body = b"0123456789"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        global MOTO_PORT
        saved, MOTO_PORT = MOTO_PORT, server.server_address[1]
        try:
            self.proxy = self.start_proxy()
        finally:
            MOTO_PORT = saved

    def test_headers_and_bodies(self):
        p = self.proxy
        status, headers, body = p.raw("PUT", "/b/k?x-id=PutObject", {
            "Host": "bucket-host.example:1234", "Authorization": fake_auth("s3"),
            "Connection": "keep-alive, X-Hop", "X-Hop": "drop me", "Keep-Alive": "timeout=5",
            "X-Amz-Meta-Thing": "kept"}, b"payload")
        self.assertEqual((status, body), (200, b"0123456789"))
        self.assertEqual(headers.get_all("X-Multi"), ["a", "b"])
        self.assertNotEqual((headers.get("Connection") or "").lower(), "close")
        method, path, fwd, fwd_body = self.seen[-1]
        fwd = {k.lower(): v for k, v in fwd}
        self.assertEqual((method, path, fwd_body), ("PUT", "/b/k?x-id=PutObject", b"payload"))
        self.assertEqual(fwd["host"], "bucket-host.example:1234")  # as the client sent it
        self.assertEqual(fwd["x-amz-meta-thing"], "kept")
        self.assertEqual(fwd["content-length"], "7")
        for hop in ("x-hop", "keep-alive", "connection"):
            self.assertNotIn(hop, fwd)

        status, headers, body = p.raw("HEAD", "/b/k", {"Authorization": fake_auth("s3")})
        self.assertEqual((status, headers["Content-Length"], body), (200, "10", b""))
        for code in (204, 304):
            status, headers, body = p.raw("GET", "/b", {"x-want-status": str(code)})
            self.assertEqual((status, body), (code, b""))
        self.assertEqual([e["status"] for e in p.entries()], [200, 200, 204, 304])


class FaultTest(ProxyTestCase):
    """Faults are visible with retries disabled (total_max_attempts=1)."""

    def test_throttle_every_second_request(self):
        p = self.start_proxy("--fault-every", "2", "--faults", "throttle")
        iam, s3, ec2, sts, cfg = (p.client(s) for s in ("iam", "s3", "ec2", "sts", "config"))
        bucket = unique("thr")

        iam.list_roles()                                                     # 1
        self.assertErrorCode(iam.list_roles, "Throttling", 400)               # 2
        s3.list_buckets()                                                    # 3
        self.assertErrorCode(s3.list_buckets, "SlowDown", 503)                # 4
        ec2.describe_security_groups()                                       # 5
        self.assertErrorCode(ec2.describe_security_groups, "RequestLimitExceeded", 503)  # 6
        sts.get_caller_identity()                                            # 7
        self.assertErrorCode(sts.get_caller_identity, "Throttling", 400)      # 8
        cfg.describe_config_rules()                                          # 9
        self.assertErrorCode(cfg.describe_config_rules, "ThrottlingException", 400)  # 10
        s3.list_buckets()                                                    # 11
        # A throttled write never reaches moto.
        self.assertErrorCode(lambda: s3.create_bucket(Bucket=bucket), "SlowDown", 503)  # 12
        self.assertNotIn(bucket, [b["Name"] for b in s3.list_buckets()["Buckets"]])  # 13

        log = p.entries()
        self.assertEqual([e["fault"] for e in log], [None, "throttle"] * 6 + [None])
        self.assertEqual(log[11]["operation"], "CreateBucket")
        self.assertEqual([e["status"] for e in log if e["fault"]], [400, 503, 503, 400, 400, 503])

    def test_quota_throttles_what_comes_faster_than_it_refills(self):
        q = faultproxy.Quota(5)
        # A burst of ten at one instant: the bucket's five pass, the rest are throttled.
        self.assertEqual([q.take("iam", now=100.0) for _ in range(10)], [True] * 5 + [False] * 5)
        # Each service has its own bucket.
        self.assertTrue(q.take("ec2", now=100.0))
        # A second later the bucket holds five again (never more).
        self.assertEqual([q.take("iam", now=101.0) for _ in range(6)], [True] * 5 + [False])
        # At the quota's pace nothing is throttled.
        self.assertTrue(all(q.take("sts", now=200.0 + i / 5) for i in range(50)))
        # Through the proxy: a burst of calls with retries off meets the service's error.
        p = self.start_proxy("--quota", "3")
        iam = p.client("iam")
        outcomes = []
        for _ in range(6):
            try:
                iam.list_roles()
                outcomes.append("ok")
            except Exception as e:  # noqa: BLE001 - the code is what is checked
                outcomes.append(getattr(e, "response", {}).get("Error", {}).get("Code"))
        self.assertEqual(outcomes[:3], ["ok"] * 3)
        self.assertIn("Throttling", outcomes[3:])

    def test_throttle_shapes_are_classified_as_throttling_by_botocore(self):
        from botocore.retries.standard import ThrottledRetryableChecker

        codes = ThrottledRetryableChecker._THROTTLED_ERROR_CODES
        for protocol, service in (("query", "iam"), ("query", "sts"), ("ec2", "ec2"),
                                  ("restxml", "s3"), ("restxml", "s3control"), ("json", "config")):
            status, headers, body = faultproxy.error_response("throttle", service, protocol, {})
            text = body.decode()
            self.assertTrue(any(f">{c}<" in text or f'"{c}"' in text for c in codes), text)

    def test_500(self):
        p = self.start_proxy("--fault-every", "1", "--faults", "500")
        self.assertErrorCode(p.client("iam").list_roles, "ServiceFailure", 500)
        self.assertErrorCode(p.client("sts").get_caller_identity, "InternalFailure", 500)
        self.assertErrorCode(p.client("ec2").describe_security_groups, "InternalError", 500)
        self.assertErrorCode(p.client("s3").list_buckets, "InternalError", 500)
        self.assertErrorCode(p.client("config").describe_config_rules, "InternalFailure", 500)
        self.assertEqual({e["fault"] for e in p.entries()}, {"500"})

    def test_reset(self):
        p = self.start_proxy("--fault-every", "2", "--faults", "reset")
        s3 = p.client("s3")
        s3.list_buckets()
        with self.assertRaises((botocore.exceptions.ConnectionError,
                                botocore.exceptions.HTTPClientError)):
            s3.list_buckets()
        s3.list_buckets()  # the client recovers on a new connection
        # At the socket level it is an RST, not an orderly close.
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{p.port}\r\n\r\n".encode())
            with self.assertRaises(ConnectionResetError):
                sock.recv(1024)
        log = p.entries()
        self.assertEqual([(e["fault"], e["status"]) for e in log],
                         [(None, 200), ("reset", None), (None, 200), ("reset", None)])

    def test_delay(self):
        p = self.start_proxy("--fault-every", "1", "--faults", "delay", "--delay-seconds", "0.5")
        start = time.monotonic()
        p.client("sts").get_caller_identity()
        self.assertGreaterEqual(time.monotonic() - start, 0.5)
        self.assertEqual([(e["fault"], e["status"]) for e in p.entries()], [("delay", 200)])


    def test_latency_is_added_to_every_call_without_faults(self):
        p = self.start_proxy("--latency-ms", "300")
        c = p.client("sts")
        start = time.monotonic()
        c.get_caller_identity()
        c.get_caller_identity()
        self.assertGreaterEqual(time.monotonic() - start, 0.6)
        self.assertEqual([(e["fault"], e["status"]) for e in p.entries()], [(None, 200), (None, 200)])


class RetryTest(ProxyTestCase):
    def test_default_retries_survive_faults(self):
        p = self.start_proxy("--fault-every", "3", "--faults", "throttle,500,reset,delay",
                             "--delay-seconds", "0.2")
        retries = {"mode": "standard", "max_attempts": 5}
        clients = {s: p.client(s, retries) for s in ("iam", "s3", "ec2", "sts", "config")}
        bucket = unique("retry")
        clients["s3"].create_bucket(Bucket=bucket)
        for _ in range(3):
            clients["iam"].list_roles()
            clients["s3"].list_buckets()
            clients["s3"].head_bucket(Bucket=bucket)
            clients["s3"].put_bucket_policy(Bucket=bucket, Policy=bucket_policy(bucket))
            clients["ec2"].describe_security_groups()
            clients["sts"].get_caller_identity()
            clients["config"].describe_config_rules()
        faults = {e["fault"] for e in p.entries()}
        self.assertEqual(faults, {None, "throttle", "500", "reset", "delay"})


class ClassificationTest(unittest.TestCase):
    """Pure-function checks of service and operation detection."""

    def op(self, method, target, headers=None, body=b"", service="s3"):
        path, _, q = target.partition("?")
        query = faultproxy.parse_qs(q, keep_blank_values=True)
        return faultproxy.detect_operation(service, method, path, query, headers or {}, body)

    def test_service_detection(self):
        auth = ("AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/iam/aws4_request, "
                "SignedHeaders=host, Signature=x")
        d = faultproxy.detect_service
        self.assertEqual(d({"Authorization": auth}, "/", {}), "iam")
        self.assertEqual(d({"Authorization": auth.replace("/iam/", "/s3/")},
                           "/v20180820/configuration/publicAccessBlock", {}), "s3control")
        self.assertEqual(d({"X-Amz-Target": "StarlingDoveService.ListDiscoveredResources"}, "/", {}),
                         "config")
        self.assertEqual(d({}, "/", {"X-Amz-Credential": ["AKID/20261123/us-east-1/sts/aws4_request"]}),
                         "sts")
        self.assertEqual(d({}, "/", {}), "unknown")

    def test_query_and_json_operations(self):
        form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        self.assertEqual(self.op("POST", "/", form, b"Action=ListRoles&Version=2010-05-08", "iam"), "ListRoles")
        self.assertEqual(self.op("GET", "/?Action=DescribeRegions", service="ec2"), "DescribeRegions")
        self.assertEqual(self.op("POST", "/", {"X-Amz-Target": "StarlingDoveService.ListDiscoveredResources"},
                                 b"{}", "config"), "ListDiscoveredResources")
        self.assertEqual(self.op("POST", "/", service="iam"), "POST /")

    def test_lambda_operations(self):
        op = lambda m, t: self.op(m, t, service="lambda")  # noqa: E731
        self.assertEqual(op("GET", "/2015-03-31/functions/"), "ListFunctions")
        self.assertEqual(op("GET", "/2015-03-31/functions/f1/policy"), "GetPolicy")
        self.assertEqual(op("GET", "/2017-03-31/tags/arn:aws:lambda:us-east-1:1:function:f1"), "ListTags")
        # Unknown routes, and writes to known paths, are never named as reads.
        self.assertEqual(op("DELETE", "/2015-03-31/functions/f1"), "DELETE /2015-03-31/functions/f1")
        self.assertEqual(op("PUT", "/2015-03-31/functions/f1/configuration"),
                         "PUT /2015-03-31/functions/f1/configuration")

    def test_s3_operations(self):
        cases = [
            ("GET", "/", "ListBuckets"), ("GET", "/?x-id=ListBuckets", "ListBuckets"),
            ("GET", "/b", "ListObjects"), ("GET", "/b?list-type=2&prefix=a", "ListObjectsV2"),
            ("GET", "/b/", "ListObjects"),
            ("GET", "/b?location", "GetBucketLocation"), ("GET", "/b?policy", "GetBucketPolicy"),
            ("GET", "/b?policyStatus", "GetBucketPolicyStatus"), ("GET", "/b?acl", "GetBucketAcl"),
            ("GET", "/b/k?acl", "GetObjectAcl"), ("GET", "/b?publicAccessBlock", "GetPublicAccessBlock"),
            ("GET", "/b?encryption", "GetBucketEncryption"), ("GET", "/b?versioning", "GetBucketVersioning"),
            ("GET", "/b?logging", "GetBucketLogging"),
            ("GET", "/b?ownershipControls", "GetBucketOwnershipControls"),
            ("GET", "/b?tagging", "GetBucketTagging"),
            ("GET", "/b?lifecycle", "GetBucketLifecycleConfiguration"),
            ("GET", "/b?replication", "GetBucketReplication"), ("GET", "/b?website", "GetBucketWebsite"),
            ("GET", "/b?cors", "GetBucketCors"),
            ("GET", "/b?notification", "GetBucketNotificationConfiguration"),
            ("GET", "/b?object-lock", "GetObjectLockConfiguration"),
            ("GET", "/b?accelerate", "GetBucketAccelerateConfiguration"),
            ("GET", "/b?requestPayment", "GetBucketRequestPayment"),
            ("GET", "/b?analytics&id=x", "GetBucketAnalyticsConfiguration"),
            ("GET", "/b?inventory&id=x", "GetBucketInventoryConfiguration"),
            ("GET", "/b?metrics&id=x", "GetBucketMetricsConfiguration"),
            ("GET", "/b?intelligent-tiering&id=x", "GetBucketIntelligentTieringConfiguration"),
            ("GET", "/b/k", "GetObject"), ("GET", "/b/k/with/slashes?x-id=GetObject", "GetObject"),
            ("GET", "/b/k?versionId=3", "GetObject"),
            ("HEAD", "/b", "HeadBucket"), ("HEAD", "/b/k", "HeadObject"),
            ("PUT", "/b", "CreateBucket"), ("PUT", "/b?policy", "PutBucketPolicy"),
            ("PUT", "/b?acl", "PutBucketAcl"), ("PUT", "/b/k?acl", "PutObjectAcl"),
            ("PUT", "/b?publicAccessBlock", "PutPublicAccessBlock"),
            ("PUT", "/b?lifecycle", "PutBucketLifecycleConfiguration"),
            ("PUT", "/b/k", "PutObject"), ("PUT", "/b/k?x-id=PutObject", "PutObject"),
            ("POST", "/b?delete", "DeleteObjects"), ("POST", "/b?delete&x-id=DeleteObjects", "DeleteObjects"),
            ("DELETE", "/b", "DeleteBucket"), ("DELETE", "/b?policy", "DeleteBucketPolicy"),
            ("DELETE", "/b?lifecycle", "DeleteBucketLifecycle"), ("DELETE", "/b/k", "DeleteObject"),
            ("DELETE", "/b?publicAccessBlock", "DeletePublicAccessBlock"),
            ("POST", "/b/k?uploads", "CreateMultipartUpload"),
            ("PUT", "/b/k?partNumber=1&uploadId=u", "UploadPart"),
            ("POST", "/b/k?uploadId=u", "CompleteMultipartUpload"),
            # Unknown writes must never look like reads.
            ("PUT", "/b?location", "PUT /b"), ("POST", "/b", "POST /b"), ("PUT", "/", "PUT /"),
            ("PUT", "/b?mystery", "PUT /b"), ("DELETE", "/b?acl", "DELETE /b"),
        ]
        for method, target, expected in cases:
            with self.subTest(method=method, target=target):
                self.assertEqual(self.op(method, target), expected)
        self.assertEqual(self.op("PUT", "/b/k", {"x-amz-copy-source": "/a/b"}), "CopyObject")

    def test_s3control_operations(self):
        path = "/v20180820/configuration/publicAccessBlock"
        for method, expected in (("GET", "GetPublicAccessBlock"), ("PUT", "PutPublicAccessBlock"),
                                 ("DELETE", "DeletePublicAccessBlock"), ("POST", f"POST {path}")):
            self.assertEqual(self.op(method, path, {"x-amz-account-id": ACCOUNT}, service="s3control"),
                             expected)

    def test_fault_rotation(self):
        plan = faultproxy.FaultPlan(3, ["throttle", "500", "reset"])
        got = [plan.next() for _ in range(12)]
        self.assertEqual([f for _, f in got], [None, None, "throttle", None, None, "500",
                                               None, None, "reset", None, None, "throttle"])
        self.assertEqual([s for s, _ in got], list(range(1, 13)))
        self.assertEqual({f for _, f in (faultproxy.FaultPlan(0, ["reset"]).next() for _ in range(5))}, {None})


if __name__ == "__main__":
    unittest.main(verbosity=2)
