"""The fine-tune stage: PEFT adapters (LoRA, prefix, prompt tuning, IA3) with transformers + peft.

    data.py      records -> token ids and labels (chat template, prompt masking, truncation)
    batching.py  packing with block-diagonal attention, length-grouped token-budget batches
    methods.py   the peft configs
    runtime.py   base model, device/precision, DDP, the token loss
    config.py    FinetuneConfig: the settings and their validation (no torch)
    train.py     finetune(config) -> summary: the training loop
    outputs.py   what --out holds (adapter, tokenizer, sftdata_finetune.json, metrics.json, loss.png)
    merge.py     fold a LoRA / IA3 adapter into its base
    tiny.py      tiny random models and local tokenizers for tests and the benchmark

Import the submodules directly (``from sftdata.finetune.train import finetune``): importing this
package stays cheap, without torch.
"""

from ..core.stage import StageSpec
from .config import FinetuneConfig
from .step import run

SPEC = StageSpec("finetune", FinetuneConfig, run, produces_data=False, reads=("export",),
                 help="LoRA / prefix / prompt / IA3 with transformers + peft; DPO and reward models on pairs")
