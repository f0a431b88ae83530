"""Text helpers that several stages share (pure functions on strings; importing this is cheap).

    cjk        the one CJK character class (Han with extensions A-H and the compatibility ideographs,
               kana, hangul) and predicates on it: has_cjk, cjk_count, mostly_cjk, is_cjk_lang
    lang       detect_lang (script first, then langdetect), is_cjk_text, known_langs
    count      text_length / quick_length: words, or characters for CJK text
    reply      recognizers for model replies: list markers, labels, fences, chatter, "no input"
    blocks     splitting a reply into labeled blocks (one task or instance each)
    refusals   the refusal tests of generate, augment and clean side by side, and why they differ
    prompt     join_prompt: the user turn every format and the trainer build from instruction + input
"""
