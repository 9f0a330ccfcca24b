"""moto's server with one fix the Rust SDK needs, for the watcher tests.

moto 5.2.5 answers GetBucketVersioning with a <GetBucketVersioningResponse> root
element; S3 (and so aws-sdk-s3) uses <VersioningConfiguration>. boto3 does not care,
the Rust SDK refuses the answer. Everything else is moto as released.

Usage: .venv-moto/bin/python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""
from xml.sax.saxutils import escape

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

if __name__ == "__main__":
    main()
