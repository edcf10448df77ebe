"""PEFT adapter folders of every LoRA init: PEFT loads them, they give the init at step 0, training them moves only
the adapter, and bad input stops before anything is written."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch
from helpers import REPO

from distchar.config import load_params
from distchar.errors import DistcharError
from distchar.generator.gp_pareto import GeneratorParams, match_scale, sample
from distchar.lora.inits import apply_init
from distchar.lora.peft_adapter import PROVENANCE, describe_export, export_adapter, init_profiles
from distchar.lora.registry import COMPENSATED, INITS
from distchar.models.architectures import CANONICAL_TYPES, architecture_for
from distchar.models.loading import load_transformers_model
from distchar.models.sources import resolve_source
from distchar.results import STAGE_FOLDERS

RANK = 4
SMOLLM2 = "bundled:smollm2-135m-instruct"
GENERATOR = REPO / "results" / "05_generator" / "smollm2-135m-instruct"
"""Stage 05's committed result for SmolLM2 (generator.json; profiles.npz and inits/ live in the DVC cache)."""


def synthetic_profiles(n_layers: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Generated profiles scaled to plausible singular values, as stage 05 gives them."""
    rng = np.random.default_rng(seed)
    params = GeneratorParams(alpha=3.0, xmin=1.0, layer_length=2.0, index_length=3.0, nugget=0.1)
    real = np.tile(np.linspace(12, 3, 64), (n_layers, 1))
    return {t: match_scale(sample(params, n_layers, 64, rng), real, RANK) for t in CANONICAL_TYPES}


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    """The tiny Llama's source, base model, a batch of token ids and the base model's logits on it."""
    base = load_transformers_model(str(tiny_llama))
    ids = torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = base(ids).logits
    return str(tiny_llama), base, ids, reference


def in_memory(base, name: str, profiles, seed: int = 1):
    """The init as stage 05 makes it, on a copy of ``base`` (a tiny Llama)."""
    return apply_init(copy.deepcopy(base), name, architecture_for("llama", "test"), rank=RANK, profiles=profiles,
                      seed=seed)  # fmt: skip


def loaded(out, base, trainable: bool = False):
    """The exported adapter as a user's script loads it, on a copy of ``base``."""
    from peft import PeftModel

    return PeftModel.from_pretrained(copy.deepcopy(base), str(out), is_trainable=trainable)


def lora_tensors(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


@pytest.mark.parametrize("name", INITS)
def test_peft_loads_every_init_and_it_gives_the_init_at_step_zero(tmp_path, tiny, name):
    source, base, ids, reference = tiny
    profiles = synthetic_profiles(3)
    out = export_adapter(source, name, RANK, tmp_path / "adapter", profiles=profiles, seed=1)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md", "adapter_config.json", "adapter_model.safetensors", PROVENANCE]
    )
    assert not list(tmp_path.glob(".*partial"))
    config = json.loads((out / "adapter_config.json").read_text())
    made, peft_model = in_memory(base, name, profiles), loaded(out, base)
    with torch.no_grad():
        made_logits, loaded_logits = made(ids).logits, peft_model(ids).logits
    # every registered init leaves the output unchanged at step 0 (B A = 0, or W compensated)
    assert (loaded_logits - reference).abs().max().item() <= 1e-5
    assert (loaded_logits - made_logits).abs().max().item() <= 1e-5
    made_tensors, loaded_tensors = lora_tensors(made), lora_tensors(peft_model)
    assert made_tensors.keys() == loaded_tensors.keys() and made_tensors
    for key, tensor in made_tensors.items():
        if name not in COMPENSATED:  # the very adapter apply_init made
            assert torch.equal(loaded_tensors[key], tensor), key
        elif ".lora_A." in key:  # PEFT's conversion for the unmodified base: A' = [A; A], B' = [B, -B]
            assert torch.equal(loaded_tensors[key], torch.cat([tensor, tensor], dim=0)), key
        else:
            assert torch.equal(loaded_tensors[key], torch.cat([tensor, -tensor], dim=1)), key
    assert (config["r"], config["lora_alpha"]) == ((2 * RANK, 32) if name in COMPENSATED else (RANK, 16))
    assert config["init_lora_weights"] is True  # loading never redoes the init (pissa would change W again)
    assert f"'{name}'" in describe_export(out)


@pytest.mark.parametrize("name", ["default", "reshaped", "pissa", "reshaped_nonzero"])
def test_training_the_loaded_adapter_changes_only_adapter_weights(tmp_path, tiny, name):
    source, base, ids, _ = tiny
    out = export_adapter(source, name, RANK, tmp_path / "adapter", profiles=synthetic_profiles(3), seed=1)
    model = loaded(out, base, trainable=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    original = dict(base.named_parameters())
    for n, p in before.items():  # loading left the base weights as they were (no compensation on the base)
        if "lora_" not in n:
            assert torch.equal(p, original[n.replace("base_model.model.", "", 1).replace(".base_layer", "")]), n
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(ids, labels=ids).loss.backward()
    optimiser.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in before.items() if "lora_" not in n)
    assert any(not torch.equal(after[n], p) for n, p in before.items() if "lora_" in n)


@pytest.mark.parametrize("name", ["reshaped", "reshaped_nonzero"])
def test_gpt2s_transposed_weights_export_and_convert_too(tmp_path, tiny_gpt2, name):
    """GPT-2 stores its projections (in, out) (Conv1D, ``fan_in_fan_out``): the conversion must follow."""
    source = str(tiny_gpt2)
    base, profiles = load_transformers_model(source), synthetic_profiles(2)
    ids = torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(0))
    out = export_adapter(source, name, RANK, tmp_path / "adapter", profiles=profiles, seed=1)
    made = apply_init(copy.deepcopy(base), name, resolve_source(source).architecture, rank=RANK, profiles=profiles,
                      seed=1)  # fmt: skip
    with torch.no_grad():
        reference, made_logits, loaded_logits = base(ids).logits, made(ids).logits, loaded(out, base)(ids).logits
    assert (loaded_logits - made_logits).abs().max().item() <= 1e-5
    assert (loaded_logits - reference).abs().max().item() <= 1e-5


