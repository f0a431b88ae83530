"""Scaffolding for ``sftdata init``: a config, seed tasks for the domain, and a README of next steps."""

from __future__ import annotations

import json
from pathlib import Path

from .core.errors import ConfigError
from .core.paths import seeds_dir

SEEDS_PER_PROJECT = 8
# words that pick seed tasks of a domain from the general seed file when no domain file ships
DOMAIN_WORDS = {
    "medical": ["health", "medic", "symptom", "doctor", "patient", "drug", "健康", "医", "症", "药", "病"],
    "legal": ["law", "legal", "contract", "court", "clause", "法", "合同", "诉"],
    "finance": ["financ", "invest", "tax", "account", "bank", "interest", "金融", "投资", "税", "会计", "利率"],
    "code": ["python", "sql", "code", "function", "regex", "bug", "代码", "函数", "编程"],
}


def domain_seed_tasks(lang: str, domain: str) -> list[dict]:
    shipped = seeds_dir() / "domains" / f"{domain}-{lang}.jsonl"
    if shipped.exists():
        return _read_tasks(shipped)[:SEEDS_PER_PROJECT]
    tasks = _read_tasks(seeds_dir() / f"{lang}.jsonl")
    words = DOMAIN_WORDS.get(domain, [domain.lower()])
    picked = [t for t in tasks if any(w in t["instruction"].lower() for w in words)]
    # a handful of general tasks as well, so the model sees a varied list in its prompt
    picked += [t for t in tasks if t not in picked][: max(0, SEEDS_PER_PROJECT - len(picked))]
    return picked[:SEEDS_PER_PROJECT]


def _read_tasks(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _config(lang: str, domain: str) -> str:
    return f"""# sftdata pipeline for a {domain} dataset ({lang}). Every key, its default and help: `sftdata run --list-keys`.
name: {domain}-{lang}
lang: {lang}
seed: 0
seeds: seeds.jsonl            # relative to this file

llm:
  # No base_url: the embedded SmolLM2-135M-Instruct answers, offline (good for a dry run, weak data).
  # A real endpoint, e.g. vLLM:  base_url: [http://localhost:8000/v1]   model: Qwen/Qwen2.5-7B-Instruct
  # The key comes from OPENAI_API_KEY; it is never written to the run directory.
  concurrency: 16
  # price_in: 0.15            # USD per million prompt tokens, for the cost estimate and max_cost
  # price_out: 0.60
  # max_cost: 5.0

generate:
  mode: self-instruct         # or alpaca
  num_instructions: 200
  instances_per_task: 2

filter:
  rouge_threshold: 0.7

clean:
  mask_pii: {str(domain in ("medical", "finance", "legal")).lower()}

augment:
  ops: [constraints, deepen, paraphrase, rule:template]
  limit: 50

export:
  formats: [alpaca, sharegpt, messages]
  split: [0.9, 0.05, 0.05]

finetune:
  method: lora
  epochs: 2

eval:
  max_new_tokens: 128
  limit: 50

report: {{}}
"""


def _readme(lang: str, domain: str) -> str:
    return f"""# {domain} dataset ({lang})

Made with `sftdata init`. Next steps:

1. Edit `seeds.jsonl`: one task per line, `{{"id", "name", "instruction", "instances": [{{"input", "output"}}],
   "is_classification"}}`. Ten to a few hundred good, varied tasks of your domain make the difference.
2. Point `config.yaml` at your endpoint (`llm.base_url`, `llm.model`; `export OPENAI_API_KEY=...`).
3. Look before you pay: `sftdata run config.yaml --dry-run` prints the plan and an estimate of requests,
   tokens and cost.
4. Run it: `sftdata run config.yaml`. Interrupt it any time; the same command resumes.
5. Open `runs/{domain}-{lang}/report/report.html`; the data is in `runs/{domain}-{lang}/export/`.
"""


def scaffold(directory: str | Path, lang: str = "en", domain: str = "general", force: bool = False) -> list[Path]:
    root = Path(directory)
    files = {
        root / "config.yaml": _config(lang, domain),
        root / "seeds.jsonl": "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in domain_seed_tasks(lang, domain)),
        root / "README.md": _readme(lang, domain),
    }
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} exists; use --force to overwrite", "DIRECTORY")
    root.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
