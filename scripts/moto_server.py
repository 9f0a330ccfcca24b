"""moto's server with the wire-format fixes the Rust SDK needs, for the watcher tests.

- moto 5.2.5 answers GetBucketVersioning with a <GetBucketVersioningResponse> root
  element; S3 (and so aws-sdk-s3) uses <VersioningConfiguration>.
- moto's AWS Config BatchGet(Aggregate)ResourceConfig writes timestamps as
  "YYYY-MM-DD HH:MM:SS.ffffff" strings; the JSON 1.1 protocol (and real AWS) uses
  epoch seconds.
- moto has no CloudTrail LookupEvents: the tests' records are answered from a file
  (see lookup_events below).
boto3 does not care; the Rust SDK refuses both answers. Nothing else is changed: what
moto models, and how, stays moto's.

Usage: .venv-moto/bin/python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""
from xml.sax.saxutils import escape

import json
import os
from datetime import datetime, timezone

from moto.cloudtrail.responses import CloudTrailResponse
from moto.config.responses import ConfigResponse
from moto.s3.responses import S3Response
from moto.server import main


def get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{escape(status)}</Status>" if status else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{inner}</VersioningConfiguration>"
    )
    return 200, {}, body


S3Response.get_bucket_versioning = get_bucket_versioning

TIME_FIELDS = ("configurationItemCaptureTime", "resourceCreationTime")


def epoch_times(value):
    """Rewrites moto's timestamp strings in a Config answer as epoch seconds."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in TIME_FIELDS and isinstance(v, str):
                try:
                    v = datetime.fromisoformat(v).replace(tzinfo=timezone.utc).timestamp()
                except ValueError:
                    pass
            out[k] = epoch_times(v)
        return out
    if isinstance(value, list):
        return [epoch_times(v) for v in value]
    return value


def with_epoch_times(original):
    def handler(self):
        return json.dumps(epoch_times(json.loads(original(self))))

    return handler


ConfigResponse.batch_get_resource_config = with_epoch_times(
    ConfigResponse.batch_get_resource_config
)
ConfigResponse.batch_get_aggregate_resource_config = with_epoch_times(
    ConfigResponse.batch_get_aggregate_resource_config
)



def lookup_events(self):
    """CloudTrail LookupEvents, which moto does not implement: answered from the
    CloudTrail records a test writes, one JSON object per line, to the file named by
    GUARDRAIL_TEST_CLOUDTRAIL (none: no events). Only the ResourceName attribute and
    the time window are honoured, newest first, as CloudTrail answers."""
    path = os.environ.get("GUARDRAIL_TEST_CLOUDTRAIL")
    records = []
    if path and os.path.exists(path):
        records = [json.loads(line) for line in open(path) if line.strip()]
    attrs = self._get_param("LookupAttributes", [])
    names = [a["AttributeValue"] for a in attrs if a.get("AttributeKey") == "ResourceName"]
    start, end = self._get_param("StartTime"), self._get_param("EndTime")

    def epoch(v):
        if isinstance(v, (int, float)):
            return float(v)
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()

    def resources(r):
        return [x.get("ARN") or x.get("resourceName") for x in r.get("resources", [])] + [
            str(v) for v in (r.get("requestParameters") or {}).values()
        ]

    out = []
    for r in records:
        at = epoch(r["eventTime"])
        if start is not None and at < epoch(start) or end is not None and at > epoch(end):
            continue
        if names and not any(n in resources(r) for n in names):
            continue
        out.append({
            "EventId": r.get("eventID"), "EventName": r.get("eventName"),
            "ReadOnly": str(r.get("readOnly", False)).lower(), "EventTime": at,
            "EventSource": r.get("eventSource"), "Username": (r.get("userIdentity") or {}).get("userName"),
            "Resources": [{"ResourceName": n} for n in names], "CloudTrailEvent": json.dumps(r),
        })
    out.sort(key=lambda e: -e["EventTime"])
    return json.dumps({"Events": out})


CloudTrailResponse.lookup_events = lookup_events

if __name__ == "__main__":
    main()
