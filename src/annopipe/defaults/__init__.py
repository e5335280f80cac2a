"""The built-in config: what annopipe uses when no project config is found, and what `annopipe init` copies.

These files are the one copy of the labels, topic patterns and relation rules: the repository's
`configs/` links to `topics.jsonl` and `relation_rules.yaml` here, and `configs/annopipe.yaml`
differs from `annopipe.yaml` here only in where the model registry is (tests/test_config.py checks).
"""
