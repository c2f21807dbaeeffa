"""What each config field means, for `bench models NAME`: one line per field of the training
config and of every registered model's Config. tests/test_models_cli.py fails on a field with no
line here (and on a line for a field that no longer exists), so a new field comes with its meaning.
"""
from __future__ import annotations

TRAIN: dict[str, str] = {
    "epochs": "most training epochs (early stopping may end sooner); 0 = no training (a fitted model)",
    "batch_size": "training examples per optimizer step",
    "lr": "Adam learning rate",
    "weight_decay": "Adam weight decay (L2 on every parameter); 0 = off",
    "lr_schedule": "constant; cosine over `epochs`; step: x lr_decay every lr_step epochs; "
                   "plateau: x lr_decay when early stopping would stop, then go on",
    "lr_decay": "factor the step and plateau schedules multiply the lr by",
    "lr_step": "epochs between lr drops of the step schedule",
    "lr_drops": "lr drops the plateau schedule makes before early stopping may stop",
    "eval_every": "epochs between validation passes (NDCG@10 selects the checkpoint)",
    "patience": "validation passes without improvement before early stopping",
    "eval_batch_size": "users per evaluation batch (speed and memory only, except for the diffusion "
                       "models' per-batch reverse noise)",
    "precision": "bf16: training and evaluation under bfloat16 autocast; fp32: none",
    "grad_clip": "max gradient norm per step; 0 = off",
    "length_buckets": "batches per length-sorted bucket (batches cut to their longest history); "
                      "0 = random batches",
    "loss_weight": "batch: each batch's mean loss weighs the same; targets: scaled by the batch's share "
                   "of the epoch's targets",
}

_TRANSFORMER = {
    "hidden": "embedding and Transformer width",
    "blocks": "Transformer blocks",
    "heads": "attention heads per block (must divide hidden)",
    "dropout": "dropout on embeddings, attention and feed-forward layers",
}

_SVAE = {
    "embed": "item-embedding size, the GRU's input",
    "rnn_hidden": "GRU state size",
    "latent": "size of the Gaussian latent z_t at each step",
    "hidden": "decoder MLP width; its output is dotted with the output item table",
    "dropout": "dropout on the item embeddings before the GRU",
    "next_k": "items ahead in the multinomial target at each step",
    "beta_max": "weight of the KL term once annealed",
    "anneal_steps": "training steps over which beta rises linearly from 0 to beta_max; 0 = beta_max throughout",
}

_DIFFUREC = {
    **_TRANSFORMER,
    "dropout": "dropout inside the Approximator's attention and feed-forward layers",
    "emb_dropout": "dropout on the history's item embeddings",
    "attention": "Approximator: self (DiffuRec: noisy target added to every position, self-attention); "
                 "cross (noisy target queries the history); cross+self (DiffuRecSys: cross, then self)",
    "cross_kind": "cross-attention: softmax (scaled dot-product), linear (efficient attention, keys "
                  "softmaxed over positions) or heads (the published DiffuRecSys code: keys softmaxed over "
                  "heads, padding output rows set to -1e9)",
    "diffusion_steps": "T, steps of the forward noising process",
    "schedule": "beta schedule over the T steps (trunc_lin: DiffuRec's truncated linear)",
    "timestep_sampler": "how training draws t: uniform, or lossaware importance sampling "
                        "(Nichol & Dhariwal 2021)",
    "rescale_timesteps": "time input t * 1000 / T (as DiffuRec) instead of t",
    "lambda_mean": "mean of lambda ~ N(mean, std), which scales the noisy target added to the history",
    "lambda_std": "std of lambda; 0 = a fixed lambda",
    "offset_noise": "s of the offset noise eps = n + s * m (Guttenberg 2023); 0 = plain Gaussian noise",
    "offset_kind": "shape of m: per_example (B, 1), shared by all dimensions; elementwise (B, D), "
                   "as 27 of the 76 versions of the published DiffuRecSys code (plain noise of variance 1 + s^2)",
    "inference_steps": "reverse steps when scoring; 0 = all T, fewer = evenly strided",
    "valid_inference_steps": "reverse steps when validating during training; 0 = as inference_steps",
    "stochastic": "add noise at each reverse step (off: deterministic reverse steps)",
    "eval_samples": "reverse draws averaged per score",
    "xt_probe": "scoring only: what the Approximator is shown of the reverse state x_t: none (x_t), zero, "
                "or shuffle (another user's x_t); a probe of whether a trained model reads x_t",
    "block_dropout": "dropout on the residual stream after each block (the DiffuRec code)",
    "init_std": "item-embedding init std; 0 = hidden ** -0.5, 1 = the DiffuRec code's N(0, 1)",
    "padding_sink": "L > 0: pad histories to L items that are attended (the DiffuRec code); "
                    "0 = padding masked",
    "chain_blocks": "each block reads the previous one's output; false: every block reads the history "
                    "and only the last one's output is used (the published DiffuRecSys code)",
    "shared_norm": "cross- and self-attention share one pre-norm LayerNorm (the published DiffuRecSys code)",
    "query_norm": "LayerNorm on the cross-attention query lambda * (x_t + time embedding); the published "
                  "DiffuRecSys code has none",
    "query_per_position": "lambda drawn per history position (B, L, D), so each position has its own query "
                          "(the published DiffuRecSys code); false: one draw per example (B, 1, D)",
}

# per registered model name; a model built on another (DiffuRecSys, ACVAE) starts from its fields
MODEL: dict[str, dict[str, str]] = {
    "pop": {},
    "sasrec": {
        **_TRANSFORMER,
        "dropout": "dropout on the embeddings and inside every block (attention and feed-forward)",
        "max_positions": "learned positions, counted from the most recent item; the longest history",
        "loss": "ce: full softmax cross-entropy over all items; bce: the paper's binary CE "
                "with sampled negatives",
        "negatives": "sampled negatives per target, for loss=bce",
        "label_smoothing": "for loss=ce: weight moved from the target to all items",
        "block": "sasrec: the paper's block (post-norm residual, ReLU feed-forward); "
                 "prenorm: nanoGPT's pre-norm block (GELU, 4x wide)",
        "init": "xavier: the SASRec code's Xavier-normal weights; normal: item table at N(0, hidden ** -0.5)",
        "pad_slots": "N > 0: queries also attend to N - n padding positions, as the SASRec code "
                     "(block=sasrec only); 0 = padding masked; unless set, the run's --max-len",
    },
    "bert4rec": {
        **_TRANSFORMER,
        "mask_prob": "probability that a training item is masked (at least one per row)",
        "mask_last": "share of rows that mask only their last item (the paper's extra samples)",
        "max_positions": "learned positions, counted from the end; the longest history plus the [MASK]",
    },
    "svae": _SVAE,
    "acvae": {
        **_SVAE,
        "conv_kernel": "causal convolution over the GRU states (kernel size); 1 = off",
        "kl": "adversarial: the KL term estimated by a critic (adversarial variational Bayes); "
              "analytic: its closed form",
        "critic_hidden": "width of the critic T(s, z)",
        "contrast_weight": "weight of the InfoNCE term between encoder states and their z; 0 = off",
        "temperature": "InfoNCE temperature",
        "contrast_positions": "positions per batch sampled for the InfoNCE term",
    },
    "diffurec": _DIFFUREC,
    "diffurecsys": _DIFFUREC,
}


def description(model: str, section: str, field: str) -> str:
    """The field's line; "" where it has none (the test catches that)."""
    table = TRAIN if section == "train" else MODEL.get(model, {})
    return table.get(field, "")
