"""Stage 01 on real models: every projection matrix streamed, described, and bad input handled."""

import json

import pandas as pd
import pytest
import torch

from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.projections import iter_projection_matrices
from distchar.models.sources import resolve_source
from distchar.stages.extract import MANIFEST_COLUMNS, matrix_statistics, run_extract


def test_matrix_statistics_ignore_non_finite_entries_and_count_them():
    weight = torch.tensor([[3.0, float("nan")], [-4.0, float("inf")]])
    stats = matrix_statistics(weight)
    assert stats == {"frobenius_norm": 5.0, "min": -4.0, "max": 3.0, "nan_count": 1, "inf_count": 1}


def test_real_smollm2_has_30_layers_of_7_types(tmp_path):
    summary = run_extract("smollm2", "bundled:smollm2-135m-instruct", CANONICAL_TYPES, tmp_path / "out")
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert summary["n_matrices"] == 210 and summary["n_layers"] == 30 and summary["dtypes"] == ["Q4_1"]
    assert manifest.groupby("type").size().to_dict() == dict.fromkeys(CANONICAL_TYPES, 30)
    shapes = manifest.groupby("type")[["rows", "cols"]].first().apply(tuple, axis=1).to_dict()
    assert shapes == {"q": (576, 576), "k": (192, 576), "v": (192, 576), "o": (576, 576),
                      "gate": (1536, 576), "up": (1536, 576), "down": (576, 1536)}  # fmt: skip
    assert (manifest["frobenius_norm"] > 0).all() and (manifest["nan_count"] == 0).all()
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "manifest.csv",
        "summary.json",
        "metrics.json",
        "norms.png",
    }


@pytest.mark.slow
def test_streamed_smollm2_matrices_equal_what_transformers_loads_and_what_the_cache_holds():
    """Our GGUF reader gives transformers' dequantised weights; the cached folder every later load
    reads (``dequantised_folder``) holds exactly what transformers loads from the GGUF file: the
    weights, the generation settings and the tokenizer with its chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distchar.models.loading import load_tokenizer, load_transformers_model

    resolved = resolve_source("bundled:smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(str(resolved.folder), gguf_file=resolved.files[0].name)
    modules = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
               "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}  # fmt: skip
    for matrix, weight in iter_projection_matrices(resolved):
        reference = model.get_submodule(f"model.layers.{matrix.layer}.{modules[matrix.type]}").weight.detach().float()
        if matrix.type in ("q", "k"):
            # llama.cpp permutes q/k rows for its rotary layout: same rows, other order
            assert torch.equal(weight.sort(dim=0).values, reference.sort(dim=0).values)
        else:
            assert torch.equal(weight, reference)
    reloaded = load_transformers_model(resolved)
    direct, cached = model.state_dict(), reloaded.state_dict()
    assert direct.keys() == cached.keys() and all(torch.equal(direct[k], cached[k]) for k in direct)
    assert model.generation_config.to_dict() == reloaded.generation_config.to_dict()
    chat = [{"role": "user", "content": "What is the 90th percentile of N(0, 1)?"}]
    expected = AutoTokenizer.from_pretrained(str(resolved.folder), gguf_file=resolved.files[0].name)
    tokenizer = load_tokenizer(resolved)
    assert tokenizer.apply_chat_template(chat, tokenize=True) == expected.apply_chat_template(chat, tokenize=True)


def test_real_minilm_values_equal_the_safetensors_file():
    from safetensors.torch import load_file

    resolved = resolve_source("bundled:all-minilm-l6-v2")
    stored = load_file(resolved.files[0])
    for matrix, weight in iter_projection_matrices(resolved):
        assert torch.equal(weight, stored[matrix.source_tensor])


def test_nan_matrices_are_extracted_flagged_and_counted(tmp_path, nan_model):
    summary = run_extract("nan", str(nan_model), CANONICAL_TYPES, tmp_path / "out")
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert len(manifest) == 21
    assert summary["n_nonfinite_matrices"] == 2
    assert summary["nonfinite_matrices"] == ["layer 1 v", "layer 2 up"]
    v1 = manifest[(manifest.layer == 1) & (manifest.type == "v")].iloc[0]
    assert v1.nan_count == 3 and v1.inf_count == 0 and v1.frobenius_norm > 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n_nonfinite_matrices"] == 2


def test_truncated_gguf_stops_with_one_sentence_and_writes_nothing(tmp_path, truncated_gguf):
    out = tmp_path / "results" / "out"
    with pytest.raises(DistcharError) as err:
        run_extract("cut", str(truncated_gguf), CANONICAL_TYPES, out)
    assert "truncated" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_missing_source_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DistcharError, match="does not exist"):
        run_extract("x", str(tmp_path / "missing"), CANONICAL_TYPES, out)
    assert not out.exists()


def test_a_subset_of_types(tmp_path):
    summary = run_extract("minilm", "bundled:all-minilm-l6-v2", ("q", "down"), tmp_path / "out")
    assert summary["types"] == ["q", "down"] and summary["n_matrices"] == 12
