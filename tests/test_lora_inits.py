"""The LoRA init registry: unchanged outputs at step 0 on the real SmolLM2, matched norms, bad input."""

import copy

import numpy as np
import pytest
import torch

from distchar.errors import DistcharError
from distchar.generator.gp_pareto import GeneratorParams, match_scale, sample
from distchar.lora.inits import apply_init, apply_state, init_state, lora_targets
from distchar.lora.registry import COMPENSATED, INITS
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.sources import resolve_source

RANK = 8


def profiles_for(n_layers: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Generated profiles scaled to plausible singular values (as stage 05 gives them)."""
    rng = np.random.default_rng(seed)
    params = GeneratorParams(alpha=3.0, xmin=1.0, layer_length=2.0, index_length=3.0, nugget=0.1)
    real = np.tile(np.linspace(12, 3, 64), (n_layers, 1))
    return {t: match_scale(sample(params, n_layers, 64, rng), real, RANK) for t in CANONICAL_TYPES}


@pytest.fixture(scope="module")
def smollm2_4_layers():
    """The real SmolLM2-135M (dequantised from the bundled GGUF), cut to its first 4 layers."""
    from distchar.models.loading import load_tokenizer, load_transformers_model

    resolved = resolve_source("bundled:smollm2-135m-instruct")
    model = load_transformers_model(resolved)
    model.model.layers = model.model.layers[:4]
    model.config.num_hidden_layers = 4
    ids = load_tokenizer(resolved)("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids
    with torch.no_grad():
        reference = model(ids).logits
    return model, resolved.architecture, ids, reference


@pytest.fixture(scope="module")
def tiny_llama_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    from distchar.models.architectures import architecture_for

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    return LlamaForCausalLM(config).eval(), architecture_for("llama", "test")


@pytest.mark.parametrize("name", INITS)
def test_every_init_leaves_the_real_model_unchanged_at_step_zero(smollm2_4_layers, name):
    model, architecture, ids, reference = smollm2_4_layers
    peft_model = apply_init(copy.deepcopy(model), name, architecture, rank=RANK, profiles=profiles_for(4), seed=1)
    with torch.no_grad():
        logits = peft_model(ids).logits
    assert (logits - reference).abs().max().item() <= 1e-4
    state = init_state(peft_model, architecture)
    assert len(state) == 2 * 7 * 4
    if name in COMPENSATED:
        assert any(v.abs().sum() > 0 for k, v in state.items() if k.endswith("lora_B"))
    # a saved state put on a fresh copy gives the same model
    again = apply_state(copy.deepcopy(model), architecture, state, rank=RANK, lora_alpha=16,
                        compensated=name in COMPENSATED)  # fmt: skip
    with torch.no_grad():
        assert (again(ids).logits - reference).abs().max().item() <= 1e-4


def test_matched_random_has_the_norms_of_reshaped_module_by_module(tiny_llama_model):
    model, architecture = tiny_llama_model
    profiles = profiles_for(2)
    states = {}
    for name in ("reshaped", "reshaped_nonzero", "matched_random"):
        peft_model = apply_init(copy.deepcopy(model), name, architecture, rank=4, profiles=profiles, seed=3)
        states[name] = init_state(peft_model, architecture)
    for key, a in states["matched_random"].items():
        reference = states["reshaped"] if key.endswith("lora_A") else states["reshaped_nonzero"]
        assert a.norm().item() == pytest.approx(reference[key].norm().item(), rel=1e-5)
        assert a.abs().sum() > 0
    # the shape differs: reshaped's A has the profile's singular values (up to one scale), matched_random's not
    key = "q.0.lora_A"
    shaped = torch.linalg.svdvals(states["reshaped"][key]).numpy()
    expected = profiles["q"][0, :4] / np.linalg.norm(profiles["q"][0, :4])
    assert shaped / np.linalg.norm(shaped) == pytest.approx(expected, rel=1e-4)


def test_reshaped_keeps_b_zero_and_a_at_the_default_norm(tiny_llama_model):
    model, architecture = tiny_llama_model
    state = init_state(apply_init(copy.deepcopy(model), "reshaped", architecture, rank=4,
                                  profiles=profiles_for(2)), architecture)  # fmt: skip
    for key, tensor in state.items():
        if key.endswith("lora_B"):
            assert tensor.abs().sum() == 0
        else:
            assert tensor.norm().item() == pytest.approx(np.sqrt(4 / 3), rel=1e-5)


def test_the_seed_changes_random_inits_only(tiny_llama_model):
    model, architecture = tiny_llama_model

    def state(name, seed):
        return init_state(apply_init(copy.deepcopy(model), name, architecture, rank=4, seed=seed,
                                     profiles=profiles_for(2)), architecture)  # fmt: skip

    assert not torch.equal(state("default", 0)["q.0.lora_A"], state("default", 1)["q.0.lora_A"])
    assert torch.equal(state("default", 0)["q.0.lora_A"], state("default", 0)["q.0.lora_A"])
    assert torch.equal(state("pissa", 0)["q.0.lora_A"], state("pissa", 1)["q.0.lora_A"])


def test_rank_larger_than_a_matrix_side_names_the_module(tiny_llama_model):
    model, architecture = tiny_llama_model
    with pytest.raises(DistcharError, match=r"LoRA rank 40 exceeds the smaller side of model\.layers\.0\.self_attn"):
        apply_init(copy.deepcopy(model), "default", architecture, rank=40)


def test_bad_names_and_missing_profiles_are_one_sentence(tiny_llama_model):
    model, architecture = tiny_llama_model
    with pytest.raises(DistcharError, match="Unknown LoRA init 'kaiming'; registered: default"):
        apply_init(copy.deepcopy(model), "kaiming", architecture)
    with pytest.raises(DistcharError, match="needs generated profiles"):
        apply_init(copy.deepcopy(model), "reshaped", architecture)
    short = {t: p[:1] for t, p in profiles_for(2).items()}
    with pytest.raises(DistcharError, match=r"No generated profile of length 4 for .*layers\.1\..*\(\w+, layer 1\)"):
        apply_init(copy.deepcopy(model), "reshaped", architecture, rank=4, profiles=short)
    broken = profiles_for(2)
    broken["v"][0, 1] = np.nan
    with pytest.raises(DistcharError, match=r"v_proj \(v, layer 0\) is not all finite"):
        apply_init(copy.deepcopy(model), "reshaped_nonzero", architecture, rank=4, profiles=broken)


def test_a_saved_state_of_another_rank_is_refused(tiny_llama_model):
    model, architecture = tiny_llama_model
    state = init_state(apply_init(copy.deepcopy(model), "gaussian", architecture, rank=4), architecture)
    with pytest.raises(DistcharError, match="rank or shape unlike this model"):
        apply_state(copy.deepcopy(model), architecture, state, rank=2, lora_alpha=16, compensated=False)


def test_bert_encoder_modules_are_found():
    from distchar.models.loading import load_transformers_model

    resolved = resolve_source("bundled:all-minilm-l6-v2")
    model = load_transformers_model(resolved)
    kinds = {kind for kind, _ in lora_targets(model, resolved.architecture).values()}
    assert kinds == {"q", "k", "v", "o", "up", "down"}
    assert len(lora_targets(model, resolved.architecture)) == 36


@pytest.mark.parametrize("name", ["default", "pissa", "reshaped_nonzero", "matched_random"])
def test_gpt2_conv1d_modules_get_adapters_and_stay_unchanged(tiny_gpt2, name):
    """GPT-2 stores (in, out) Conv1D weights: fan_in_fan_out, and the compensation transposed."""
    from distchar.models.loading import load_transformers_model

    resolved = resolve_source(str(tiny_gpt2))
    model = load_transformers_model(resolved)
    kinds = {kind for kind, _ in lora_targets(model, resolved.architecture).values()}
    assert kinds == {"o", "up", "down"}  # the fused q/k/v matrix is left out
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        reference = model(ids).logits
        peft_model = apply_init(model, name, resolved.architecture, rank=2, profiles=profiles_for(2))
        assert (peft_model(ids).logits - reference).abs().max().item() <= 1e-5
