"""Push and pull the committed run's outputs through an S3 server on the loopback interface.

Run by hand after ``make run`` with the run's ``dvc.lock`` committed (the outputs in the DVC cache):

    python benchmarks/s3_remote.py [--project .] [--cache PATH]

A moto S3 server (``ThreadedMotoServer`` on 127.0.0.1, a free port) holds the bucket. A git clone
of the project's HEAD, using the project's DVC cache, pushes every output to it (``dvc push``);
a second, empty clone pulls them (``dvc pull``), and then must report every stage up to date and
have nothing to run (``dvc status``, ``dvc repro --dry``). Neither clone touches the project's own
config. Writes results/s3_remote.json: files and bytes pushed, files pulled, seconds of each.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from common import write_results

REPO = Path(__file__).resolve().parents[1]
BUCKET = "distchar-bench"
KEYS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def dvc(folder: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=folder, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed in {folder}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def clone(project: Path, target: Path, endpoint: str) -> Path:
    subprocess.run(["git", "clone", "-q", str(project), str(target)], check=True)
    dvc(target, "remote", "add", "--local", "-f", "-d", "bench", f"s3://{BUCKET}/cache")
    for key, value in {"endpointurl": endpoint, **KEYS}.items():
        dvc(target, "remote", "modify", "--local", "bench", key, value)
    return target


def transferred(output: str, verb: str) -> int:
    found = re.search(rf"(\d+) files? {verb}", output)
    return int(found.group(1)) if found else 0


def main() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=REPO)
    parser.add_argument("--cache", type=Path, default=None, help="the DVC cache holding the outputs")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's log line per request
    cache = (args.cache or args.project / ".dvc" / "cache").resolve()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as tmp:
            sender = clone(args.project, Path(tmp) / "sender", endpoint)
            dvc(sender, "cache", "dir", "--local", str(cache))
            started = time.perf_counter()
            pushed = dvc(sender, "push")
            push_s = time.perf_counter() - started
            objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                       for o in page.get("Contents", [])]  # fmt: skip
            receiver = clone(args.project, Path(tmp) / "receiver", endpoint)
            started = time.perf_counter()
            pulled = dvc(receiver, "pull")
            pull_s = time.perf_counter() - started
            status = dvc(receiver, "status")
            would_run = re.findall(r"Running stage '([^']+)'", dvc(receiver, "repro", "--dry"))
    finally:
        server.stop()
    write_results(
        "s3_remote",
        {
            "files_pushed": transferred(pushed, "pushed"),
            "objects_in_bucket": len(objects),
            "megabytes_in_bucket": round(sum(o["Size"] for o in objects) / 1e6, 1),
            "push_s": round(push_s, 1),
            "files_pulled": transferred(pulled, "fetched") or transferred(pulled, "added"),
            "pull_s": round(pull_s, 1),
            "clone_up_to_date": "Data and pipelines are up to date." in status,
            "stages_the_clone_would_run": would_run,
            "goal": "every output pushed and pulled; the clone up to date with nothing to run",
        },
    )


if __name__ == "__main__":
    main()
