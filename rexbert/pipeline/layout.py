"""Where every artefact of a run lives, relative to its output directory, and the stages' done-markers.

report.md                  one page: stage times, corpora, phases, scores, links to everything below
run_config.yaml            the resolved config (a rerun with another config into this directory is refused)
stages/<stage>.done        done-markers (JSON: seconds, finish time, the stage's outputs)
data/                      the generated corpus, classifier examples and evaluation sets (sample mode)
classifier/                fastText model + held-out precision/recall
curation/<corpus>/         corpus/*.parquet, report/, README.md (dataset card)
tokenizer/                 the run's tokenizer (trained on the curated corpora, or the recipe's)
tokens/                    the curated corpora as token shards (`rexbert tokenize`), one folder per source
pretrain/                  recipe.yaml, phase<N>-<name>/ checkpoints and final/, training_curves.png
model/                     final weights, tokenizer, lexicon, sentence-transformers config, card
eval/                      results.json, results.md, results.png
finetune/<task>/           a fine-tuned search or catalogue model (model/), its results beside the baselines

The run decides these top-level names; what a library writes inside its folder is named by the library
(`curation.layout`, `trainers.pretrain`, `eval_suites.runner`), and read here through those names. Which
stage creates which entry is said by the stage's declaration (`rexbert.pipeline.stages`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curation.layout import CorpusLayout
from eval_suites.runner import RESULTS_FILENAME

__all__ = ["CONFIG_FILENAME", "Layout"]

CONFIG_FILENAME = "run_config.yaml"


@dataclass(frozen=True)
class Layout:
    """The paths of one run below `root` (see the module docstring)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILENAME

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sample_corpus(self) -> Path:
        return self.data / "corpus"

    @property
    def sample_eval(self) -> Path:
        return self.data / "eval"

    @property
    def classifier_examples(self) -> Path:
        return self.data / "classifier_examples.jsonl"

    @property
    def classifier(self) -> Path:
        return self.root / "classifier" / "ecom_classifier.bin"

    @property
    def curation(self) -> Path:
        return self.root / "curation"

    def corpus(self, name: str) -> CorpusLayout:
        """The folders of curated corpus `name` (its output directory is `.root`), as curation names them."""
        return CorpusLayout(str(self.curation / name))

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def tokens(self) -> Path:
        return self.root / "tokens"

    @property
    def pretrain(self) -> Path:
        return self.root / "pretrain"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def finetune(self) -> Path:
        return self.root / "finetune"

    @property
    def results(self) -> Path:
        return self.eval / RESULTS_FILENAME

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def entry(self, path: Path) -> str:
        """The top-level entry of the run directory that holds `path`."""
        return path.relative_to(self.root).parts[0]

    def done_marker(self, stage: str) -> Path:
        return self.stages / f"{stage}.done"

    def outputs_of(self, stage: str) -> dict:
        """What a finished stage recorded in its done-marker (empty when it has not run)."""
        marker = self.done_marker(stage)
        return json.loads(marker.read_text(encoding="utf-8"))["outputs"] if marker.is_file() else {}

    def markers(self, stages: tuple[str, ...]) -> dict[str, dict]:
        """The done-markers of the finished stages among `stages`, in order."""
        return {
            stage: json.loads(self.done_marker(stage).read_text(encoding="utf-8"))
            for stage in stages
            if self.done_marker(stage).is_file()
        }
