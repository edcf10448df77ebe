"""Model sources: bundled, GGUF file, local folder, hub id; each failure is one clear sentence."""

import json
import os
import shutil

import pytest
from helpers import run_python

from distchar.errors import DistcharError
from distchar.models.sources import resolve_source


def test_bundled_smollm2_is_the_4bit_gguf():
    resolved = resolve_source("bundled:smollm2-135m-instruct")
    assert resolved.file_format == "gguf" and resolved.files[0].name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolved.architecture.name == "llama"


def test_bundled_minilm_is_a_safetensors_folder():
    resolved = resolve_source("bundled:all-minilm-l6-v2")
    assert resolved.file_format == "safetensors" and resolved.architecture.name == "bert"


def test_unknown_bundled_name_lists_the_bundled_ones():
    with pytest.raises(DistcharError, match="names no bundled model; bundled: bundled:smollm2-135m-instruct"):
        resolve_source("bundled:gpt-5")


def test_missing_path_is_one_sentence_naming_it(tmp_path):
    with pytest.raises(DistcharError) as err:
        resolve_source(str(tmp_path / "nowhere"))
    assert str(err.value).startswith(f"Model source '{tmp_path / 'nowhere'}' does not exist")


def test_gguf_file_path_and_folder_holding_it(tmp_path, smollm2_gguf):
    link = tmp_path / "m" / "model.gguf"
    link.parent.mkdir()
    link.symlink_to(smollm2_gguf)
    assert resolve_source(str(link)).file_format == "gguf"
    assert resolve_source(str(link.parent)).files == (link,)


def test_folder_without_config_says_what_is_missing(tmp_path, tiny_llama):
    folder = tmp_path / "no-config"
    shutil.copytree(tiny_llama, folder)
    (folder / "config.json").unlink()
    with pytest.raises(DistcharError, match="has no config.json"):
        resolve_source(str(folder))


def test_truncated_gguf_is_rejected_before_any_work(truncated_gguf):
    with pytest.raises(DistcharError, match=r"GGUF file .*truncated\.gguf is truncated"):
        resolve_source(str(truncated_gguf))


def _hub_cache(root, repo_id, files):
    """A Hugging Face hub cache holding one snapshot of ``repo_id``, as huggingface_hub lays it out."""
    commit = "0" * 40
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in files:
        shutil.copy(f, snapshot / f.name)
    return snapshot


def test_hub_id_offline_and_uncached_fails_with_a_clear_sentence(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    code = (
        "from distchar.models.sources import resolve_source\n"
        "from distchar.errors import DistcharError\n"
        "try:\n    resolve_source('someorg/some-model')\n"
        "except DistcharError as e:\n    print(e)\n"
    )
    out = run_python(code, env=env)
    assert "Model source 'someorg/some-model' is not in the local Hugging Face cache" in out.stdout, out.stderr


def test_hub_id_resolves_from_the_normal_cache_offline(tmp_path, tiny_llama):
    snapshot = _hub_cache(
        tmp_path, "someorg/tiny-llama", [tiny_llama / "config.json", tiny_llama / "model.safetensors"]
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    code = (
        "import json\nfrom distchar.models.sources import resolve_source\n"
        "from distchar.models.projections import list_projections\n"
        "r = resolve_source('someorg/tiny-llama')\n"
        "print(json.dumps({'folder': str(r.folder), 'n': len(list_projections(r))}))\n"
    )
    out = run_python(code, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"folder": str(snapshot), "n": 3 * 7}


def test_truncated_safetensors_is_rejected_naming_the_file(tmp_path, tiny_llama):
    folder = tmp_path / "cut"
    shutil.copytree(tiny_llama, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    from distchar.models.projections import list_projections

    with pytest.raises(DistcharError, match=rf"Weights file {weights} is truncated or corrupt"):
        list_projections(resolve_source(str(folder)))


def test_fast_gguf_header_agrees_with_gguf_reader(smollm2_gguf):
    import gguf

    from distchar.models.gguf_index import read_gguf_header

    arch, tensors = read_gguf_header(smollm2_gguf)
    reference = gguf.GGUFReader(smollm2_gguf)
    assert arch == "llama" and len(tensors) == len(reference.tensors) == 272
    for ours, theirs in zip(tensors, reference.tensors, strict=True):
        assert (ours["name"], ours["type"], ours["offset"], ours["n_bytes"]) == (
            theirs.name, theirs.tensor_type.name, theirs.data_offset, theirs.n_bytes,
        )  # fmt: skip
        assert (tuple(ours["raw_shape"]), ours["raw_dtype"]) == (theirs.data.shape, str(theirs.data.dtype))


def test_a_file_that_is_not_gguf_is_named(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(DistcharError, match=r"model.gguf is not a GGUF file"):
        resolve_source(str(fake))
