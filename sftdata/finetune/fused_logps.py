"""Per-token log-probabilities of given targets through the LM head, in chunks, never holding the
(tokens x vocab) logits of a whole batch.

``token_logps(hidden, weight, targets)`` equals ``(hidden @ weight.T).float().log_softmax(-1)``
gathered at ``targets``. Run with autograd, it computes the gradient with respect to ``hidden`` in
the same pass (``d logp / d logits = onehot - softmax``, one more matmul with the head per chunk)
and keeps only that (tokens x hidden) tensor for the backward, like a fused linear cross-entropy:
the LM head costs two matmuls per token as plain autograd does, but its memory is one chunk of
logits instead of the batch's logits, their log-softmax and its gradient (on SmolLM2, 49k floats a
token each). Under autocast the matmuls run in the autocast dtype and the softmax in fp32, as the
plain ``lm_head(hidden).float().log_softmax(-1)`` does.

Shared by the preference methods (:mod:`.pair_batching`); usable by any loss summing per-token
log-probabilities (the caller's gradient is a per-token scale of the precomputed one).
"""

from __future__ import annotations

import torch

CHUNK_TOKENS = 256  # 256 x 49152 fp32 logits: 50 MB at a time


class _TokenLogps(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,  # type: ignore[override]
                chunk: int) -> torch.Tensor:
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        for start in range(0, hidden.shape[0], chunk):
            target = targets[start:start + chunk, None]
            logits = (hidden[start:start + chunk] @ weight.t()).float()
            log_z = logits.logsumexp(-1, keepdim=True)
            out[start:start + chunk] = (logits.gather(1, target) - log_z).squeeze(1)
            if grad_hidden is not None:
                # d logp / d logits = onehot - softmax, formed in place of the logits (negated)
                minus = logits.sub_(log_z).exp_().scatter_add_(1, target, torch.full(target.shape, -1.0,
                                                                                      device=target.device))
                grad_hidden[start:start + chunk] = -(minus.to(weight.dtype) @ weight)
        ctx.save_for_backward(grad_hidden)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_out[:, None].to(grad_hidden.dtype), None, None, None


def token_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                bias: torch.Tensor | None = None, chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """(tokens,) fp32 log-probability of ``targets`` under ``hidden @ weight.T (+ bias)``."""
    # a trained or biased LM head (none in transformers' Llama family) takes plain autograd
    if bias is not None or (weight.requires_grad and torch.is_grad_enabled()):
        logits = torch.nn.functional.linear(hidden, weight, bias).float()
        return logits.log_softmax(-1).gather(1, targets[:, None]).squeeze(1)
    return _TokenLogps.apply(hidden, weight, targets, chunk)
