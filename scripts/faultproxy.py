#!/usr/bin/env python3
"""Fault-injecting HTTP proxy for testing AWS SDK clients against moto.

The AWS SDK is pointed at this proxy (endpoint_url = http://127.0.0.1:PORT);
the proxy forwards every request to a moto server and, on every Nth request,
injects a fault instead (a throttle error, a 500, a TCP reset, or a delay).
Each request is classified (AWS service + operation name) and logged as one
JSON line, so a test can assert which API calls a client made -- in
particular that it never made a write call.

Stdlib only (Python 3.11+), so it runs from any interpreter.

Usage:
    faultproxy.py --listen-port 0 --upstream http://127.0.0.1:MOTOPORT \
        --port-file PATH [--fault-every N] [--faults throttle,500,reset,delay] \
        [--delay-seconds 2] [--log PATH]

Log line (one per request, flushed before the client sees the response):
    {"seq": 3, "service": "s3", "operation": "PutBucketPolicy",
     "method": "PUT", "path": "/bucket", "query": "policy",
     "fault": null, "status": 204}
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import itertools
import json
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

FAULT_KINDS = ("throttle", "500", "reset", "delay")

# RFC 7230 hop-by-hop headers: they describe one connection, not the message,
# so a proxy must not forward them. Expect is included because this proxy
# answers "100-continue" itself (BaseHTTPRequestHandler does) and then sends
# the full body upstream in one go.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Expect",
    )
)

# --------------------------------------------------------------------------
# Request classification
# --------------------------------------------------------------------------

_CREDENTIAL_RE = re.compile(r"Credential=([^,\s]+)")

# X-Amz-Target prefixes of JSON-protocol services whose prefix differs from
# the signing name; anything else falls back to the prefix itself.
_TARGET_PREFIX_SERVICE = {
    "StarlingDoveService": "config",
    "AWSSecurityTokenServiceV20110615": "sts",
    "AmazonSSM": "ssm",
    "Logs_20140328": "logs",
    "TrentService": "kms",
    "secretsmanager": "secretsmanager",
    "DynamoDB_20120810": "dynamodb",
}

# S3 Control is signed with service name "s3", so the credential scope alone
# cannot tell it from S3; its REST paths all start with this version prefix.
S3CONTROL_PREFIX = "/v20180820/"


def detect_service(headers: Mapping[str, str], path: str, query: Mapping[str, list[str]]) -> str:
    """Return the AWS service a request is addressed to (e.g. "iam", "s3")."""
    if path.startswith(S3CONTROL_PREFIX):
        return "s3control"
    scope = None
    match = _CREDENTIAL_RE.search(headers.get("Authorization") or "")
    if match:
        scope = match.group(1)
    elif "X-Amz-Credential" in query:  # presigned URL
        scope = query["X-Amz-Credential"][0]
    if scope:
        # AKID/date/region/service/aws4_request (SigV4) or
        # AKID/date/service/aws4_request (SigV4a): service is second to last.
        parts = scope.split("/")
        if len(parts) >= 4 and parts[-2]:
            return parts[-2]
    target = headers.get("X-Amz-Target")
    if target and "." in target:
        prefix = target.split(".", 1)[0]
        return _TARGET_PREFIX_SERVICE.get(prefix, prefix)
    return "unknown"


def _form_action(headers: Mapping[str, str], body: bytes) -> str | None:
    """Action parameter of an awsQuery/ec2Query form-encoded request body."""
    ctype = (headers.get("Content-Type") or "").lower()
    if not body or not ctype.startswith("application/x-www-form-urlencoded"):
        return None
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return (form.get("Action") or [None])[0]


def detect_operation(
    service: str,
    method: str,
    path: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """Return the API operation name (e.g. "ListRoles", "PutBucketPolicy").

    Unknown requests yield "<METHOD> <path>" rather than a guess, so a write
    can never be mistaken for a read.
    """
    if service == "s3control":
        return s3control_operation(method, path)
    target = headers.get("X-Amz-Target")
    if target:  # awsJson 1.0/1.1: "StarlingDoveService.ListDiscoveredResources"
        return target.rsplit(".", 1)[-1]
    action = (query.get("Action") or [None])[0] or _form_action(headers, body)
    if action:  # awsQuery (iam, sts) and ec2Query
        return action
    if service == "s3":
        return s3_operation(method, path, query, headers)
    if service == "lambda":
        return lambda_operation(method, path)
    return f"{method} {path}"


# Lambda is REST-JSON: the operation is in the method and path. Only the calls
# guardrail makes are named (read calls) plus the writes tests seed with; anything
# else stays "<METHOD> <path>" so it can never pass for a read.
_LAMBDA_ROUTES = (
    ("GET", re.compile(r"^/2015-03-31/functions/?$"), "ListFunctions"),
    ("POST", re.compile(r"^/2015-03-31/functions/?$"), "CreateFunction"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/policy/?$"), "GetPolicy"),
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/policy/?$"), "AddPermission"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/?$"), "GetFunction"),
    ("GET", re.compile(r"^/2021-10-31/functions/[^/]+/url/?$"), "GetFunctionUrlConfig"),
    ("GET", re.compile(r"^/2017-03-31/tags/.+$"), "ListTags"),
)


def lambda_operation(method: str, path: str) -> str:
    for verb, pattern, name in _LAMBDA_ROUTES:
        if method == verb and pattern.match(path):
            return name
    return f"{method} {path}"


def s3control_operation(method: str, path: str) -> str:
    if path.rstrip("/") == S3CONTROL_PREFIX + "configuration/publicAccessBlock":
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method)
        if verb:
            return f"{verb}PublicAccessBlock"
    return f"{method} {path}"


# Bucket/object subresources: query key -> {method: operation}. Keys absent
# for a method mean "unknown", which falls back to "<METHOD> <path>".
def _gpd(noun: str, delete: str | None = None) -> dict[str, str]:
    """Get/Put/Delete<noun>; delete="" means the resource has no Delete."""
    ops = {"GET": f"Get{noun}", "PUT": f"Put{noun}"}
    if delete != "":
        ops["DELETE"] = delete or f"Delete{noun}"
    return ops


_BUCKET_SUBRESOURCES: dict[str, dict[str, str]] = {
    "location": {"GET": "GetBucketLocation"},
    "policyStatus": {"GET": "GetBucketPolicyStatus"},
    "policy": _gpd("BucketPolicy"),
    "acl": _gpd("BucketAcl", delete=""),
    "publicAccessBlock": _gpd("PublicAccessBlock"),
    "encryption": _gpd("BucketEncryption"),
    "versioning": _gpd("BucketVersioning", delete=""),
    "logging": _gpd("BucketLogging", delete=""),
    "ownershipControls": _gpd("BucketOwnershipControls"),
    "tagging": _gpd("BucketTagging"),
    "lifecycle": _gpd("BucketLifecycleConfiguration", delete="DeleteBucketLifecycle"),
    "replication": _gpd("BucketReplication"),
    "website": _gpd("BucketWebsite"),
    "cors": _gpd("BucketCors"),
    "notification": _gpd("BucketNotificationConfiguration", delete=""),
    "object-lock": _gpd("ObjectLockConfiguration", delete=""),
    "accelerate": _gpd("BucketAccelerateConfiguration", delete=""),
    "requestPayment": _gpd("BucketRequestPayment", delete=""),
    "analytics": _gpd("BucketAnalyticsConfiguration"),
    "inventory": _gpd("BucketInventoryConfiguration"),
    "metrics": _gpd("BucketMetricsConfiguration"),
    "intelligent-tiering": _gpd("BucketIntelligentTieringConfiguration"),
    "versions": {"GET": "ListObjectVersions"},
    "uploads": {"GET": "ListMultipartUploads"},
    "delete": {"POST": "DeleteObjects"},
    "metadataTable": _gpd("BucketMetadataTableConfiguration"),
}

_OBJECT_SUBRESOURCES: dict[str, dict[str, str]] = {
    "acl": {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    "tagging": _gpd("ObjectTagging"),
    "retention": {"GET": "GetObjectRetention", "PUT": "PutObjectRetention"},
    "legal-hold": {"GET": "GetObjectLegalHold", "PUT": "PutObjectLegalHold"},
    "attributes": {"GET": "GetObjectAttributes"},
    "torrent": {"GET": "GetObjectTorrent"},
    "restore": {"POST": "RestoreObject"},
    "select": {"POST": "SelectObjectContent"},
    "uploads": {"POST": "CreateMultipartUpload"},
    # uploadId alone (partNumber is a plain parameter, handled below).
    "uploadId": {
        "GET": "ListParts",
        "POST": "CompleteMultipartUpload",
        "DELETE": "AbortMultipartUpload",
        "PUT": "UploadPart",
    },
}

# Query parameters that are ordinary operation inputs, not subresources.
_PLAIN_PARAMS = frozenset(
    {
        "prefix", "delimiter", "marker", "max-keys", "encoding-type",
        "list-type", "continuation-token", "fetch-owner", "start-after",
        "key-marker", "version-id-marker", "upload-id-marker", "max-uploads",
        "max-parts", "part-number-marker", "versionId", "partNumber", "id",
        "response-content-type", "response-content-language",
        "response-expires", "response-cache-control",
        "response-content-disposition", "response-content-encoding",
        "max-buckets", "bucket-region", "x-id",
        "allow-unordered",
    }
)


def s3_operation(
    method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
) -> str:
    """Derive the S3 REST operation from method + path-style URL + query."""
    fallback = f"{method} {path}"
    # The Rust SDK (and the S3 Smithy model) add ?x-id=<Operation> wherever
    # the URI alone is ambiguous (GetObject, PutObject, DeleteObjects, ...).
    # It is the model's own name for the operation, so trust it.
    x_id = (query.get("x-id") or [None])[0]
    if x_id:
        return x_id

    bucket, _, key = path.lstrip("/").partition("/")
    subresources = [k for k in query if k not in _PLAIN_PARAMS]
    # Auth parameters of presigned URLs are not subresources either.
    subresources = [k for k in subresources if not k.startswith("X-Amz-")]

    if not bucket:
        if method == "GET" and not subresources:
            return "ListBuckets"
        return fallback

    if subresources:
        if len(subresources) > 1:
            return fallback
        table = _OBJECT_SUBRESOURCES if key else _BUCKET_SUBRESOURCES
        ops = table.get(subresources[0], {})
        op = ops.get(method)
        if op == "UploadPart" and headers.get("x-amz-copy-source"):
            op = "UploadPartCopy"
        return op or fallback

    if key:
        if method == "PUT" and headers.get("x-amz-copy-source"):
            return "CopyObject"
        return {
            "GET": "GetObject",
            "HEAD": "HeadObject",
            "PUT": "PutObject",
            "DELETE": "DeleteObject",
        }.get(method, fallback)

    if method == "GET":
        return "ListObjectsV2" if (query.get("list-type") or [""])[0] == "2" else "ListObjects"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(
        method, fallback
    )


def protocol_of(
    service: str, headers: Mapping[str, str], query: Mapping[str, list[str]], body_action: str | None
) -> str:
    """Wire protocol family, which decides the shape of synthetic errors."""
    if headers.get("X-Amz-Target") or service == "lambda":
        return "json"
    if service == "ec2":
        return "ec2"
    if service in ("iam", "sts") or body_action or "Action" in query:
        return "query"
    return "restxml"  # s3, s3control and anything unrecognised


# --------------------------------------------------------------------------
# Synthetic error responses (shapes as parsed by botocore and aws-sdk-rust)
# --------------------------------------------------------------------------


def error_response(
    fault: str, service: str, protocol: str, request_headers: Mapping[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Build (status, headers, body) for a "throttle" or "500" fault.

    The codes are ones both botocore (retries/standard.py
    _THROTTLED_ERROR_CODES) and aws-sdk-rust (aws-runtime
    retries/classifiers.rs THROTTLING_ERRORS) treat as throttling; the 500s
    are retried by both as transient via the status code.
    """
    rid = str(uuid.uuid4())
    throttle = fault == "throttle"
    if protocol == "json":
        # Echo the request's JSON version (1.0 or 1.1); the error code is
        # read from "__type" by both SDKs.
        ctype = request_headers.get("Content-Type") or ""
        if not ctype.startswith("application/x-amz-json"):
            ctype = "application/x-amz-json-1.1"
        if throttle:
            status, doc = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        else:
            status, doc = 500, {"__type": "InternalFailure", "message": "An internal error occurred."}
        return status, [("Content-Type", ctype), ("x-amzn-RequestId", rid)], json.dumps(
            doc, separators=(",", ":")
        ).encode()
    if protocol == "ec2":
        if throttle:
            status, code, msg = 503, "RequestLimitExceeded", "Request limit exceeded."
        else:
            status, code, msg = 500, "InternalError", "An internal error has occurred."
        body = (
            f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message>"
            f"</Error></Errors><RequestID>{rid}</RequestID></Response>"
        )
        return status, [("Content-Type", "text/xml;charset=UTF-8")], body.encode()
    if protocol == "query":
        if throttle:
            status, etype, code, msg = 400, "Sender", "Throttling", "Rate exceeded"
        else:
            # IAM's modelled 500 is ServiceFailure; STS and others use the
            # generic InternalFailure.
            code = "ServiceFailure" if service == "iam" else "InternalFailure"
            status, etype, msg = 500, "Receiver", "An internal error occurred."
        body = (
            f"<ErrorResponse><Error><Type>{etype}</Type><Code>{code}</Code>"
            f"<Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
    # REST-XML (S3 / S3 Control): unwrapped <Error> root.
    if throttle:
        status, code, msg = 503, "SlowDown", "Please reduce your request rate."
    else:
        status, code, msg = 500, "InternalError", "We encountered an internal error. Please try again."
    body = (
        f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        f"<Error><Code>{code}</Code><Message>{msg}</Message><RequestId>{rid}</RequestId></Error>"
    )
    return (
        status,
        [("Content-Type", "application/xml"), ("x-amz-request-id", rid), ("x-amz-id-2", rid)],
        body.encode(),
    )


# --------------------------------------------------------------------------
# Proxy
# --------------------------------------------------------------------------


class JsonLog:
    """Append-only JSON-lines log; one lock so concurrent lines never interleave."""

    def __init__(self, path: str | None):
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8") if path else None

    def write(self, record: dict) -> None:
        if self._file is None:
            return
        line = json.dumps(record, separators=(", ", ": ")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


class FaultPlan:
    """Global request counter deciding which requests get which fault."""

    def __init__(self, every: int, faults: list[str]):
        self.every = every
        self.faults = faults
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> tuple[int, str | None]:
        with self._lock:
            seq = next(self._counter)
        if self.every > 0 and self.faults and seq % self.every == 0:
            return seq, self.faults[(seq // self.every - 1) % len(self.faults)]
        return seq, None


class Quota:
    """A service's request quota as AWS keeps one: a token bucket per service that holds
    `rate` requests and refills `rate` a second. A request finding it empty gets the
    service's throttling error, so throttling depends on how fast the client calls
    (unlike --fault-every, which throttles whatever the rate)."""

    def __init__(self, rate: float):
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, service: str, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(service, (self.rate, now))
            tokens = min(self.rate, tokens + (now - at) * self.rate)
            ok = tokens >= 1.0
            self._buckets[service] = (tokens - 1.0 if ok else tokens, now)
            return ok


class FaultProxyServer(ThreadingHTTPServer):
    daemon_threads = True  # keep-alive connections must not block exit
    request_queue_size = 128  # SDKs open several connections at once

    def __init__(self, addr, upstream: tuple[str, int], plan: FaultPlan, log: JsonLog,
                 delay_seconds: float, upstream_timeout: float, verbose: bool,
                 latency_seconds: float = 0.0, quota: Quota | None = None):
        super().__init__(addr, FaultProxyHandler)
        self.quota = quota or Quota(0)
        self.latency_seconds = latency_seconds
        self.upstream = upstream
        self.plan = plan
        self.log = log
        self.delay_seconds = delay_seconds
        self.upstream_timeout = upstream_timeout
        self.verbose = verbose


class FaultProxyHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so SDK connection pools can keep connections alive, as they
    # would against AWS; moto itself closes after every response.
    protocol_version = "HTTP/1.1"
    server: FaultProxyServer
    timeout = 300  # drop idle keep-alive connections eventually

    def do_GET(self):
        self._proxy()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    # -- request side -----------------------------------------------------

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        return b""  # RFC 7230: no length and not chunked => no request body

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed mid-chunk")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # CRLF after chunk data
        # HTTP trailers end with an empty line; they are dropped (the body is
        # re-sent with Content-Length, which cannot carry trailers).
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    # -- main flow ----------------------------------------------------------

    def _proxy(self) -> None:
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute-form request target
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, raw_query = target.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        body = self._read_body()

        seq, fault = self.server.plan.next()
        service = detect_service(self.headers, unquote(path), query)
        operation = detect_operation(service, self.command, unquote(path), query, self.headers, body)
        if fault is None and not self.server.quota.take(service):
            fault = "throttle"
        record = {
            "seq": seq,
            "service": service,
            "operation": operation,
            "method": self.command,
            "path": path,
            "query": raw_query,
            "fault": fault,
            "status": None,
        }
        if service == "sqs":
            # Which queue: the only writes guardrail may make are on its own queue.
            try:
                record["queue_url"] = json.loads(body or b"{}").get("QueueUrl")
            except (ValueError, AttributeError):
                record["queue_url"] = (parse_qs(body.decode("utf-8", "replace")).get("QueueUrl") or [None])[0]

        if fault == "reset":
            # Log first: once the socket is gone the client may immediately
            # read the log, and the line must already be there.
            self.server.log.write(record)
            self._reset_connection()
            return
        if fault == "throttle" or fault == "500":
            protocol = protocol_of(service, self.headers, query, _form_action(self.headers, body))
            status, headers, err_body = error_response(fault, service, protocol, self.headers)
            record["status"] = status
            self.server.log.write(record)
            self._respond(status, None, headers, err_body, synthetic=True)
            return
        if fault == "delay":
            time.sleep(self.server.delay_seconds)
        if self.server.latency_seconds:
            # Every call as slow as a real AWS round trip: sweeps become latency-bound.
            time.sleep(self.server.latency_seconds)

        try:
            status, reason, headers, resp_body = self._forward(target, body)
        except (OSError, http.client.HTTPException) as exc:
            record["status"] = 502
            record["error"] = f"{type(exc).__name__}: {exc}"
            self.server.log.write(record)
            msg = f"faultproxy: upstream error: {exc}\n".encode()
            self._respond(502, None, [("Content-Type", "text/plain")], msg, synthetic=True)
            return
        record["status"] = status
        self.server.log.write(record)
        self._respond(status, reason, headers, resp_body, synthetic=False)

    def _forward(self, target: str, body: bytes):
        host, port = self.server.upstream
        conn = http.client.HTTPConnection(host, port, timeout=self.server.upstream_timeout)
        try:
            # skip_host: keep the client's Host header (it is part of the
            # SigV4 signature); skip_accept_encoding: add nothing of our own.
            conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            extra_hop = {
                t.strip().lower()
                for t in (self.headers.get("Connection") or "").split(",")
                if t.strip()
            }
            had_host = had_length = False
            for name, value in self.headers.items():
                lname = name.lower()
                if lname in HOP_BY_HOP or lname in extra_hop:
                    continue
                if lname == "content-length":
                    had_length = True
                    continue  # re-added below with the (de-chunked) size
                had_host |= lname == "host"
                conn.putheader(name, value)
            if not had_host:  # HTTP/1.0 clients may omit Host
                conn.putheader("Host", f"{host}:{port}")
            if body or had_length or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            # http.client knows HEAD/204/304 have no body and returns b"".
            resp_body = resp.read()
            return resp.status, resp.reason, resp.getheaders(), resp_body
        finally:
            conn.close()

    # -- response side ------------------------------------------------------

    def _respond(self, status: int, reason: str | None, headers, body: bytes, synthetic: bool) -> None:
        # send_response_only: no extra Server/Date headers; upstream's are kept.
        self.send_response_only(status, reason)
        upstream_length = None
        for name, value in headers:
            lname = name.lower()
            if lname == "content-length":
                upstream_length = value
                continue
            if lname in HOP_BY_HOP:
                continue  # incl. moto's "Connection: close"
            self.send_header(name, value)
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        elif upstream_length is not None:
            # HEAD keeps the object's size; 204/304 whatever upstream said.
            self.send_header("Content-Length", upstream_length)
        elif synthetic and self.command == "HEAD":
            self.send_header("Content-Length", "0")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body and body:
            self.wfile.write(body)

    def _reset_connection(self) -> None:
        """Close the client socket abruptly: SO_LINGER 0 makes close() send RST."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # detach + os.close closes the fd now; socket.close() would be
            # deferred while rfile/wfile still reference the socket.
            os.close(sock.detach())
        except OSError:
            pass


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"upstream must be http://HOST:PORT, got {url!r}")
    host, port = parts.hostname, parts.port or 80
    # This is a test tool: refuse to send traffic anywhere but loopback.
    try:
        addrs = {ipaddress.ip_address(host)}
    except ValueError:
        addrs = {ipaddress.ip_address(info[4][0].split("%")[0])
                 for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    if not all(a.is_loopback for a in addrs):
        raise ValueError(f"upstream {host} is not a loopback address")
    return host, port


def parse_faults(text: str) -> list[str]:
    faults = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in faults if f not in FAULT_KINDS]
    if bad or not faults:
        raise ValueError(f"--faults must be a comma list of {','.join(FAULT_KINDS)}; got {text!r}")
    return faults


def write_port_file(path: str, port: int) -> None:
    """Write atomically (tmp + rename) so a poller never sees a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".faultproxy-port-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen-host", default="127.0.0.1", help="default 127.0.0.1")
    ap.add_argument("--listen-port", type=int, default=0, help="0 = pick a free port (default)")
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:MOTOPORT (loopback only)")
    ap.add_argument("--port-file", help="write the listening port here once ready")
    ap.add_argument("--fault-every", type=int, default=0, help="fault every Nth request; 0 = never")
    ap.add_argument("--faults", default="throttle",
                    help="comma list of throttle,500,reset,delay used in rotation (default throttle)")
    ap.add_argument("--delay-seconds", type=float, default=2.0, help="sleep for the delay fault")
    ap.add_argument("--upstream-timeout", type=float, default=60.0)
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="added to every forwarded call, like a real AWS round trip (default 0)")
    ap.add_argument("--quota", type=float, default=0.0,
                    help="requests a second per service before answers are throttled, "
                         "as an AWS quota (a bucket of that many, refilling that many a second; 0 = none)")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("-v", "--verbose", action="store_true", help="access log on stderr")
    args = ap.parse_args(argv)

    try:
        upstream = parse_upstream(args.upstream)
        faults = parse_faults(args.faults)
        if not ipaddress.ip_address(args.listen_host).is_loopback:
            raise ValueError("--listen-host must be a loopback address")
    except ValueError as exc:
        ap.error(str(exc))
    if args.fault_every < 0:
        ap.error("--fault-every must be >= 0")

    server = FaultProxyServer(
        (args.listen_host, args.listen_port), upstream, FaultPlan(args.fault_every, faults),
        JsonLog(args.log), args.delay_seconds, args.upstream_timeout, args.verbose,
        args.latency_ms / 1000.0, Quota(args.quota),
    )
    port = server.server_address[1]
    # The socket is bound and listening here, so connects succeed from now on.
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"faultproxy listening on {args.listen_host}:{port} -> {args.upstream}", file=sys.stderr, flush=True)

    # SIGTERM (what test harnesses send) exits as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
