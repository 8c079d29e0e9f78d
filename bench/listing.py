"""What a listing of one job's keys costs in moto as the bucket fills:
`python -m bench.listing [JOBS]`.

Fills an in-process moto bucket with JOBS jobs of 25 keys (default 1,000: a 1,000-job batch's
bucket), then lists 200 jobs' prefixes with moto's own listing (as the local stack runs it, from
one copy of the bucket's keys) and with the local stack's index
(`brief_local.motoserver.indexed_listings`), and prints the CPU time of each per listing.
"""

from __future__ import annotations

import argparse
import time

import boto3
from moto import mock_aws

KEYS_PER_JOB = 25
LISTINGS = 200


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jobs", nargs="?", type=int, default=1_000)
    args = parser.parse_args(argv)
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import S3Backend, s3_backends

    from brief_local.motoserver import indexed_listings, steady_listings

    steady_listings()  # as the local stack's moto lists without the index
    indexed_listings()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="listing")
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for job in range(args.jobs):
            for n in range(KEYS_PER_JOB):
                backend.put_object("listing", f"jobs/{job:06d}/{n:02d}.json", b"{}")
        bucket = backend.get_bucket("listing")
        ways = (("moto's own", S3Backend.list_objects.moto), ("indexed", S3Backend.list_objects))  # type: ignore[attr-defined]
        print(f"{len(bucket.keys):,} keys; one job's {KEYS_PER_JOB} listed {LISTINGS} times:")
        for name, list_objects in ways:
            started = time.process_time()
            for i in range(LISTINGS):
                prefix = f"jobs/{i * args.jobs // LISTINGS:06d}/"
                keys = list_objects(backend, bucket, prefix, None, None, 1000)[0]
                assert len(keys) == KEYS_PER_JOB
            per = (time.process_time() - started) / LISTINGS * 1000
            print(f"  {name:11} {per:7.3f} ms of CPU a listing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
