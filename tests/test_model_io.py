"""Saving and loading (own format, Auto classes, remote code, ModernBERT folders), bad inputs, training modes."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
import torch
from model_helpers import as_modernbert_config, max_diff_on_real_tokens, random_batch, tiny_config
from process_helpers import python_json
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    ModernBertForMaskedLM,
)

from modeling_rexbert import (
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
    RexBertModel,
)

AUTO_PAIRS = [
    (AutoModel, RexBertModel),
    (AutoModelForMaskedLM, RexBertForMaskedLM),
    (AutoModelForSequenceClassification, RexBertForSequenceClassification),
    (AutoModelForTokenClassification, RexBertForTokenClassification),
    (AutoModelForQuestionAnswering, RexBertForQuestionAnswering),
    (AutoModelForMultipleChoice, RexBertForMultipleChoice),
]


@pytest.fixture(scope="module")
def saved_mlm(tmp_path_factory):
    """A tiny RexBertForMaskedLM saved with save_pretrained, and its outputs on a ragged batch."""
    torch.manual_seed(0)
    model = RexBertForMaskedLM(tiny_config()).eval()
    folder = tmp_path_factory.mktemp("rexbert-mlm")
    model.save_pretrained(folder)
    ids, mask = random_batch([30, 12, 21])
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
    return folder, model, ids, mask, logits


def _state_dicts_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_load_round_trip(saved_mlm):
    folder, model, ids, mask, logits = saved_mlm
    loaded = RexBertForMaskedLM.from_pretrained(folder).eval()
    assert _state_dicts_equal(model, loaded)
    assert loaded.decoder.weight.data_ptr() == loaded.model.embeddings.tok_embeddings.weight.data_ptr()
    with torch.no_grad():
        assert torch.equal(loaded(ids, attention_mask=mask).logits, logits)
    assert {
        "configuration_rexbert.py",
        "modeling_rexbert.py",
        "heads.py",
        "layers.py",
        "unpadding.py",
        "rotary.py",
        "attention.py",
        "mlm_decoder.py",
    } <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("auto_class, expected", AUTO_PAIRS)
def test_auto_classes_build_rexbert(saved_mlm, auto_class, expected):
    folder = saved_mlm[0]
    model = auto_class.from_pretrained(folder)
    assert type(model) is expected
    assert torch.equal(model.get_input_embeddings().weight, saved_mlm[1].get_input_embeddings().weight)


def test_trust_remote_code_in_fresh_process(saved_mlm, tmp_path):
    """A process that cannot import modeling_rexbert (isolated mode, cwd elsewhere, import blocked) loads the
    folder through its copied remote code and reproduces the logits."""
    folder, _, ids, mask, logits = saved_mlm
    torch.save({"ids": ids, "mask": mask}, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        f"""
        import json, sys, torch

        class BlockRexbert:  # even an editable install of the project must not be reachable here
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "modeling_rexbert":
                    raise ImportError("modeling_rexbert is blocked in this process")

        sys.meta_path.insert(0, BlockRexbert())
        from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        mlm = AutoModelForMaskedLM.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        with torch.no_grad():
            logits = mlm(inputs["ids"], attention_mask=inputs["mask"]).logits
        base = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True)
        cls = AutoModelForSequenceClassification.from_pretrained({str(folder)!r}, trust_remote_code=True, num_labels=3)
        assert "modeling_rexbert" not in sys.modules
        torch.save(logits, {str(tmp_path / "logits.pt")!r})
        print(json.dumps([type(m).__name__ for m in (mlm, base, cls)]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HOME"] = str(tmp_path / "hf_home")
    names = python_json(script, flags=("-I",), cwd=tmp_path, env=env)
    assert names == ["RexBertForMaskedLM", "RexBertModel", "RexBertForSequenceClassification"]
    assert torch.equal(torch.load(tmp_path / "logits.pt"), logits)


def test_modernbert_folder_loads_and_converts_back(tmp_path):
    """transformers' ModernBertForMaskedLM folder -> RexBertForMaskedLM (identical outputs) -> ModernBERT."""
    torch.manual_seed(1)
    config = tiny_config()
    reference = ModernBertForMaskedLM(as_modernbert_config(config)).eval()
    reference.save_pretrained(tmp_path / "modernbert")
    ours = RexBertForMaskedLM.from_pretrained(tmp_path / "modernbert").eval()
    assert _state_dicts_equal(ours, reference)
    ids, mask = random_batch([25, 9])
    with torch.no_grad():
        diff = max_diff_on_real_tokens(
            ours(ids, attention_mask=mask).logits, reference(ids, attention_mask=mask).logits, mask
        )
    assert diff <= 1e-5
    ours.save_pretrained(tmp_path / "rexbert")
    back = ModernBertForMaskedLM.from_pretrained(tmp_path / "rexbert")
    assert _state_dicts_equal(back, reference)


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(2)
    model = RexBertForMaskedLM(tiny_config()).train()
    ids, mask = random_batch([30, 12], seed=2)
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))

    def grads():
        model.zero_grad()
        model(ids, attention_mask=mask, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    checkpointed = grads()
    assert all(torch.allclose(plain[n], checkpointed[n], atol=1e-6) for n in plain)


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_bfloat16_runs_close_to_float32(backend):
    torch.manual_seed(3)
    config = tiny_config()
    config._attn_implementation = backend
    model = RexBertModel(config).eval()
    ids, mask = random_batch([40, 17], seed=3)
    with torch.no_grad():
        full = model(ids, attention_mask=mask).last_hidden_state
        half = model.to(torch.bfloat16)(ids, attention_mask=mask).last_hidden_state
    assert half.dtype == torch.bfloat16
    assert max_diff_on_real_tokens(half.float(), full, mask) < 0.1


def test_attn_implementation_is_chosen_like_transformers(saved_mlm):
    folder = saved_mlm[0]
    assert RexBertForMaskedLM.from_pretrained(folder).config._attn_implementation == "sdpa"
    assert (
        RexBertForMaskedLM.from_pretrained(folder, attn_implementation="eager").config._attn_implementation
        == "eager"
    )


# ---- bad input -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_mlm():
    torch.manual_seed(4)
    return RexBertForMaskedLM(tiny_config(max_position_embeddings=64)).eval()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(input_ids=torch.ones(2, 8)), TypeError, "input_ids must be an integer tensor"),
        (
            dict(input_ids=torch.ones(2, 8, dtype=torch.long), attention_mask=torch.ones(2, 7)),
            ValueError,
            "attention_mask shape",
        ),
        (
            dict(
                input_ids=torch.ones(2, 8, dtype=torch.long), position_ids=torch.zeros(2, 9, dtype=torch.long)
            ),
            ValueError,
            "position_ids shape",
        ),
        (
            dict(input_ids=torch.ones(2, 8, dtype=torch.long), labels=torch.ones(2, 9, dtype=torch.long)),
            ValueError,
            "labels shape",
        ),
        (
            dict(input_ids=torch.ones(1, 8, dtype=torch.long), position_ids=torch.arange(-2, 6)[None]),
            ValueError,
            "position_ids must be >= 0",
        ),
        (dict(input_ids=torch.ones(0, 8, dtype=torch.long)), ValueError, "empty batch"),
        (dict(input_ids=torch.ones(2, 0, dtype=torch.long)), ValueError, "empty batch"),
        (dict(input_ids=torch.ones(8, dtype=torch.long)), ValueError, r"shape \(batch_size, seq_len\)"),
        (dict(input_ids=torch.full((1, 4), 500)), ValueError, "vocab_size=101"),
        (
            dict(input_ids=torch.ones(1, 4, dtype=torch.long), attention_mask=torch.zeros(1, 4)),
            ValueError,
            "masks every token",
        ),
        (dict(), ValueError, "exactly one of input_ids or inputs_embeds"),
    ],
)
def test_bad_input_gives_clear_error(tiny_mlm, kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_mlm(**kwargs)


def test_classification_label_shape_is_checked():
    model = RexBertForSequenceClassification(tiny_config(num_labels=2)).eval()
    with pytest.raises(ValueError, match="labels batch size 3"):
        model(torch.ones(2, 5, dtype=torch.long), labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"num_choices"):
        RexBertForMultipleChoice(tiny_config())(torch.ones(2, 5, dtype=torch.long))


def test_saved_config_lists_every_auto_class(saved_mlm):
    auto_map = json.loads((saved_mlm[0] / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig"} | {auto.__name__ for auto, _ in AUTO_PAIRS}
