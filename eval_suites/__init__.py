"""Shopping benchmarks for RexBERT / ModernBERT-family checkpoints, on `evaluate`, `transformers` and
`sentence-transformers`.

Suites (names as in results.json):

    esci-tokens          masked-token top-1/3/5 accuracy on product titles and descriptions
    esci-similarity      CoSENT bi-encoder, Spearman/Pearson of cosine on held-out queries (+ zero-shot)
    esci-classification  E/S/C/I cross-encoder fine-tune, micro/macro F1
    glue                 Trainer fine-tune per GLUE task with data, standard metric per task + average
    ner                  token-classification fine-tune on character-span NER, entity-level F1

Run them with `rexbert eval` (`eval_suites.cli`) or `eval_suites.runner.evaluate_model`; see README.md.
"""

__all__ = []
