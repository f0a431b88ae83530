"""`sftdata report` on real run directories (staged and flat) and plain JSONL, through the CLI."""

from __future__ import annotations

import base64
import io
import json
import re
import warnings
from pathlib import Path

import pytest
from system_deps import missing

from sftdata.cli import main
from sftdata.core.records import Record, rejected, write_jsonl
from sftdata.filter.rouge import rouge_l_f
from sftdata.filter.tokenize import get_tokenizer
from sftdata.report import plots as report_plots

SEEDS = [
    {"id": "s1", "name": "story", "instruction": "Write a short story about a brave cat.",
     "instances": [{"input": "", "output": "Once upon a time a cat saved the village."}], "is_classification": False},
    {"id": "s2", "name": "sentiment", "instruction": "Classify the sentiment of the review.",
     "instances": [{"input": "I loved it.", "output": "positive"}], "is_classification": True},
    {"id": "s3", "name": "translate", "instruction": "请把下面的句子翻译成英文。",
     "instances": [{"input": "我喜欢苹果。", "output": "I like apples."}], "is_classification": False},
    {"id": "s4", "name": "zh_cls", "instruction": "判断下面这句话的情感是正面还是负面。",
     "instances": [{"input": "这部电影太好看了。", "output": "正面"}], "is_classification": True},
]

GENERATED = [
    # (instruction, input, output, lang, is_classification, source)
    ("Write a short poem about a brave dog.", "", "A dog stood tall against the storm.", "en", False, "self-instruct"),
    ("Write a haiku about autumn leaves.", "", "Red leaves drift slowly down.", "en", False, "self-instruct"),
    ("Write an email declining a meeting.", "Meeting on Friday", "Dear Sam, I cannot attend on Friday.", "en",
     False, "self-instruct"),
    ("Classify the topic of the news headline.", "Stocks rally after rate cut", "finance", "en", True,
     "self-instruct"),
    ("Classify the topic of the news headline.", "Team wins the cup final", "sports", "en", True, "self-instruct"),
    ("Please explain why the sky is blue.", "", "Sunlight scatters off air molecules; blue scatters most.", "en",
     False, "self-instruct"),
    ("List three uses of a paperclip.", "", "Hold paper, reset a device, make a hook.", "en", False,
     "self-instruct"),
    ("请把下面的段落翻译成法语。", "今天天气很好。", "Il fait beau aujourd'hui.", "zh", False, "self-instruct"),
    ("请写一首关于春天的短诗。", "", "春风吹绿了柳枝，燕子飞回了屋檐。", "zh", False, "self-instruct"),
    ("判断下面的评论是正面还是负面。", "服务很差，再也不来了。", "负面", "zh", True, "self-instruct"),
    ("翻译下面的句子。", "谢谢你的帮助。", "Thank you for your help.", "zh", False, "self-instruct"),
]


def _records() -> list[Record]:
    recs = [Record(i, inp, out, lang=lang, is_classification=cls, source=src)
            for i, inp, out, lang, cls, src in GENERATED]
    for seed in SEEDS:  # the seed tasks are part of the final dataset too, as in Self-Instruct
        inst = seed["instances"][0]
        recs.append(Record(seed["instruction"], inst["input"], inst["output"],
                           lang="zh" if re.search("[\u4e00-\u9fff]", seed["instruction"]) else "en",
                           is_classification=seed["is_classification"], source="seed"))
    parent = recs[0]
    recs.append(Record("Write a short poem about a brave dog, in exactly four rhyming lines.", "",
                       "A dog stood tall,\nheard the call,\nfaced it all,\nnever to fall.", lang="en",
                       is_classification=False, source="evol:add_constraints", parent_id=parent.id))
    child = recs[-1]
    recs.append(Record("Write a four-line rhyming poem about a brave dog who rescues a child from a river.", "",
                       "In the river deep,\na child did weep,\nthe dog did leap,\nher life to keep.", lang="en",
                       is_classification=False, source="evol:deepen", parent_id=child.id))
    return recs


STAGE_REJECTS = {
    "generate": [("rouge", 3), ("blacklist", 1)],
    "filter": [("length", 2), ("language", 1)],
    "clean": [("refusal", 1)],
}
USAGE = {"generate": (1200, 800, 0.0021), "augment": (300, 500, 0.0009)}


