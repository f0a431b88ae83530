"""Alpaca's one-pass bootstrap (Taori et al., 2023) as a resumable stage.

Each request shows a few seed tasks in the task format and asks for a batch of complete tasks
(instruction, input or "no input", output). Every parsed task gets the instance checks (empty
output, output equal to input, cut off by the token limit, the filter stage's instance rules, exact
duplicates) and then the instruction filters (rules, ROUGE-L against seeds and every kept
instruction, including those kept earlier in the same reply). The task's classification is not
asked in this mode: records carry ``is_classification: null``.
"""

from __future__ import annotations

import random
from typing import Any

from ..llm.base import Request
from ..llm.client import LLM
from . import prompts
from .base import GenerateStage
from .config import derive_seed
from .parse import Instance, Task, parse_tasks


class AlpacaStage(GenerateStage):
    source = "alpaca"

    async def run_round(self, llm: LLM, round_no: int) -> None:
        before = self.tasks_done
        denied = await self.take_replies(llm, self.requests(round_no), "alpaca", parse_tasks, self._take, round_no)
        self.end_round(self.tasks_done != before, denied)

    def requests(self, round_no: int) -> list[Request]:
        wanted = self.config.num_instructions - self.tasks_done
        if wanted <= 0:
            return []
        per_request = self.config.alpaca_tasks_per_request
        count = self.requests_needed("alpaca", wanted, self.tasks_done, per_request)
        sampling = self.config.sampling("alpaca")
        requests = []
        for i in range(count):
            rng = random.Random(f"{self.config.seed}:{round_no}:{i}")
            examples = rng.sample(self.seeds, min(self.config.prompt_seed_tasks, len(self.seeds)))
            text = prompts.alpaca_prompt(self.lang, examples, per_request)
            requests.append(Request.chat(text, seed=derive_seed(self.config.seed, "alpaca", round_no, i),
                                         tag="generate:alpaca", **sampling))
        return requests

    def _take(self, entry: Task, cut: bool, meta: dict[str, Any]) -> None:
        record = self.instance_record(entry.instruction, Instance(entry.input, entry.output), None, meta)
        problem = ("truncated", {}) if cut else self.instance_problem(record) or self.junk(record, self.shown)
        if problem is None and record.id in self.ids:
            problem = ("duplicate", {})
        if problem is not None:
            self.reject(record, problem[0], "instance", **problem[1])
            return
        verdict = self.check_instruction(entry.instruction)
        if isinstance(verdict, tuple):
            self.reject(record, verdict[0], "instruction", **verdict[1])
            return
        if self.tasks_done >= self.config.num_instructions:
            self.reject(record, "surplus", "instruction", target=self.config.num_instructions, **verdict)
            return
        self.keep_instruction(entry.instruction)
        record.meta.update(verdict)
        self.accept(record)
        self.add_to_pool({"instruction": entry.instruction, "is_classification": None, **verdict,
                          "instances": 1, "lang": self.lang, "round": meta["round"],
                          "request_key": meta["request_key"], "model": self.model})
