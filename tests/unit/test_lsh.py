"""``--rouge-blocking lsh``: MinHash-LSH candidates verified with the exact ROUGE-L F. Every rejection
is a real pair above the threshold (rouge-score's own scorer says so), near-duplicates are found in
English and Chinese, the signatures do not depend on the process (PYTHONHASHSEED), and the filter
command takes the option with its checks."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
from cli_helpers import run_cli
from rouge_score import rouge_scorer

from sftdata.core.records import Record, write_jsonl
from sftdata.filter import lsh
from sftdata.filter.config import FilterConfig
from sftdata.filter.lsh import EdgeIndex, LSHIndex, bucket_pairs, intern, lsh_pairs, signatures
from sftdata.filter.rouge import RougeIndex
from sftdata.filter.tokenize import tokenize_cjk

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("river mountain garden window bridge candle silver rabbit orchard lantern harbor meadow violin "
         "teapot glacier compass falcon pepper quartz saddle").split()


def near_duplicates(count: int, seed: int = 3) -> list[str]:
    """Distinct 14-word texts, every third one an earlier text with one word changed."""
    rng = random.Random(seed)
    texts: list[str] = []
    for i in range(count):
        if i % 3 == 2:
            words = texts[-1].split()
            words[rng.randrange(1, len(words))] = rng.choice(WORDS) + "x"
            texts.append(" ".join(words))
        else:
            texts.append("Describe " + " ".join(rng.choice(WORDS) for _ in range(13)))
    return texts


def test_every_rejection_is_a_real_pair_above_the_threshold_and_near_duplicates_are_found() -> None:
    texts = near_duplicates(300)
    index = LSHIndex("auto", 0.7)
    matches = index.check_and_add_many(texts)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rejected = [(text, m) for text, m in zip(texts, matches) if not m.novel]
    for text, match in rejected:
        assert scorer.score(match.most_similar, text)["rougeL"].fmeasure == match.score > 0.7
    exact = [m.novel for m in RougeIndex("auto", 0.7).check_and_add_many(texts)]
    missed = sum(1 for e, m in zip(exact, matches) if not e and m.novel)
    assert len(rejected) >= 90 and missed <= len(rejected) // 20  # one word in 14 changed: LSH finds them
    assert len(index) == len(texts) - len(rejected) and index.stats["pairs_scored"] >= len(rejected)


def test_the_batch_search_decides_as_the_incremental_index() -> None:
    texts = near_duplicates(300, seed=5)
    against, rest = texts[:20], texts[20:]
    incremental = LSHIndex("auto", 0.7)
    incremental.add_many(against)
    expected = incremental.check_and_add_many(rest)
    pairs = lsh_pairs(texts, FilterConfig(rouge_blocking="lsh"), tasks=3)  # 3 slices, 3 band groups
    replay = EdgeIndex(texts, len(against), pairs, 0.7)
    replay.add_many(against)
    def decisions(matches):  # a kept text's score is the best candidate's: only the batch form skips those
        return [(m.novel, None if m.novel else (m.score, m.most_similar)) for m in matches]

    assert decisions(replay.check_and_add_many(rest)) == decisions(expected)
    assert sum(not m.novel for m in expected) >= 80


def test_chinese_near_duplicates_are_blocked_per_character() -> None:
    base = "请描述春天的山水风景并写一首关于江河湖海的短诗给小朋友看"
    variant = base.replace("春天", "秋天")
    assert not tokenize_cjk(base) == tokenize_cjk(variant)
    matches = LSHIndex("auto", 0.7).check_and_add_many([base, variant, "解释为什么天空是蓝色的"])
    assert [m.novel for m in matches] == [True, False, True]
    assert LSHIndex("rouge", 0.7).check_and_add_many([base, variant])[1].novel  # rouge-score: no tokens


def test_signatures_do_not_depend_on_the_process() -> None:
    code = ("from sftdata.filter.lsh import LSHIndex\n"
            "i = LSHIndex('auto', 0.7)\n"
            "print(i._band_keys([i._tokens('Write a short poem about the sea and the moon.')])[0][:4])\n")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2")}
    assert len(outputs) == 1


def test_filter_command_takes_rouge_blocking_lsh(tmp_path: Path, capsys) -> None:
    texts = near_duplicates(30)
    write_jsonl(tmp_path / "in.jsonl", [Record(t, output=f"answer {i}") for i, t in enumerate(texts)])
    code, out, _ = run_cli(["filter", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o"),
                            "--rouge-blocking", "lsh", "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["by_reason"]["rouge"] >= 9 and summary["accepted"] + summary["rejected"] == 30
    code, _, err = run_cli(["filter", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "p"),
                            "--rouge-blocking", "lsh", "--lsh-rows", "0"], capsys)
    assert code == 2 and "--lsh-rows" in err


def _bucket_setup(rows: int, bands: int) -> tuple[list[str], list, object, object]:
    """Texts sharing six frequent words (F ~0.4: noise) mixed with near-duplicates, their keys and ids."""
    rng = random.Random(11)
    vocabulary = [f"w{k}" for k in range(3000)]
    texts = [" ".join(["the", "of", "a", "to", "and", "in"] + rng.sample(vocabulary, 8)) for _ in range(240)]
    texts += [text.replace(text.split()[-1], "changed") for text in texts[:60]]
    config = FilterConfig(rouge_blocking="lsh", lsh_bands=bands, lsh_rows=rows)
    toks, start = intern(texts, "auto")
    return texts, [signatures(texts, config)], toks, start


def _all_bucket_pairs_above(texts: list[str], parts: list) -> dict[tuple[int, int], float]:
    """(later, earlier) -> F of every pair sharing a bucket in some band, scored by rouge-score itself."""
    keys, _present = parts[0]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    out = {}
    for later in range(len(texts)):
        for earlier in range(later):
            if (keys[earlier] == keys[later]).any():
                score = scorer.score(texts[earlier], texts[later])["rougeL"].fmeasure
                if score > 0.7:
                    out[(later, earlier)] = score
    return out


def test_streamed_bucket_pairs_find_every_pair_above_the_threshold_that_shares_a_bucket(monkeypatch) -> None:
    texts, parts, toks, start = _bucket_setup(rows=1, bands=4)
    monkeypatch.setattr(lsh, "_PAIR_CHUNK", 7)  # many chunks per band
    found = np.concatenate([bucket_pairs([band], parts, toks, start, 0.7, cap=10**6) for band in range(4)])
    got = {(int(a), int(b)): s for a, b, s in found.tolist()}
    assert len(got) == len(found)  # a pair met in several bands is verified in the first one only
    expected = _all_bucket_pairs_above(texts, parts)
    assert got.keys() == expected.keys() and all(abs(got[k] - expected[k]) < 1e-12 for k in got)
    assert len(expected) >= 60


def test_an_oversize_bucket_is_searched_by_the_exact_index_and_only_drops_for_real_pairs() -> None:
    texts, parts, toks, start = _bucket_setup(rows=1, bands=4)
    keys, _present = parts[0]
    assert max(np.unique(keys[:, band], return_counts=True)[1].max() for band in range(4)) > 40
    capped = bucket_pairs(list(range(4)), parts, toks, start, 0.7, cap=20)
    expected = _all_bucket_pairs_above(texts, parts)
    for later, earlier, score in capped.tolist():  # every row a real pair above the threshold
        assert abs(expected[(int(later), int(earlier))] - score) < 1e-12
    found_later = {int(later) for later, _earlier, _score in capped.tolist()}
    assert found_later == {later for later, _earlier in expected}  # here every near-duplicate is still found
    replay = EdgeIndex(texts, 0, capped, 0.7).check_and_add_many(texts)
    exact = RougeIndex("auto", 0.7).check_and_add_many(texts)
    assert [m.novel for m in replay] == [m.novel for m in exact]
