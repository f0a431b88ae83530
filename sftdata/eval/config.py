"""The eval stage's settings (EvalConfig); no heavy imports."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import setting


@dataclass
class EvalConfig:
    """What ``sftdata eval`` (and the ``eval:`` section of ``sftdata run``) can set."""

    max_new_tokens: int = setting(128, help="Greedy generation stops at EOS / end-of-turn or after this many "
                                            "tokens.")
    batch_size: int = setting(8, hashed=False, help="Records per forward pass.")
    max_len: int = setting(1024, help="Tokens per record for the loss; as in fine-tuning, a longer prompt is cut "
                                      "(never the reply) and a record whose reply alone does not fit is left out "
                                      "of the loss and counted.")
    limit: int | None = setting(None, help="Evaluate on the first N records only.")

    def validate(self) -> None:
        for name in ("max_new_tokens", "batch_size", "max_len"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", "--" + name.replace("_", "-"))
        if self.limit is not None and self.limit < 1:
            raise ConfigError("must be at least 1", "--limit")