def test_a_converted_init_trained_at_half_the_rate_follows_the_compensated_init(tmp_path, tiny):
    source, base, ids, reference = tiny
    profiles = synthetic_profiles(3)
    out = export_adapter(source, "reshaped_nonzero", RANK, tmp_path / "adapter", profiles=profiles, seed=1)

    def trained(model, lr):
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
        for _ in range(5):
            model(ids, labels=ids).loss.backward()
            optimiser.step()
            optimiser.zero_grad()
        with torch.no_grad():
            return model(ids).logits

    init = trained(in_memory(base, "reshaped_nonzero", profiles), 1e-3)
    change = (init - reference).abs().max().item()
    half, full = trained(loaded(out, base, trainable=True), 5e-4), trained(loaded(out, base, trainable=True), 1e-3)
    assert (half - init).abs().max().item() < 0.05 * change
    assert (full - init).abs().max().item() > 0.2 * change


@pytest.fixture
def committed_generator(tmp_path):
    """Stage 05's committed generator.json for SmolLM2 alone, in a folder of its own: the tests are the same
    whether or not ``dvc pull`` has put profiles.npz and stage 02's values beside it in results/."""
    folder = tmp_path / "results" / "05_generator" / "smollm2-135m-instruct"
    folder.mkdir(parents=True)
    shutil.copy(GENERATOR / "generator.json", folder)
    return folder


def test_reshaped_on_the_real_smollm2_from_the_committed_generator(tmp_path, committed_generator):
    from peft import PeftModel

    from distchar.models.loading import load_tokenizer

    resolved = resolve_source(SMOLLM2)
    # generator.json on singular values computed here: its recorded start points are checked against them
    profiles, origin = init_profiles(resolved, 8, generator=committed_generator)
    assert origin.endswith("generator.json on singular values computed here") and profiles["q"].shape == (30, 64)
    out = export_adapter(SMOLLM2, "reshaped", 8, tmp_path / "adapter", profiles=profiles, seed=3)
    tokenizer = load_tokenizer(resolved)
    batch = tokenizer(["The quick brown fox jumps over the lazy dog.", "Paris is the capital of"],
                      return_tensors="pt", padding=True)  # fmt: skip
    base = load_transformers_model(resolved)
    made = apply_init(copy.deepcopy(base), "reshaped", resolved.architecture, rank=8, profiles=profiles, seed=3)
    peft_model = PeftModel.from_pretrained(base, str(out))
    with torch.no_grad():
        made_logits, loaded_logits = made(**batch).logits, peft_model(**batch).logits
    assert (loaded_logits - made_logits).abs().max().item() <= 1e-6
    with peft_model.disable_adapter(), torch.no_grad():
        reference = peft_model(**batch).logits
    assert (loaded_logits - reference).abs().max().item() <= 1e-4  # B = 0: the base model's output
    assert json.loads((out / PROVENANCE).read_text())["profiles"] == "given by the caller"