def make_staged_run(root: Path) -> Path:
    """A run directory laid out by stage, as `sftdata run` writes it."""
    run = root / "run"
    run.mkdir()
    write_jsonl(run / "seeds.jsonl", SEEDS)
    (run / "config.json").write_text(json.dumps({"generate": {"seeds": "seeds.jsonl", "model": "m"}}))
    records = _records()
    base = [r for r in records if not r.source.startswith("evol:")]
    write_jsonl(run / "generate" / "accepted.jsonl", base)
    write_jsonl(run / "filter" / "accepted.jsonl", base)
    write_jsonl(run / "clean" / "accepted.jsonl", base)
    write_jsonl(run / "augment" / "accepted.jsonl", records)
    victim = Record("Write a short story about a brave cat.", "", "x", lang="en")
    for stage, reasons in STAGE_REJECTS.items():
        rows = [rejected(victim, stage, reason, {"n": k}) for reason, n in reasons for k in range(n)]
        write_jsonl(run / stage / "rejected.jsonl", rows)
    for stage, (prompt, completion, cost) in USAGE.items():
        (run / stage / "stats.json").write_text(json.dumps({
            "accepted": 10, "llm": {"sent": 7, "cached": 1, "prompt_tokens": prompt, "completion_tokens": completion,
                                    "cost_usd": cost, "backend": "openai", "model": "gpt-test"}}))
    write_jsonl(run / "export" / "alpaca" / "train.jsonl",
                [{"instruction": r.instruction, "input": r.input, "output": r.output} for r in records])
    (run / "finetune").mkdir()
    (run / "finetune" / "metrics.json").write_text(json.dumps({
        "train": [{"step": s, "loss": 3.0 - 0.2 * s} for s in range(1, 11)],
        "eval": [{"step": s, "loss": 2.9 - 0.15 * s} for s in (5, 10)], "method": "lora"}))
    (run / "eval").mkdir()
    (run / "eval" / "eval.json").write_text(json.dumps({"models": [
        {"name": "base", "loss": 2.5, "perplexity": 12.18, "rouge_l": 0.21},
        {"name": "lora", "loss": 1.9, "perplexity": 6.69, "rouge_l": 0.33,
         "delta": {"loss": -0.6, "perplexity": -5.49, "rouge_l": 0.12}}]}))
    return run


