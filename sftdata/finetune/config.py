"""FinetuneConfig: the fine-tune settings and their validation, without torch.

Its own module so that loading a pipeline config (``sftdata run``, ``--dry-run``, a config error)
does not import torch and peft, which take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import click_path, setting
from .methods import DEFAULT_LR, METHODS, PROMPT_LEARNING, MethodOptions

# preference methods, trained as LoRA, and their default learning rates
PREFERENCE_METHODS = {"dpo": 5e-5, "reward": 1e-4}
PREFERENCE_LOSSES = ("sigmoid", "ipo", "hinge")


def check_budget(batch_tokens: int, max_len: int) -> None:
    if max_len < 8:
        raise ConfigError(f"must be at least 8, got {max_len}", "--max-len")
    if batch_tokens < max_len:
        raise ConfigError(f"{batch_tokens} is less than --max-len {max_len}: a batch must hold "
                          "at least one full-length example", "--batch-tokens")


@dataclass
class FinetuneConfig:
    data: list[str] = setting(list, by_pipeline=True, cli=False, path=True, help="Training data files (exported JSONL).")
    out: str = setting("", by_pipeline=True, cli=False, help="Directory for the adapter and metrics.")
    base_model: str | None = setting(None, click_type=click_path(file_okay=False), path=True,
                                     help="Local HF causal-LM directory. Default: the embedded "
                                          "SmolLM2-135M-Instruct (`sftdata run`: llm.model when it is local).")
    method: str = setting("lora", choices=METHODS + tuple(PREFERENCE_METHODS),
                          help="A PEFT method on SFT data, or on preference pairs: dpo (a LoRA policy) or reward "
                               "(a LoRA reward model with a scalar head).")
    epochs: int = setting(3, help="Passes over the training data.")
    lr: float | None = setting(None, help="Peak learning rate. Default per method: lora 2e-4, ia3 3e-3, "
                                          "prefix 1e-2, prompt 3e-2, dpo 5e-5, reward 1e-4.")
    batch_tokens: int = setting(4096, help="Tokens per batch, padding included (the budget, not a row count).")
    grad_accum: int = setting(1, help="Batches per optimizer step.")
    max_len: int = setting(1024, help="Longest example in tokens; longer prompts are cut from the front, never "
                                      "the reply.")
    lora_r: int = setting(16, help="LoRA rank.")
    lora_alpha: int = setting(32, help="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = setting(0.0, help="Dropout on the LoRA input.")
    target_modules: str = setting("all-linear", help="'all-linear' or comma-separated module names (lora, ia3).")
    virtual_tokens: int = setting(20, help="Prefix / prompt tuning length.")
    packing: bool | None = setting(None, flag="--packing/--no-packing",
                                   help="Pack several examples per row (block-diagonal attention). Default: on, "
                                        "off for prefix/prompt.")
    eval_split: float = setting(0.05, help="Fraction held out for eval loss.")
    eval_data: list[str] = setting(list, by_pipeline=True, split=False, path=True, click_type=click_path(dir_okay=False),
                                   help="Held-out file(s) to evaluate on instead of a split of DATA.")
    eval_every: int = setting(0, help="Evaluate every N steps (0: about ten times per run).")
    max_steps: int | None = setting(None, help="Stop after N optimizer steps.")
    warmup_ratio: float = setting(0.05, help="Fraction of the steps spent warming the learning rate up.")
    min_lr_ratio: float = setting(0.1, cli=False, help="Cosine decay ends at lr * min_lr_ratio.")
    weight_decay: float = setting(0.0, help="AdamW weight decay.")
    max_grad_norm: float = setting(1.0, help="Gradient clipping norm.")
    precision: str = setting("auto", choices=("auto", "bf16", "fp32"),
                             help="auto: bf16 autocast where the GPU or CPU computes bf16 natively.")
    gradient_checkpointing: bool = setting(False, help="Recompute activations: less memory, slower.")
    seed: int = setting(0, help="Seed of the split, the initialization and the data order.")
    progress: bool = setting(True, cli=False, hashed=False, by_pipeline=True,
                             help="Show a progress bar (`sftdata run`: unless --no-progress).")
    # preference methods (--method dpo / reward): finetune/dpo.py, finetune/reward.py, finetune/pair_train.py
    beta: float = setting(0.1, help="dpo: strength of the pull towards the reference (TRL's beta).")
    loss: str = setting("sigmoid", choices=PREFERENCE_LOSSES, help="dpo: the preference loss (TRL's formulas).")
    ref_adapter: str | None = setting(None, click_type=click_path(file_okay=False), path=True,
                                      help="dpo: an SFT adapter that is the reference and the starting policy "
                                           "(default: the base; `sftdata run`: the finetune stage's adapter).")
    # checkpointing changes when state is saved, not what is trained: outside the stage hash
    save_every: int = setting(0, hashed=False,
                              help="dpo/reward: write OUT/checkpoint every N steps (always on Ctrl-C).")
    # a command-line workflow (stop, continue later); `sftdata run` resumes an interrupted dpo stage itself
    resume: bool = setting(False, hashed=False, config=False, help="dpo/reward: continue from OUT/checkpoint.")
    stop_after: int | None = setting(None, hashed=False, config=False,
                                     help="dpo/reward: checkpoint and stop after N steps (continue with --resume).")

    @property
    def preference(self) -> bool:
        """Trained on preference pairs (dpo, reward) rather than SFT records."""
        return self.method in PREFERENCE_METHODS

    def method_options(self) -> MethodOptions:
        return MethodOptions(method="lora" if self.preference else self.method, lora_r=self.lora_r,
                             lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout, target_modules=self.target_modules,
                             virtual_tokens=self.virtual_tokens)

    def validate(self) -> None:
        """The checks that need no data files (``sftdata run`` runs them when it loads the config)."""
        methods = METHODS + tuple(PREFERENCE_METHODS)
        checks = [(self.method in methods, "--method", f"choose one of {', '.join(methods)}"),
                  (self.loss in PREFERENCE_LOSSES, "--loss", f"choose one of {', '.join(PREFERENCE_LOSSES)}"),
                  (self.precision in ("auto", "bf16", "fp32"), "--precision", "choose one of auto, bf16, fp32"),
                  (self.beta > 0, "--beta", f"must be > 0, got {self.beta}"),
                  (self.save_every >= 0, "--save-every", "must be >= 0")]
        for ok, option, message in checks:
            if not ok:
                raise ConfigError(message, option)

    def resolve(self) -> FinetuneConfig:
        """Validate, and fill in the defaults that depend on the method."""
        self.validate()
        self.method_options().validate()
        if not self.data:
            raise ConfigError("no data files given", "DATA")
        if self.packing is None:
            self.packing = self.method not in PROMPT_LEARNING
        elif self.packing and self.method in PROMPT_LEARNING:
            raise ConfigError(f"{self.method} tuning puts virtual tokens before each row, so a row "
                              "holds one example; use --no-packing", "--packing")
        if self.lr is None:
            self.lr = PREFERENCE_METHODS.get(self.method) or DEFAULT_LR[self.method]
        if self.preference:
            self._check_preference()
        elif self.ref_adapter:
            raise ConfigError("only --method dpo takes a reference adapter", "--ref-adapter")
        checks = [(self.epochs >= 1, "--epochs", "must be >= 1"), (self.lr > 0, "--lr", "must be > 0"),
                  (self.grad_accum >= 1, "--grad-accum", "must be >= 1"),
                  (0 <= self.eval_split < 1, "--eval-split", "must be in [0, 1)"),
                  (self.eval_every >= 0, "--eval-every", "must be >= 0"),
                  (self.max_steps is None or self.max_steps >= 1, "--max-steps", "must be >= 1"),
                  (0 <= self.warmup_ratio < 1, "--warmup-ratio", "must be in [0, 1)"),
                  (self.max_grad_norm > 0, "--max-grad-norm", "must be > 0")]
        for ok, option, message in checks:
            if not ok:
                raise ConfigError(message, option)
        check_budget(self.batch_tokens, self.max_len)
        return self

    def _check_preference(self) -> None:
        import os

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("dpo and reward train in one process; run them without torchrun", "--method")
        if self.stop_after is not None and self.stop_after < 1:
            raise ConfigError("must be >= 1", "--stop-after")
        if self.ref_adapter and self.method != "dpo":
            raise ConfigError("only --method dpo takes a reference adapter", "--ref-adapter")
