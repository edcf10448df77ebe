"""data/ is rebuilt byte for byte from packaged sources, and checked against data.dvc."""

import subprocess
import sys

import pytest
import yaml
from helpers import REPO

from distchar.data import RAW_INPUTS, dvc_directory_hash, packaged_path, rebuild
from distchar.errors import DistcharError


def test_rebuild_reproduces_the_folder_hash_recorded_in_data_dvc(tmp_path):
    written = rebuild(tmp_path / "data", REPO / "data.dvc")
    assert sorted(p.name for p in written) == sorted(item.name for item in RAW_INPUTS)
    for item, path in zip(RAW_INPUTS, written, strict=True):
        assert path.read_bytes() == packaged_path(item).read_bytes()


def test_rebuild_refuses_a_folder_that_does_not_match(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stray.txt").write_text("not a raw input")
    with pytest.raises(DistcharError, match="hashes to .* but .*data.dvc records"):
        rebuild(tmp_path / "data", REPO / "data.dvc")


def test_directory_hash_is_the_one_dvc_add_records(tmp_path):
    folder = tmp_path / "a"
    (folder / "sub").mkdir(parents=True)
    (folder / "x.txt").write_text("x\n")
    (folder / "sub" / "y.bin").write_bytes(bytes(range(256)))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "add", "-q", "a"], cwd=tmp_path, check=True)
    recorded = yaml.safe_load((tmp_path / "a.dvc").read_text())["outs"][0]["md5"]
    assert dvc_directory_hash(folder) == recorded
