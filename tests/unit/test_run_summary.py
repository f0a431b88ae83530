"""The end-of-run table of ``sftdata run``: rounded numbers and eval's headline."""

from __future__ import annotations

from sftdata.core.stage import StageResult
from sftdata.eval.step import headline


def test_train_loss_is_rounded():
    short = StageResult([], {"train_loss": 1.7913407263477235, "seconds": 12.0, "path": "x"}).short()
    assert short == {"train_loss": 1.791, "seconds": 12.0}


def test_eval_shows_records_loss_and_rouge_base_then_adapter():
    report = {"counts": {"evaluated": 4, "classification": 1},
              "models": [{"name": "base", "loss": 2.80123, "rouge_l": 0.1234, "seconds": 3.0},
                         {"name": "finetune", "loss": 1.95012, "rouge_l": 0.2101, "seconds": 4.0}]}
    short = StageResult([], {**report, **headline(report)}).short()
    assert short == {"records": 4, "loss": "2.801 -> 1.95", "rouge_l": "0.1234 -> 0.2101"}
    assert headline({"skipped": "no held-out records"}) == {}