def small_params():
    """params.yaml with stage 02's k fitted to the tiny Llama (its k and v are 16 x 32), a short NSGA-II, no
    bootstrap, and two of our inits at rank 4."""
    params = load_params(REPO / "params.yaml")
    update = {
        "svd": params.svd.model_copy(update={"k": 16}),
        "powerlaw": params.powerlaw.model_copy(update={"bootstrap": 0}),
        "generator": params.generator.model_copy(update={"population": 6, "generations": 2, "check_draws": 2}),
        "lora": params.lora.model_copy(update={"rank": RANK, "inits": ["reshaped", "reshaped_nonzero"], "seeds": [0]}),
    }
    return params.model_copy(update=update)


@pytest.fixture(scope="module")
def tiny_stages(tmp_path_factory, tiny_llama):
    """Stages 01-05 on the tiny Llama as the pipeline runs them, under a results/ of their own; the stage 05 folder."""
    from distchar.stages.distances import run_distances
    from distchar.stages.extract import run_extract
    from distchar.stages.generator import run_generator
    from distchar.stages.powerlaw import run_powerlaw
    from distchar.stages.svd import run_svd

    params, source = small_params(), str(tiny_llama)
    root = tmp_path_factory.mktemp("pipeline") / "results"
    folder = {stage: root / STAGE_FOLDERS[stage] / "tiny" for stage in ("extract", "svd", "distances", "powerlaw")}
    run_extract("tiny", source, tuple(params.extract.types), folder["extract"])
    run_svd("tiny", source, folder["extract"], params.svd, folder["svd"])
    run_distances("tiny", folder["svd"], folder["distances"])
    run_powerlaw("tiny", folder["distances"], params.powerlaw, folder["powerlaw"])
    generator = root / STAGE_FOLDERS["generator"] / "tiny"
    run_generator("tiny", source, folder["svd"], folder["powerlaw"], params.generator, params.lora, generator)
    return generator


def saved_profiles(folder) -> dict[str, np.ndarray]:
    with np.load(folder / "profiles.npz") as data:
        return {kind: data[kind] for kind in data.files}


def same_profiles(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[kind], b[kind]) for kind in a)


def test_profiles_made_here_and_the_exported_init_are_stage_05s(tmp_path, tiny, tiny_stages):
    from safetensors.torch import load_file

    source, base, _, _ = tiny
    profiles, origin = init_profiles(resolve_source(source), RANK, params=small_params())
    assert origin.startswith("tuned here") and same_profiles(profiles, saved_profiles(tiny_stages))
    out = export_adapter(source, "reshaped", RANK, tmp_path / "adapter", params=small_params(), seed=0)
    assert json.loads((out / PROVENANCE).read_text())["profiles"].startswith("tuned here")
    stage_05 = load_file(tiny_stages / "inits" / "reshaped.seed0.safetensors")  # <type>.<layer>.lora_A / _B
    exported = lora_tensors(loaded(out, base))
    assert len(exported) == len(stage_05) == 2 * 7 * 3
    for key, tensor in exported.items():  # base_model.model.model.layers.<layer>.<...>.<x>_proj.lora_A.default.weight
        parts = key.split(".")
        assert torch.equal(tensor, stage_05[f"{parts[6].removesuffix('_proj')}.{parts[4]}.{parts[7]}"]), key


