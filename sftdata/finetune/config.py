"""FinetuneConfig: the fine-tune settings and their validation, without torch.

Its own module so that loading a pipeline config (``sftdata run``, ``--dry-run``, a config error)
does not import torch and peft, which take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import ConfigError
from .methods import DEFAULT_LR, PROMPT_LEARNING, MethodOptions

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
    data: list[str]
    out: str
    base_model: str | None = None        # None: the embedded SmolLM2-135M-Instruct
    method: str = "lora"
    epochs: int = 3
    lr: float | None = None              # None: the method's default (methods.DEFAULT_LR)
    batch_tokens: int = 4096             # tokens per batch, padding included
    grad_accum: int = 1
    max_len: int = 1024
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str = "all-linear"
    virtual_tokens: int = 20
    packing: bool | None = None          # None: on, except for prefix/prompt tuning
    eval_split: float = 0.05
    eval_data: list[str] = field(default_factory=list)  # a held-out file instead of a split
    eval_every: int = 0                  # 0: about ten evaluations per run
    max_steps: int | None = None
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.1            # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    precision: str = "auto"              # auto | bf16 | fp32 (auto: bf16 where computed natively)
    gradient_checkpointing: bool = False
    seed: int = 0
    progress: bool = True
    # preference methods (--method dpo / reward); see finetune/dpo.py and finetune/reward.py
    beta: float = 0.1                    # DPO: strength of the pull towards the reference
    loss: str = "sigmoid"                # DPO loss: sigmoid | ipo | hinge (TRL's formulas)
    ref_adapter: str | None = None       # DPO: SFT adapter = reference and starting policy
    save_every: int = 0                  # DPO / reward: checkpoint every N steps (0: only on Ctrl-C)
    resume: bool = False                 # continue from --out/checkpoint
    stop_after: int | None = None        # checkpoint and stop after N steps (the schedule spans the run)

    @property
    def preference(self) -> bool:
        return self.method in PREFERENCE_METHODS

    def method_options(self) -> MethodOptions:
        return MethodOptions(method="lora" if self.preference else self.method, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
                             lora_dropout=self.lora_dropout, target_modules=self.target_modules,
                             virtual_tokens=self.virtual_tokens)

    def resolve(self) -> FinetuneConfig:
        """Validate, and fill in the defaults that depend on the method."""
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
        if self.beta <= 0:
            raise ConfigError(f"must be > 0, got {self.beta}", "--beta")
        if self.loss not in PREFERENCE_LOSSES:
            raise ConfigError(f"choose one of {', '.join(PREFERENCE_LOSSES)}", "--loss")
        if self.save_every < 0:
            raise ConfigError("must be >= 0", "--save-every")
        if self.stop_after is not None and self.stop_after < 1:
            raise ConfigError("must be >= 1", "--stop-after")
        if self.ref_adapter and self.method != "dpo":
            raise ConfigError("only --method dpo takes a reference adapter", "--ref-adapter")
