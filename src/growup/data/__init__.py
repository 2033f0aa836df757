"""The study's data: Hub sources, the English split, UniMax budgets, replay, tokenizer, packing."""