def test_a_stage_05_folder_gives_its_profiles_checked_against_the_model(tmp_path, tiny, tiny_stages):
    resolved, params = resolve_source(tiny[0]), small_params()
    expected = saved_profiles(tiny_stages)
    profiles, origin = init_profiles(resolved, RANK, generator=tiny_stages, params=params)  # the pipeline's own
    assert origin.endswith("profiles.npz") and same_profiles(profiles, expected)
    # another rank (profiles.npz is scaled for rank 4): generator.json on stage 02's values beside it
    profiles, origin = init_profiles(resolved, 2, generator=tiny_stages, params=params)
    assert origin.endswith("singular_values.npz")
    assert same_profiles(profiles, init_profiles(resolved, 2, params=params)[0])
    # generator.json alone (what git holds): on singular values computed here
    alone = tmp_path / "results" / "05_generator" / "tiny"
    alone.mkdir(parents=True)
    shutil.copy(tiny_stages / "generator.json", alone)
    profiles, origin = init_profiles(resolved, RANK, generator=alone, params=params)
    assert origin.endswith("computed here") and same_profiles(profiles, expected)
    # stage 02's values beside it, but of another model
    (tmp_path / "results" / "02_svd" / "tiny").mkdir(parents=True)
    with np.load(tiny_stages.parent.parent / "02_svd" / "tiny" / "singular_values.npz") as data:
        scaled = {key: data[key] if key.endswith("_layers") else 1.5 * data[key] for key in data.files}
    np.savez(tmp_path / "results" / "02_svd" / "tiny" / "singular_values.npz", **scaled)
    with pytest.raises(DistcharError, match="singular values of another model than"):
        init_profiles(resolved, RANK, generator=alone, params=params)


def test_another_models_generator_folder_is_refused(tiny, committed_generator):
    with pytest.raises(DistcharError, match="not made from the singular values"):
        init_profiles(resolve_source(tiny[0]), RANK, generator=committed_generator, params=small_params())
    with pytest.raises(DistcharError, match="tuned on the types"):
        init_profiles(resolve_source(SMOLLM2), RANK, generator=GENERATOR.with_name("all-minilm-l6-v2"))


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        ({"init": "lora_plus"}, "Unknown LoRA init 'lora_plus'"),
        ({"rank": 0}, "LoRA rank 0"),
        ({"rank": 2.5}, "LoRA rank 2.5"),
        ({"rank": 17}, "LoRA rank 17 exceeds the smaller side"),
        ({"source": "/no/such/model"}, "'/no/such/model' does not exist"),
        ({"source": "bundled:nothing"}, "bundled:nothing"),
        ({"lora_alpha": 0}, "LoRA alpha 0"),
        ({"init": "reshaped", "generator": "results/no-such-generator"}, "no generator.json"),
    ],
)
def test_bad_input_names_the_culprit_and_writes_nothing(tmp_path, tiny, change, culprit):
    arguments = {"source": tiny[0], "init": "default", "rank": RANK, "out": tmp_path / "adapter"} | change
    with pytest.raises(DistcharError, match=culprit):
        export_adapter(**arguments)
    assert not list(tmp_path.iterdir())


def test_a_rank_above_stage_02s_k_is_refused_for_our_inits(tmp_path, tiny):
    params = small_params()
    params = params.model_copy(update={"svd": params.svd.model_copy(update={"k": 2})})
    with pytest.raises(DistcharError, match="exceeds svd.k = 2"):
        export_adapter(tiny[0], "reshaped", RANK, tmp_path / "adapter", params=params)
    assert not list(tmp_path.iterdir())


def test_the_output_is_whole_or_absent(tmp_path, tiny, monkeypatch):
    from peft import PeftModel

    source = tiny[0]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DistcharError, match="is a file"):
        export_adapter(source, "default", RANK, tmp_path / "file")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(DistcharError, match="holds files other than a PEFT adapter"):
        export_adapter(source, "default", RANK, tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"

    out = export_adapter(source, "default", RANK, tmp_path / "adapter", seed=0)
    first = (out / "adapter_model.safetensors").read_bytes()
    save = PeftModel.save_pretrained

    def broken(self, directory, **kwargs):  # PEFT writes part of the folder, then fails
        save(self, directory, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(PeftModel, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        export_adapter(source, "pissa", RANK, out)
    assert (out / "adapter_model.safetensors").read_bytes() == first  # the old adapter stays, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "file", "notes"]
    monkeypatch.undo()
    export_adapter(source, "default", RANK, out, seed=1)  # an adapter folder is replaced
    assert (out / "adapter_model.safetensors").read_bytes() != first
