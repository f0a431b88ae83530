"""The export stage: alpaca / sharegpt / messages / prompt-completion files, leak-free splits, the dataset card."""
