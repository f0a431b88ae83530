"""Seed tasks for the generate tests, in English and Chinese, and a writer for Self-Instruct's seed file."""

from __future__ import annotations

import json
from pathlib import Path

SEEDS_EN = [
    ("Suggest a name for a bakery that only sells sourdough bread.", "", "Rise & Crust", False),
    ("Rewrite the sentence so that it uses the passive voice.", "The committee approved the budget.",
     "The budget was approved by the committee.", False),
    ("Tell whether the review is positive or negative.", "The battery died after two days.", "Negative", True),
    ("Give three reasons why regular sleep helps students.", "", "It improves memory, mood and focus.", False),
    ("Convert the temperature from Celsius to Fahrenheit.", "25 C", "77 F", False),
    ("Which planet in our solar system has the most moons?", "", "Saturn has the most confirmed moons.", False),
    ("Decide if the email is spam or not spam.", "You won a free cruise! Click now.", "Spam", True),
    ("Write a two-line rhyme about a sleepy cat.", "", "The cat curls up upon the mat,\nand dreams of mice and this and that.", False),
    ("Extract every year mentioned in the paragraph.", "The bridge opened in 1932 and closed in 1998.", "1932, 1998", False),
    ("Explain the difference between weather and climate to a child.", "",
     "Weather is what the sky does today; climate is what it usually does over many years.", False),
    ("Sort the numbers from smallest to largest.", "42, 7, 19", "7, 19, 42", False),
    ("Identify the part of speech of the word in capitals.", "She sings BEAUTIFULLY.", "Adverb", True),
]
SEEDS_ZH = [
    ("为一家只卖酸面包的面包店起一个名字。", "", "麦香酸语", False),
    ("把下面的句子改写成被动句。", "委员会批准了预算。", "预算被委员会批准了。", False),
    ("判断这条评价是正面还是负面。", "电池两天就没电了。", "负面", True),
    ("说出规律作息对学生有哪些好处。", "", "能改善记忆、情绪和专注力。", False),
    ("把摄氏温度换算成华氏温度。", "25摄氏度", "77华氏度", False),
    ("太阳系中哪颗行星的卫星最多？", "", "土星已确认的卫星最多。", False),
    ("判断这封邮件是不是垃圾邮件。", "恭喜您获得免费邮轮旅行，立即点击领取！", "是", True),
    ("写两句关于一只懒猫的顺口溜。", "", "小懒猫，晒太阳，\n一觉睡到大天亮。", False),
    ("找出这段话中提到的所有年份。", "这座桥建于1932年，1998年停用。", "1932年、1998年", False),
    ("用孩子能听懂的话解释天气和气候的区别。", "", "天气是今天的样子，气候是很多年来通常的样子。", False),
]


def write_seeds(path: Path, seeds: list[tuple]) -> Path:
    """Seed tasks in Self-Instruct's own seed-file schema."""
    with open(path, "w", encoding="utf-8") as fh:
        for i, (instruction, task_input, output, clf) in enumerate(seeds):
            fh.write(json.dumps({"id": f"seed_task_{i}", "name": f"task_{i}", "instruction": instruction,
                                 "instances": [{"input": task_input, "output": output}],
                                 "is_classification": clf}, ensure_ascii=False) + "\n")
    return path
