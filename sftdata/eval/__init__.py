"""The eval stage: held-out loss and perplexity, generation metrics, base vs adapters side by side."""
