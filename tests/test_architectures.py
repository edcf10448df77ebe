"""Tensor names of every supported architecture map to the canonical types, oriented (out, in)."""

import pytest
import torch

from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES, architecture_for
from distchar.models.projections import iter_projection_matrices, list_projections
from distchar.models.sources import resolve_source


def test_unknown_architecture_names_the_supported_ones_and_where_to_add_one():
    with pytest.raises(DistcharError) as err:
        architecture_for("mamba", "config.json")
    message = str(err.value)
    assert "'mamba'" in message and "llama" in message and "gpt2" in message and "bert" in message
    assert "src/distchar/models/architectures.py" in message


def test_unknown_architecture_folder_stops_at_resolution(tmp_path, tiny_llama):
    import shutil

    folder = tmp_path / "mamba"
    shutil.copytree(tiny_llama, folder)
    (folder / "config.json").write_text('{"model_type": "mamba"}')
    with pytest.raises(DistcharError, match="Architecture 'mamba'"):
        resolve_source(str(folder))


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "mistral"])
def test_llama_family_shares_one_map(model_type):
    assert architecture_for(model_type, "x").name == "llama"


def test_llama_folder_matches_the_model_modules(tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
             "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}  # fmt: skip
    seen = []
    for matrix, weight in iter_projection_matrices(resolve_source(str(tiny_llama))):
        module = model.get_submodule(f"model.layers.{matrix.layer}.{names[matrix.type]}")
        assert torch.equal(weight, module.weight.detach())
        seen.append((matrix.layer, matrix.type))
    assert seen == [(layer, t) for layer in range(3) for t in CANONICAL_TYPES]


def test_gpt2_fused_c_attn_splits_into_q_k_v_in_linear_orientation(tiny_gpt2):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    matrices = dict(((m.layer, m.type), w) for m, w in iter_projection_matrices(resolve_source(str(tiny_gpt2))))
    assert sorted({t for _, t in matrices}) == sorted(["q", "k", "v", "o", "up", "down"])
    block = model.transformer.h[1]
    fused = block.attn.c_attn.weight.detach()  # Conv1D: (in, 3 * out)
    for part, t in enumerate("qkv"):
        assert torch.equal(matrices[(1, t)], fused[:, part * 32 : (part + 1) * 32].T)
    assert torch.equal(matrices[(1, "up")], block.mlp.c_fc.weight.detach().T)
    assert matrices[(1, "up")].shape == (128, 32)  # (out, in), as a Linear would hold it


def test_bert_map_on_real_minilm():
    resolved = resolve_source("bundled:all-minilm-l6-v2")
    matrices = list_projections(resolved)
    assert resolved.architecture.name == "bert"
    assert len(matrices) == 6 * 6  # six layers, no gate
    down = next(m for m in matrices if m.type == "down")
    assert down.source_tensor == "encoder.layer.0.output.dense.weight" and down.shape == (384, 1536)
