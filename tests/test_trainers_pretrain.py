"""RexBertTrainer end to end on CPU: exact resume (data order and loss curve), the tiny three-phase
recipe (loss goes down, every output written), starting from a ModernBERT checkpoint, CLI errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import TrainingArguments

from trainers.collator import GuidedMLMCollator
from trainers.mixture import MixtureSchedule, MixtureStream
from trainers.packing import PackedRows
from trainers.schedules import scheduler_arguments
from trainers.stream_checkpoint import MIXTURE_STATE_FILENAME
from trainers.trainer import RexBertTrainer

STEPS, SAVE_AT, ACCUM = 10, 4, 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Models this small gain nothing from intra-op threads, and lose a lot when the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sample():
    from modeling_rexbert.tokenization import train_bpe_tokenizer
    from rexbert_core.sample_corpus import sample_documents

    docs = sample_documents(seed=0)
    general = [d["text"] for d in docs if d["source"] == "general"]
    ecom = [d["text"] for d in docs if d["source"] != "general"]
    tokenizer = train_bpe_tokenizer(general[:50] + ecom[:50], vocab_size=512)
    sources = {
        "general": PackedRows.from_texts("general", general, tokenizer, 48),
        "ecom": PackedRows.from_texts("ecom", ecom, tokenizer, 48),
    }
    return tokenizer, sources


def tiny_model(tokenizer, seed):
    from modeling_rexbert import RexBertForMaskedLM
    from tests.model_helpers import config_for_tokenizer

    torch.manual_seed(seed)
    config = config_for_tokenizer(tokenizer, max_position_embeddings=64, sparse_prediction=True)
    return RexBertForMaskedLM(config)


class RecordingTrainer(RexBertTrainer):
    """Remembers every training batch it computes a loss on."""

    def compute_loss(self, model, inputs, **kwargs):
        self.seen = getattr(self, "seen", []) + [(inputs["input_ids"].clone(), inputs["labels"].clone())]
        return super().compute_loss(model, inputs, **kwargs)


def make_trainer(sample, output_dir, model_seed):
    tokenizer, sources = sample
    stream = MixtureStream(
        sources,
        MixtureSchedule.interpolated({"general": 0.8, "ecom": 0.2}, {"general": 0.2, "ecom": 0.8}),
        GuidedMLMCollator(tokenizer),
        batch_size=6,
        max_steps=STEPS,
        grad_accum=ACCUM,
        seed=11,
        mask_rate=0.3,
    )
    args = training_arguments(output_dir, STEPS, SAVE_AT, ACCUM, per_device_train_batch_size=6)
    return RecordingTrainer(model=tiny_model(tokenizer, model_seed), args=args, train_stream=stream)


def training_arguments(output_dir, steps: int, save_at: int, accum: int, **extra) -> TrainingArguments:
    """A short run that logs every step and checkpoints every `save_at` steps."""
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        gradient_accumulation_steps=accum,
        learning_rate=2e-3,
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_at,
        report_to=[],
        disable_tqdm=True,
        seed=0,
        **scheduler_arguments("wsd", steps, warmup_steps=2, decay_fraction=0.5),
        **extra,
    )


def step_losses(trainer, after=0):
    return {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e and e["step"] > after}


@pytest.mark.parametrize("keep_state_file", [True, False])
def test_resume_reproduces_batches_and_losses(sample, tmp_path, keep_state_file):
    full = make_trainer(sample, tmp_path / "full", model_seed=0)
    full.train()
    checkpoint = tmp_path / "full" / f"checkpoint-{SAVE_AT}"
    state = json.loads((checkpoint / MIXTURE_STATE_FILENAME).read_text())
    assert state["batch_index"] == SAVE_AT * ACCUM
    assert sum(state["rows_taken"].values()) == 6 * SAVE_AT * ACCUM

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(checkpoint, resumed_dir / checkpoint.name)
    if not keep_state_file:  # then the state is rebuilt by replaying the draws
        (resumed_dir / checkpoint.name / MIXTURE_STATE_FILENAME).unlink()
    resumed = make_trainer(
        sample, resumed_dir, model_seed=1
    )  # other init: the weights must come from the checkpoint
    resumed.train(resume_from_checkpoint=str(resumed_dir / checkpoint.name))

    expected = full.seen[SAVE_AT * ACCUM :]
    assert len(resumed.seen) == len(expected) == (STEPS - SAVE_AT) * ACCUM
    for (ids_a, labels_a), (ids_b, labels_b) in zip(expected, resumed.seen):
        assert torch.equal(ids_a, ids_b) and torch.equal(labels_a, labels_b)
    full_losses, resumed_losses = step_losses(full, SAVE_AT), step_losses(resumed, SAVE_AT)
    assert sorted(resumed_losses) == list(range(SAVE_AT + 1, STEPS + 1))
    for step, loss in full_losses.items():
        assert resumed_losses[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    logged = [e for e in full.state.log_history if "loss" in e]
    assert {"loss/general", "loss/ecom", "mlm_accuracy", "mixture/ecom", "mask_rate"} <= set(logged[-1])


def heldout_loss(model_dir_or_model, tokenizer, rows) -> float:
    from modeling_rexbert import RexBertForMaskedLM

    model = (
        RexBertForMaskedLM.from_pretrained(model_dir_or_model)
        if isinstance(model_dir_or_model, str)
        else model_dir_or_model
    ).eval()
    batch = GuidedMLMCollator(tokenizer)(rows, mask_rate=0.3, generator=torch.Generator().manual_seed(0))
    batch.pop("source_ids", None)
    with torch.no_grad():
        return model(**batch).loss.item()


def test_tiny_three_phase_recipe_end_to_end(tmp_path):
    from transformers import AutoTokenizer

    from modeling_rexbert import RexBertConfig, RexBertForMaskedLM
    from rexbert.cli import main as cli_main
    from rexbert_core.sample_corpus import sample_documents
    from trainers.pretrain import pretrain
    from trainers.recipes import load_recipe

    output = tmp_path / "run"
    # phase 1 through the CLI, then the other two by name: the summary covers all three
    assert cli_main(["pretrain", "--recipe", "tiny", "--phase", "1", "--output", str(output)]) == 0
    assert [p["phase"] for p in json.loads((output / "training_summary.json").read_text())["phases"]] == [1]
    summary = pretrain(load_recipe("tiny"), output, phases=["context", "anneal"])

    phases = summary["phases"]
    assert [p["name"] for p in phases] == ["general", "context", "anneal"]
    for record in phases:
        assert {
            "phase",
            "name",
            "steps",
            "tokens",
            "seq_len",
            "mask_rate",
            "lr_schedule",
            "peak_lr",
            "mixture",
            "guided_mlm",
            "final_loss",
            "checkpoint",
        } <= set(record)
        assert record["tokens"] > 0 and (output / record["checkpoint"]).is_dir()
    assert [p["steps"] for p in phases] == [30, 20, 20]
    assert (
        phases[2]["guided_mlm"] == 1.0
        and phases[2]["mixture"]["end"]["ecom"] > phases[2]["mixture"]["start"]["ecom"]
    )
    assert json.loads((output / "training_summary.json").read_text())["preset"] == "rexbert-17m"
    for name in (
        "training_curves.png",
        "train_log.csv",
        "train_log.json",
        "saliency_lexicon.json",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
        "model/saliency_lexicon.json",
    ):
        assert (output / name).is_file(), name

    # phase 2 extended the context: its config carries the new RoPE theta and length
    context = RexBertConfig.from_pretrained(output / "phase2-context" / "final")
    assert context.rope_parameters["full_attention"]["rope_theta"] == 160000
    assert context.max_position_embeddings == 256
    general_config = RexBertConfig.from_pretrained(output / "phase1-general" / "final")
    assert general_config.rope_parameters["full_attention"]["rope_theta"] == 10000
    for saved in ("phase1-general/final", "phase2-context/final", "model"):  # tokenizers end where models do
        positions = RexBertConfig.from_pretrained(output / saved).max_position_embeddings
        assert AutoTokenizer.from_pretrained(output / saved).model_max_length == positions, saved

    # the loss went down: logged within phase 1, and on held-out text against fresh weights
    log = json.loads((output / "train_log.json").read_text())
    phase1 = [e["loss"] for e in log if e["phase"] == 1 and "loss" in e]
    assert phase1[-1] < phase1[0] - 0.5
    validation = [e["eval/loss"] for e in log if e["phase"] == 1 and "eval/loss" in e]
    assert len(validation) == 3 and validation[-1] < validation[0]  # eval_steps 10 of 30: held-out loss fell
    assert {"eval/loss/general", "eval/loss/ecom", "eval/mlm_accuracy"} <= set(log[-1]) | set(
        next(e for e in reversed(log) if "eval/loss" in e)
    )
    tokenizer = AutoTokenizer.from_pretrained(output / "model")
    heldout = [d["text"] for d in sample_documents(seed=7)[:120]]
    rows = list(PackedRows.from_texts("heldout", heldout, tokenizer, 64, shuffle=False).iter_epoch(0, 0))[:32]
    torch.manual_seed(0)
    fresh = RexBertForMaskedLM(RexBertConfig.from_pretrained(output / "model"))
    assert heldout_loss(str(output / "model"), tokenizer, rows) < heldout_loss(fresh, tokenizer, rows) - 0.5

    # resuming a finished run trains nothing and gives the same summary
    again = pretrain(load_recipe("tiny"), output, resume=True)
    assert [p["final_loss"] for p in again["phases"]] == [p["final_loss"] for p in phases]


def test_phase_can_start_from_a_modernbert_checkpoint(sample, tmp_path):
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from trainers.phase import build_model
    from trainers.recipes import load_recipe

    tokenizer, _ = sample
    from modeling_rexbert.tokenization import tokenizer_config_kwargs

    reference = ModernBertForMaskedLM(
        ModernBertConfig(
            **tokenizer_config_kwargs(tokenizer),
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
        )
    )
    reference.save_pretrained(tmp_path / "modernbert")
    recipe = load_recipe("tiny")
    model = build_model(recipe, recipe.phases["context"], tokenizer, str(tmp_path / "modernbert"))
    assert model.config.rope_parameters["full_attention"]["rope_theta"] == 160000
    assert model.config.sparse_prediction is True
    theirs = reference.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name


def test_cli_reports_bad_recipes_and_missing_phases(tmp_path, capsys):
    from rexbert.cli import main as cli_main
    from rexbert_core.typed_config import ConfigError
    from trainers.pretrain import pretrain
    from trainers.recipes import load_recipe

    assert (
        cli_main(
            ["pretrain", "--recipe", "tiny", "--set", "phases.general.stepz=3", "--output", str(tmp_path)]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown field 'stepz' (did you mean 'steps'?)" in err[0]
    assert cli_main(["pretrain", "--recipe", "no-such-recipe", "--output", str(tmp_path)]) == 2
    assert "neither a file nor a shipped recipe" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="starts from phase 2's model"):
        pretrain(load_recipe("tiny"), tmp_path / "empty", phases=["3"])


def test_the_context_phase_trains_at_8192_tokens(tmp_path):
    """Phase 2 as the paper runs it: rows of 8,192 tokens, 8,192 positions, global RoPE theta 160k (the tiny
    model: 3 layers of 64, on CPU about 0.5 s a step and 0.7 GB). Every row is full, the model saved says so,
    and its predictions over a whole 8,192-token row of real text equal transformers' ModernBERT's on the
    same weights (global attention at far positions, sliding windows, the long-context RoPE)."""
    from transformers import AutoTokenizer, ModernBertForMaskedLM

    from modeling_rexbert import RexBertForMaskedLM
    from rexbert.cli import main as rexbert
    from rexbert_core.sample_corpus import sample_documents

    output = tmp_path / "run"
    command = [
        "pretrain", "--recipe", "tiny", "--phase", "general", "--phase", "context", "--output", str(output),
        "--set", "lexicon.max_docs=200", "--set", "phases.general.steps=2", "--set", "phases.general.eval_steps=0",
        "--set", "phases.general.batch_size_warmup=null", "--set", "phases.general.lr.warmup_steps=1",
        "--set", "phases.context.seq_len=8192", "--set", "phases.context.batch_size=1",
        "--set", "phases.context.steps=3", "--set", "phases.context.eval_steps=3",
        "--set", "phases.context.model={max_position_embeddings: 8192, global_rope_theta: 160000}",
    ]  # fmt: skip
    assert rexbert(command) == 0
    phase = json.loads((output / "phase2-context" / "phase_summary.json").read_text())
    assert phase["seq_len"] == 8192 and phase["tokens"] == 3 * 8192  # three full rows
    assert all(torch.isfinite(torch.tensor(phase[key])) for key in ("final_loss", "final_eval_loss"))
    final = output / "phase2-context" / "final"
    ours = RexBertForMaskedLM.from_pretrained(final).eval()
    assert ours.config.max_position_embeddings == 8192
    assert ours.config.rope_parameters["full_attention"]["rope_theta"] == 160000

    from model_helpers import as_modernbert_config

    reference = ModernBertForMaskedLM(as_modernbert_config(ours.config)).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(final)
    text = " ".join(d["text"] for d in sample_documents(seed=1))
    ids = tokenizer(text, truncation=True, max_length=8192, return_tensors="pt")["input_ids"]
    assert ids.shape[1] == 8192
    with torch.no_grad():
        torch.testing.assert_close(
            ours(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-4, atol=1e-4
        )
