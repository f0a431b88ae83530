"""examples/demo.yaml trains enough steps to draw a loss curve (it trained one step: its ~36 short
records fit one 4096-token batch, and one epoch was run; max_steps is only a cap)."""

from __future__ import annotations

from pathlib import Path

from sftdata.finetune.batching import plan_batches
from sftdata.finetune.data import TokenizedExample
from sftdata.pipeline import load_pipeline

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_trains_a_curve_not_a_point():
    section = load_pipeline(ROOT / "examples" / "demo.yaml").stages["finetune"]
    # the demo's export: 36 records, 13-word instructions and 20-word outputs, about 80 tokens with the template
    examples = [TokenizedExample(list(range(80)), list(range(80))) for _ in range(36)]
    steps = sum(len(plan_batches(examples, section.batch_tokens, section.max_len, section.packing, seed=epoch))
                for epoch in range(section.epochs))
    if section.max_steps is not None:
        steps = min(steps, section.max_steps)
    assert steps >= 10, steps
