"""What a fine-tune run leaves in ``--out``, and the loss curves it keeps on the way.

    adapter_config.json, adapter_model.safetensors   the adapter (peft ``save_pretrained``)
    tokenizer files + chat_template.jinja            the tokenizer as trained (template, pad)
    sftdata_finetune.json                            base model, method, resolved config
    metrics.json                                     summary + train/eval curves
    loss.png                                         the curves, plotted
    eval.jsonl                                       the held-out records (for `sftdata eval`)
    rejected.jsonl                                   examples dropped as too long, with reasons

``sftdata_finetune.json`` is what a loader reads to find the base model of an adapter:
``{"base_model": null | "<dir given>", "base_model_dir": "<resolved dir>", "method": ...}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..core.records import write_jsonl

if TYPE_CHECKING:
    from .train import Run

INFO_FILE = "sftdata_finetune.json"
METRICS_FILE = "metrics.json"
PLOT_FILE = "loss.png"
OVERFIT_MARGIN = 1.01  # eval loss this much above its best counts as rising


@dataclass
class Curves:
    train: list[dict[str, Any]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)
    trained_tokens: int = 0
    real_tokens: int = 0
    warnings: list[str] = field(default_factory=list)

    def add_train(self, step: int, loss: float, lr: float, grad_norm: float, tokens: float,
                  real_tokens: float, epoch: int, seconds: float) -> None:
        self.trained_tokens += int(tokens)
        self.real_tokens += int(real_tokens)
        self.train.append({"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                           "tokens": int(tokens), "epoch": epoch, "seconds": round(seconds, 3)})

    def add_eval(self, step: int, loss: float | None) -> str | None:
        """Record an evaluation; returns a warning the first time it looks like overfitting."""
        if loss is None:
            return None
        previous = list(self.eval)
        self.eval.append({"step": step, "loss": loss, "perplexity": math.exp(min(loss, 50.0))})
        if not previous or any("overfitting" in w for w in self.warnings):
            return None
        best = min(previous, key=lambda e: e["loss"])
        train_then = self._train_mean(best["step"])
        train_now = self._train_mean(step)
        if loss > best["loss"] * OVERFIT_MARGIN and train_then is not None and train_now is not None \
                and train_now < train_then:
            warning = (f"overfitting: eval loss rose from {best['loss']:.4f} (step {best['step']}) to "
                       f"{loss:.4f} (step {step}) while train loss fell from {train_then:.4f} to "
                       f"{train_now:.4f}; consider fewer epochs or a lower --lr")
            self.warnings.append(warning)
            return warning
        return None

    def _train_mean(self, step: int, window: int = 5) -> float | None:
        """Mean train loss over the few steps up to ``step`` (the first step's loss for step 0)."""
        upto = [t["loss"] for t in self.train if t["step"] <= step][-window:]
        if not upto:
            return self.train[0]["loss"] if self.train else None
        return sum(upto) / len(upto)

    def last_eval(self, key: str) -> float | None:
        return self.eval[-1][key] if self.eval else None


def save_all(run: Run, model: Any, tokenizer: Any, interrupted: bool = False) -> None:
    """Write everything listed in the module docstring into ``run.config.out``."""
    out = Path(run.config.out)
    out.mkdir(parents=True, exist_ok=True)
    # the adapter names its base, so `PeftModel.from_pretrained` (and our loaders) can find it
    for peft_config in model.peft_config.values():
        peft_config.base_model_name_or_path = run.base_dir
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "sftdata_version": __version__, "base_model": run.config.base_model,
        "base_model_dir": run.base_dir, "method": run.config.method, "interrupted": interrupted,
        "tokenizer_changes": run.tokenizer_changes, "config": asdict(run.config),
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = run.summary()
    metrics = {**summary, "interrupted": interrupted,
               "curves": {"train": run.curves.train, "eval": run.curves.eval}}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if run.held is not None:
        write_jsonl(out / "eval.jsonl", run.held.kept)
    rejected = (run.train.rejected if run.train else []) + (run.held.rejected if run.held else [])
    if rejected:
        write_jsonl(out / "rejected.jsonl", rejected)
    from .plot import plot_curves

    plot_curves(run.curves.train, run.curves.eval, out / PLOT_FILE,
                title=f"{run.config.method} on {Path(run.base_dir).name}")


def read_info(adapter_dir: str | Path) -> dict[str, Any]:
    """The ``sftdata_finetune.json`` of an adapter directory ({} when absent: a foreign adapter)."""
    path = Path(adapter_dir) / INFO_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def trained_tokenizer(adapter_dir: str | Path, fallback: Any) -> Any:
    """The tokenizer an adapter was trained with, when its directory holds one (``sftdata finetune``
    saves it: chat template, pad token), else ``fallback`` (the base model's)."""
    if not (Path(adapter_dir) / "tokenizer_config.json").is_file():
        return fallback
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(adapter_dir, local_files_only=True)
