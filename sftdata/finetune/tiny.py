"""Tiny random models and local tokenizers, for tests and the benchmark's fallback. No download.

* :func:`byte_tokenizer`: byte-level BPE with no merges (any text, ~260 ids), ``<s>``/``</s>``,
  adds a BOS on encode like Llama's, no pad token, no chat template unless given one.
* :func:`bpe_tokenizer`: a byte-level BPE trained on one sentence (400 ids, real merges, as a GGUF
  ``gpt2`` vocabulary needs), ChatML special tokens and template.
* :func:`smollm2_tokenizer`: the embedded model's real tokenizer (chat template, ``<|im_end|>`` as
  both EOS and pad), from the dequantized cache when present, else straight from the GGUF.
* :func:`tiny_llama_dir`: a random Llama of a few thousand parameters saved with a tokenizer as a
  local HF model directory, which every loader accepts as ``--base-model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A Zephyr-like template that starts with the BOS itself: with a tokenizer that also adds a BOS
# on encode, rendering then tokenizing naively gives two.
BOS_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# ChatML, SmolLM2's and Qwen's chat format
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def byte_tokenizer(chat_template: str | None = None, add_bos: bool = True) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for char in sorted(alphabet):
        vocab[char] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


def bpe_tokenizer() -> Any:
    """A byte-level BPE with real merges, trained in milliseconds (GGUF's gpt2 vocabulary needs merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(["Hello, GGUF world! The quick brown fox jumps over the lazy dog."] * 20,
                                trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>",
                                        eos_token="<|im_end|>", unk_token="<unk>")
    tokenizer.chat_template = CHATML
    return tokenizer


def smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from ..llm.local.embedded import embedded_cache_dir, gguf_path

    cached = embedded_cache_dir()
    if (cached / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(cached, local_files_only=True)
    gguf = gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def tiny_llama(vocab_size: int, hidden: int = 32, layers: int = 2, seed: int = 0, **config: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    settings = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                    num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                    max_position_embeddings=2048, tie_word_embeddings=False)
    settings.update(config)
    return LlamaForCausalLM(LlamaConfig(**settings))


def tiny_llama_dir(path: str | Path, tokenizer: Any, seed: int = 0, **config: Any) -> Path:
    """Save a tiny random Llama sized to ``tokenizer`` and the tokenizer itself into ``path``."""
    path = Path(path)
    model = tiny_llama(len(tokenizer), seed=seed, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, **config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
