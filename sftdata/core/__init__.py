"""The core every stage shares: records, the run directory, config loading, errors, paths, statistics,
settings declared once (:mod:`.settings`), the stage contract (:mod:`.stage`) and the round machinery of
LLM-driven stages (:mod:`.rounds`). See docs/architecture.md."""
