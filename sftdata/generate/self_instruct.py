"""Self-Instruct (Wang et al., 2022) as a resumable stage: the paper's four steps, pipelined per round.

Each round (1) asks for new instructions with prompts mixing seed and pool instructions, filters
every one as it is parsed (rules, then ROUGE-L against seeds, the pool and the instructions already
accepted in this round), (2) classifies the accepted ones, (3) generates their instances, the label
first for classification tasks, and (4) cleans the instances. A task's instruction enters
``instructions.jsonl`` when its instances are done; until then it is *pending* and lives in the
checkpoint state. Requests are built from the state alone and committed in request order, so a
rerun over the same cache writes the same bytes. A request the budget denied is skipped (its work
stays pending); a request that failed every retry is tried again in a later round, at most
``FAILED_TRIES`` times.
"""

from __future__ import annotations

import random
from typing import Any

from ..core.records import Record
from ..llm.base import Request
from ..llm.client import BUDGET, LLM
from . import prompts
from .base import FAILED_TRIES, GenerateStage
from .config import derive_seed
from .parse import parse_instances, parse_instructions, parse_yes_no


class SelfInstructStage(GenerateStage):
    source = "self-instruct"

    def restore_state(self, state: dict[str, Any]) -> None:
        self.pending: list[dict[str, Any]] = list(state.get("pending", []))

    def pending_instructions(self) -> list[str]:
        return [task["instruction"] for task in getattr(self, "pending", [])]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "pending": self.pending}

    def done(self) -> bool:
        return not self.pending and super().done()

    async def run_round(self, llm: LLM, round_no: int) -> None:
        before = (self.tasks_done, len(self.pending))
        denied = await self._instructions(llm, round_no)
        denied |= await self._classify(llm)
        denied |= await self._instances(llm)
        self.end_round((self.tasks_done, len(self.pending)) != before, denied)

    # ------------------------------------------------------------ step 1: instructions
    def _wanted(self) -> int:
        return self.config.num_instructions - self.tasks_done - len(self.pending)

    def instruction_requests(self, round_no: int) -> list[Request]:
        wanted = self._wanted()
        if wanted <= 0 or self.done():
            return []
        sampling = self.config.sampling("instructions")
        requests = []
        count = self.requests_needed("instructions", wanted, self.accepted_instructions(),
                                     self.config.instructions_per_request)
        for i in range(count):
            rng = random.Random(f"{self.config.seed}:{round_no}:{i}")
            shown = self.sample_prompt_tasks(rng, self.config.machine_tasks_in_prompt)
            text = prompts.instructions_prompt(self.lang, shown, self.config.instructions_per_request)
            requests.append(Request.chat(text, seed=derive_seed(self.config.seed, "instructions", round_no, i),
                                         tag="generate:instructions", **sampling))
        return requests

    async def _instructions(self, llm: LLM, round_no: int) -> bool:
        return await self.take_replies(llm, self.instruction_requests(round_no), "instructions",
                                       parse_instructions, self._take_instruction, round_no)

    def _take_instruction(self, entry: str, cut: bool, meta: dict[str, Any]) -> None:
        record = Record(entry, lang=self.lang, source=self.source, meta=meta)
        if cut:
            self.reject(record, "truncated", "instruction")
            return
        verdict = self.check_instruction(entry)
        if isinstance(verdict, tuple):
            self.reject(record, verdict[0], "instruction", **verdict[1])
            return
        if self._wanted() <= 0:  # the target is reached: a good instruction, but one too many
            self.reject(record, "surplus", "instruction", target=self.config.num_instructions, **verdict)
            return
        self.keep_instruction(entry)
        self.pending.append({"instruction": entry, **verdict, **meta, "classified": False,
                             "is_classification": None, "classify_answer": None, "tries": 0})

    # ------------------------------------------------------------ step 2: classification
    async def _classify(self, llm: LLM) -> bool:
        todo = [task for task in self.pending if not task["classified"]]
        sampling = self.config.sampling("classify")
        requests = [Request.chat(prompts.classify_prompt(self.lang, task["instruction"]),
                                 seed=derive_seed(self.config.seed, "classify", task["instruction"]),
                                 tag="generate:classify", **sampling) for task in todo]
        denied = False
        for task, (_request, completion, _key) in zip(todo, await self.complete(llm, requests)):
            if completion.error == BUDGET:
                denied = True
                continue
            if not completion.ok:
                self.counts["classify_failed"] += 1
                task["tries"] += 1
                if task["tries"] >= FAILED_TRIES:  # recorded as unknown: never guessed
                    task.update(classified=True, tries=0, classify_answer=f"error: {completion.error}")
                    self.counts["classification_unknown"] += 1
                continue
            answer = parse_yes_no(completion.text)
            task.update(classified=True, tries=0, is_classification=answer,
                        classify_answer=completion.text.strip()[:80])
            self.counts[{True: "classification_yes", False: "classification_no", None: "classification_unknown"}[answer]] += 1
        return denied

    # ------------------------------------------------------------ steps 3 and 4: instances, cleanup
    async def _instances(self, llm: LLM) -> bool:
        todo = [task for task in self.pending if task["classified"]]
        sampling = self.config.sampling("instances")
        k = self.config.instances_per_task
        requests = [Request.chat(prompts.instances_prompt(self.lang, task["instruction"],
                                                          task["is_classification"] is True, k),
                                 seed=derive_seed(self.config.seed, "instances", task["instruction"]),
                                 tag="generate:instances", **sampling) for task in todo]
        denied = False
        finished: list[dict[str, Any]] = []
        for task, (request, completion, key) in zip(todo, await self.complete(llm, requests)):
            if completion.error == BUDGET:
                denied = True
                continue
            if not completion.ok:
                self.count_reply("instances", completion, None)
                task["tries"] += 1
                if task["tries"] >= FAILED_TRIES:
                    self.reject(self._task_record(task), "request_failed", "instruction", error=completion.error)
                    self._finish(task, 0)
                    finished.append(task)
                continue
            output_first = task["is_classification"] is True
            parsed = parse_instances(completion.text, output_first=output_first)
            self.count_reply("instances", completion, len(parsed.items))
            meta = {"model": self.model, "rouge_max": task["rouge_max"], "most_similar": task["most_similar"],
                    "request_keys": {"instructions": task["request_key"], "instances": key},
                    "request_ids": [i for i in (task["request_id"], completion.request_id) if i],
                    "round": task["round"], "format": "output_first" if output_first else "input_first"}
            kept = self.clean_instances(task["instruction"], list(parsed.entries), completion.truncated, k,
                                        task["is_classification"], meta, prompt=request.messages[-1][1])
            for record in kept:
                self.accept(record)
            self._finish(task, len(kept))
            finished.append(task)
        self.pending = [task for task in self.pending if all(task is not f for f in finished)]
        return denied

    def _task_record(self, task: dict[str, Any]) -> Record:
        return Record(task["instruction"], lang=self.lang, is_classification=task["is_classification"],
                      source=self.source, meta={"model": self.model, "request_key": task["request_key"]})

    def _finish(self, task: dict[str, Any], instances: int) -> None:
        self.add_to_pool({
            "instruction": task["instruction"], "is_classification": task["is_classification"],
            "rouge_max": task["rouge_max"], "most_similar": task["most_similar"], "instances": instances,
            "lang": self.lang, "classify_answer": task["classify_answer"], "round": task["round"],
            "request_key": task["request_key"], "model": task["model"],
        })