def run_report(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(["report", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def staged_report(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("report")
    run = make_staged_run(root)
    out = root / "out"
    main(["report", str(run), "--out", str(out), "--json"])
    return run, out, json.loads((out / "stats.json").read_text(encoding="utf-8"))


def test_table1_languages_and_lineage(staged_report):
    _run, _out, stats = staged_report
    t1 = stats["table1"]
    records = _records()
    assert stats["data_files"][0].endswith("augment/accepted.jsonl")  # the last data stage wins
    assert t1["instances"] == len(records) == 17
    assert t1["instructions"] == len({r.instruction for r in records}) == 16
    # classification: the news-topic task, the zh review task and the two seed classification tasks
    assert t1["classification_instructions"] == 4
    assert t1["instances_with_empty_input"] == sum(1 for r in records if not r.input)
    assert stats["languages"] == {"en": 11, "zh": 6}
    assert stats["lineage"]["sources"] == {"self-instruct": 11, "seed": 4, "evol:add_constraints": 1,
                                           "evol:deepen": 1}
    assert stats["lineage"]["with_parent"] == 2
    assert stats["lineage"]["depth"] == {"0": 15, "1": 1, "2": 1}


def test_rouge_to_seeds_matches_brute_force(staged_report):
    _run, _out, stats = staged_report
    rouge = stats["rouge_vs_seeds"]
    assert rouge["basis"] == "seeds" and rouge["seeds"] == 4
    assert rouge["seed_origin"].endswith("seeds.jsonl")  # found through config.json
    tok = get_tokenizer("auto")
    seeds = [tok(s["instruction"]) for s in SEEDS]
    generated = sorted({r.instruction for r in _records() if r.source != "seed"})
    brute = [max(rouge_l_f(tok(text), s) for s in seeds) for text in generated]
    assert rouge["instructions"] == len(brute) == 12
    assert rouge["mean"] == pytest.approx(sum(brute) / len(brute), abs=1e-4)
    assert sum(rouge["histogram"]) == 12
    # a Chinese instruction close to a Chinese seed scores high: the CJK-aware tokenizer is in use
    assert max(rouge_l_f(tok("请把下面的段落翻译成法语。"), s) for s in seeds) > 0.5


def test_rejections_usage_leading_words_and_curves(staged_report):
    run, _out, stats = staged_report
    assert stats["rejections"] == {stage: dict(reasons) for stage, reasons in STAGE_REJECTS.items()}
    assert stats["rejected_total"] == 8
    assert {k: (v["prompt_tokens"], v["completion_tokens"], v["cost_usd"]) for k, v in stats["usage"].items()} \
        == USAGE
    assert stats["usage"]["generate"]["model"] == "gpt-test"
    en = dict(map(tuple, stats["leading_words"]["en"]))
    zh = dict(map(tuple, stats["leading_words"]["zh"]))
    assert en["write"] == 6 and en["classify"] == 2 and en["explain"] == 1  # "Please explain" -> explain
    assert zh == {"把…": 2, "判断": 2, "写": 1, "翻译": 1}  # 请把下面…翻译 -> 把…, 请写一首 -> 写
    curves = stats["finetune"][str(run / "finetune")]
    assert curves["train"] == {"points": 10, "first": 2.8, "last": pytest.approx(1.0), "min": pytest.approx(1.0)}
    assert curves["eval"]["points"] == 2
    lengths = stats["lengths"]
    assert lengths["zh"]["output"]["n"] == 6 and lengths["en"]["instruction"]["n"] == 10
    base, lora = stats["eval"][0]["models"]
    assert base["metrics"]["loss"] == 2.5 and lora["delta"]["loss"] == -0.6


@pytest.mark.parametrize("metrics, expected", [
    # sftdata finetune's metrics.json
    ({"train_loss": 1.0, "curves": {"train": [{"step": 1, "loss": 2.0, "lr": 1e-4, "grad_norm": 1.0},
                                              {"step": 2, "loss": 1.5, "lr": 1e-4, "grad_norm": 0.9}],
                                    "eval": [{"step": 0, "loss": 2.2, "perplexity": 9.0}]}, "warnings": []},
     {"train": [(1.0, 2.0), (2.0, 1.5)], "eval": [(0.0, 2.2)]}),
    # transformers' trainer_state.json
    ({"log_history": [{"step": 5, "loss": 1.2, "epoch": 0.5}, {"step": 5, "eval_loss": 1.4, "epoch": 0.5},
                      {"step": 10, "loss": 1.0}]},
     {"loss": [(5.0, 1.2), (10.0, 1.0)], "eval_loss": [(5.0, 1.4)]}),
    # bare lists of numbers and of [step, loss] pairs
    ({"train_loss": [3.0, 2.0, 1.0], "eval_loss": [[10, 2.5], [20, 2.0]]},
     {"train_loss": [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)], "eval_loss": [(10.0, 2.5), (20.0, 2.0)]}),
    ({"note": "no curves here", "loss": 2.0, "tags": ["a"]}, {}),
])
def test_loss_curves_from_several_metrics_shapes(metrics, expected):
    from sftdata.report.data import loss_curves

    assert loss_curves(metrics) == expected


def test_figures_are_png_and_html_is_self_contained(staged_report):
    _run, out, stats = staged_report
    from PIL import Image

    expected = {"table1", "rouge_vs_seeds", "lengths", "leading_words", "languages", "sources", "rejections",
                "token_usage", "loss"}
    assert set(stats["figures"]) == expected
    for rel in stats["figures"].values():
        with Image.open(out / rel) as img:
            assert img.format == "PNG" and img.width > 200 and img.height > 100
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "url(" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(expected) - 1  # Table 1 is an HTML table on the page, a PNG in figures/
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as img:
            img.verify()
    for text in ("Table 1", "判断", "evol:deepen", "gpt-test", "Evaluation", "lora", "-0.6000"):
        assert text in page


def test_flat_run_and_plain_jsonl(tmp_path, capsys):
    flat = tmp_path / "flat"
    write_jsonl(flat / "accepted.jsonl", _records())
    write_jsonl(flat / "rejected.jsonl", [rejected(Record("x", "", "y"), "filter", "rouge")])
    (flat / "stats.json").write_text(json.dumps({"llm": {"prompt_tokens": 5, "completion_tokens": 6}}))
    code, out, _ = run_report([str(flat), "--out", str(tmp_path / "o1"), "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["rejected"] == 1 and summary["records"] == 17
    stats = json.loads((tmp_path / "o1" / "stats.json").read_text())
    # no seed file: the dataset's own seed records are the seeds
    assert stats["rouge_vs_seeds"]["basis"] == "seeds" and stats["rouge_vs_seeds"]["seeds"] == 4
    assert stats["usage"] == {"run": {"prompt_tokens": 5, "completion_tokens": 6, "cost_usd": 0.0, "requests": 0}}

    # a plain alpaca JSONL with meta-less rows and no seeds: no Figure 3, said so; still a full report
    plain = tmp_path / "data.jsonl"
    write_jsonl(plain, [{"instruction": r.instruction, "input": r.input, "output": r.output} for r in _records()])
    code, out, _ = run_report([str(plain), "--out", str(tmp_path / "o2")], capsys)
    assert code == 0, out
    stats = json.loads((tmp_path / "o2" / "stats.json").read_text())
    assert stats["rouge_vs_seeds"]["basis"] == "none" and "rouge_vs_seeds" not in stats["figures"]
    assert "No seeds found" in (tmp_path / "o2" / "report.html").read_text(encoding="utf-8")


def test_meta_rouge_max_fallback_and_explicit_seeds(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    rows = [Record(f"Write a note number {k}.", "", "ok", lang="en", source="self-instruct",
                   meta={"rouge_max": k / 10}) for k in range(5)]
    write_jsonl(data, rows)
    code, _, _ = run_report([str(data), "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["rouge_vs_seeds"]["basis"] == "meta.rouge_max"
    assert stats["rouge_vs_seeds"]["mean"] == pytest.approx(0.2)
    seeds = tmp_path / "seeds.jsonl"
    write_jsonl(seeds, SEEDS)
    code, _, _ = run_report([str(data), "--seeds", str(seeds), "--out", str(tmp_path / "o3")], capsys)
    assert code == 0
    stats = json.loads((tmp_path / "o3" / "stats.json").read_text())
    assert stats["rouge_vs_seeds"]["basis"] == "seeds" and stats["rouge_vs_seeds"]["instructions"] == 5


def test_bad_inputs_exit_2_with_a_clear_message(tmp_path, capsys):
    code, _, err = run_report([str(tmp_path / "missing"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "missing: no such file or directory" in err and "Traceback" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n', encoding="utf-8")
    code, _, err = run_report([str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"{bad}:2: invalid JSON" in err
    empty = tmp_path / "emptyrun"
    empty.mkdir()
    code, _, err = run_report([str(empty), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no accepted.jsonl" in err
    run = tmp_path / "run"
    write_jsonl(run / "accepted.jsonl", _records())
    (run / "filter").mkdir()
    (run / "filter" / "rejected.jsonl").write_text('{"record": {}, "stage": "filter", "reason": "x"}\n[1]\n')
    code, _, err = run_report([str(run), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "filter/rejected.jsonl:2" in err
    code, _, err = run_report([str(run), "--seeds", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")],
                              capsys)
    assert code == 2 and "--seeds" in err


def test_without_a_cjk_font_figures_still_render_quietly(tmp_path, monkeypatch, capfd):
    from sftdata.report.stage import build_report

    monkeypatch.setattr(report_plots, "cjk_font", lambda: None)
    data = tmp_path / "zh.jsonl"
    write_jsonl(data, [r for r in _records() if r.lang == "zh"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = build_report([str(data)], tmp_path / "o")
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert "Glyph" not in capfd.readouterr().err
    assert any("No CJK font" in note for note in stats["notes"])
    assert (tmp_path / "o" / "figures" / "leading_words.png").stat().st_size > 1000


def test_the_cjk_font_found_has_the_glyphs():
    font = report_plots.cjk_font()
    if font is None:
        missing("no CJK font installed: apt-get install fonts-wqy-microhei (make system-deps installs it)")
    with report_plots.plotting() as plt, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # undo plotting()'s silencing: a missing glyph must show here
        fig, ax = plt.subplots()
        ax.set_title("判断下面的评论 leading words")
        fig.canvas.draw()
        plt.close(fig)
    assert not [w for w in caught if "Glyph" in str(w.message)]
