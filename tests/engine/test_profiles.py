import pytest

from llm_research_bench.engine.profiles import ProfileError, get_profile, load_profiles


def test_builtin_profiles_carry_seed_values():
    p = load_profiles()
    assert set(p) >= {"quick", "balanced", "thorough"}
    q = p["quick"]
    assert (q.context_window, q.batch_size, q.ef_search, q.max_tokens, q.timeout_s) == (4096, 8, 64, 2048, 45)
    ref = q.budget_for("apple-m1-16gb")
    assert (ref.time_lower_s, ref.time_upper_s, ref.memory_mb) == (25, 45, 4096)
    assert p["balanced"].budget_for("apple-m1-16gb").time_upper_s == 90
    assert p["thorough"].budget_for("apple-m1-16gb").memory_mb == 8192
    assert q.novelty_threshold == 0.2 and p["balanced"].novelty_threshold == p["thorough"].novelty_threshold == 0.25
    assert q.first_batch_size == 1 and p["balanced"].first_batch_size == p["thorough"].first_batch_size == 2
    assert q.first_batch_tokens == 160 and p["balanced"].first_batch_tokens == p["thorough"].first_batch_tokens == 0
    assert all(x.claim_mode == "extractive" for x in p.values())
    assert q.models["ollama"].startswith("qwen2.5:")


def test_unknown_machine_class_falls_back_to_reference():
    b = get_profile("quick").budget_for("plan9-mips-1c")
    assert b.is_reference_fallback and b.time_upper_s == 45


def _write(tmp_path, text):
    f = tmp_path / "p.toml"
    f.write_text(text)
    return f


def test_user_file_overrides_and_adds(tmp_path):
    f = _write(tmp_path, """
[profiles.quick]
max_tokens = 4000
[profiles.tiny]
context_window = 2048
batch_size = 4
min_batch_size = 2
max_batch_size = 6
ef_search = 32
retrieve_k = 16
max_tokens = 512
claim_tokens = 96
synthesis_tokens = 128
timeout_s = 30
novelty_threshold = 0.2
citation_floor = 0.5
models = { llamacpp = "smollm2-135m" }
[profiles.tiny.budgets.linux-x86_64-2c]
time_s = [5, 20]
memory_mb = 2048
""")
    p = load_profiles(f)
    assert p["quick"].max_tokens == 4000 and p["quick"].context_window == 4096
    assert p["tiny"].budget_for("linux-x86_64-2c").time_upper_s == 20


@pytest.mark.parametrize("body, key", [
    ("[profiles.quick]\nbatch_sise = 3\n", "batch_sise"),
    ("[profiles.quick]\nbatch_size = -1\n", "batch_size"),
    ("[profiles.quick]\nbatch_size = 'eight'\n", "batch_size"),
    ("[profiles.quick]\ntimeout_s = 0\n", "timeout_s"),
    ("[profiles.quick.budgets.apple-m1-16gb]\ntime_s = [50, 45]\n", "budgets.apple-m1-16gb.time_s"),
    ("[profiles.quick.budgets.x]\ntime_s = [1, 2]\n", "budgets.x.memory_mb"),
    ("[profiles.quick.models]\nllamacpp = ''\n", "models.llamacpp"),
    ("[profiles.quick.models]\nvllm = 'x'\n", "models.vllm"),
    ("[profiles.new]\ncontext_window = 4096\n", "batch_size"),
])
def test_bad_profile_names_file_profile_and_key(tmp_path, body, key):
    f = _write(tmp_path, body)
    with pytest.raises(ProfileError) as e:
        load_profiles(f)
    msg = str(e.value)
    assert str(f) in msg and f"key '{key}'" in msg and "profile '" in msg


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profiles(_write(tmp_path, "[profiles.quick\n"))
    with pytest.raises(ProfileError, match="file not found"):
        load_profiles(tmp_path / "nope.toml")


def test_unknown_profile_lists_known():
    with pytest.raises(ProfileError, match="unknown profile 'fast'.*quick"):
        get_profile("fast")


def test_model_for_unknown_backend(tmp_path):
    with pytest.raises(ProfileError, match="models"):
        get_profile("quick").model_for("vllm")


@pytest.mark.parametrize("body,key", [
    ('claim_mode = "quoted"', "claim_mode"),
    ("first_batch_size = 0", "first_batch_size"),
    ("first_batch_tokens = -1", "first_batch_tokens"),
    ('first_batch_tokens = "160"', "first_batch_tokens"),
])
def test_claim_mode_and_first_batch_size_are_checked(tmp_path, body, key):
    f = _write(tmp_path, f"[profiles.quick]\n{body}\n")
    with pytest.raises(ProfileError, match=f"key '{key}'"):
        load_profiles(f)
