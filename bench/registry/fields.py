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
    "preferdiff": {
        **_TRANSFORMER,
        "blocks": "SASRec encoder blocks",
        "dropout": "dropout on the history embeddings, attention weights and feed-forward output",
        "max_positions": "learned positions, counted from the oldest item of the history; the longest "
                         "history; unless set, the run's --max-len",
        "residual": "residual around the encoder's attention and feed-forward (false: DreamRec's encoder)",
        "targets": "last: one target per training sequence (its last item), as the code; all: every position's",
        "diffusion": "false: the control without diffusion: the denoiser is shown x_t = 0 at t = 0 in training "
                     "and scoring, a regressor of the target embedding with the same losses",
        "diffusion_steps": "T, steps of the forward noising process",
        "schedule": "beta schedule: linear from beta_start to beta_end (PreferDiff), or exp (DreamRec's)",
        "beta_start": "first beta of the linear schedule",
        "beta_end": "last beta of the linear schedule",
        "loss": "denoising error: cosine, mean (cos(x0_hat, x0) - 1)^2 (PreferDiff); mse (DreamRec)",
        "pref_weight": "weight of the preference term -log sigmoid(-gamma (L_pos - L_neg)); the positive "
                       "error gets 1 - pref_weight (the code's lamda = 1 - pref_weight); 0 = DreamRec's loss",
        "gamma": "scale of the error gap inside the preference term's sigmoid",
        "pref_reduce": "batch: the sigmoid of the batch-mean errors (the code); example: per example, then averaged",
        "uncond_prob": "probability that training replaces the history's state by the learned 'no history' "
                       "embedding (for classifier-free guidance)",
        "guidance": "w of classifier-free guidance: (1 + w) f(x_t, h) - w f(x_t, none); 0 = conditional only",
        "denoiser": "linear: one layer on (x_t, h, time embedding) concatenated (the code); mlp: two layers "
                    "with GELU (DreamRec's mlp2)",
        "sampler": "reverse process when scoring: ddim (deterministic, every ddim_stride steps; PreferDiff) "
                   "or ddpm (all T steps with noise; DreamRec)",
        "ddim_stride": "steps between DDIM steps; T / stride + 1 network evaluations per score",
    },
    "adrec": {
        **_TRANSFORMER,
        "blocks": "blocks of the causal encoder, of the attention denoiser and of the pretraining SASRec, each",
        "dropout": "dropout inside every block (attention weights, feed-forward, residuals)",
        "emb_dropout": "dropout on the history's item embeddings",
        "diffusion_steps": "T, steps of the forward noising process",
        "schedule": "beta schedule over the T steps (trunc_lin: DiffuRec's truncated linear, as ADRec)",
        "rescale_timesteps": "time input t * 1000 / T (as the code) instead of t",
        "lambda_scale": "fixed lambda: the denoiser reads encoder state + lambda * (x_t + time embedding)",
        "mse_weight": "weight of the diffusion MSE beside the cross-entropy (the code's loss_scale); "
                      "0 = its loss=ce, the noisy target still fed",
        "diffusion": "false: the control without diffusion: the denoiser reads the encoder states alone, "
                     "no MSE, one deterministic pass when scoring",
        "token_timesteps": "a timestep per position (the code's independent=true); false: one per sequence",
        "denoiser": "attention: causal post-norm blocks (the code's dif_decoder=att); mlp: a per-position MLP",
        "pretrain_steps": "first optimizer steps that train the pretraining SASRec (its own table and "
                          "encoder, cross-entropy; it scores validation meanwhile); 0 = no pretraining",
        "freeze_steps": "steps after pretraining during which ADRec's item table (the pretrained one) is "
                        "frozen; 0 = none",
        "frozen_decay": "the frozen table still takes Adam's weight-decay steps (the code's PCGrad gives it "
                        "a zero gradient); false: truly frozen",
        "padding_sink": "L > 0: histories left-padded to L items, the padding attended by every later "
                        "position (the code); 0 = padding masked; unless set, the run's --max-len",
        "stochastic": "add noise at each reverse step (off: deterministic reverse steps)",
    },
    "diqdiff": {
        **_TRANSFORMER,
        "blocks": "Approximator blocks (DiffuRec's, with dropout after each block)",
        "dropout": "dropout inside the Approximator's attention and feed-forward layers and after each block",
        "emb_dropout": "dropout on the history's item embeddings",
        "diffusion_steps": "T, steps of the forward noising process",
        "schedule": "beta schedule over the T steps (trunc_lin: DiffuRec's truncated linear)",
        "rescale_timesteps": "time input t * 1000 / T (as the code) instead of t",
        "lambda_scale": "fixed lambda: the Approximator reads lambda * (x_t + time embedding) at every position",
        "history_weight": "weight of the embedded history in the Approximator's input (the code's lambda_history)",
        "codebook": "false: no codebook; the Approximator reads the weighted history and the noisy target only",
        "codebook_size": "K, codes per batch (the code's num_cluster)",
        "codebook_weight": "weight of each row's code vector, the mean history of the batch's rows with its "
                           "code, in the Approximator's input (the code's lambda_intent)",
        "codebook_assign": "sample: a row's code is a draw from softmax of a linear map of its history (the "
                           "code's hard Gumbel-softmax); argmax: the most likely code",
        "contrast_weight": "weight of the contrastive term on the batch's x0 predictions (the code's "
                           "lambda_contra); 0 = off",
        "temperature": "temperature of the contrastive term's cosine similarities",
        "diffusion": "false: the control without diffusion: the Approximator is shown x_t = 0 at t = 0 in "
                     "training and scoring, one deterministic pass",
        "reverse_noise": "noise of each reverse step: code (std exp(posterior variance / 2), the code's), "
                         "posterior (DiffuRec's) or none",
        "inference_steps": "reverse steps when scoring; 0 = all T, fewer = evenly strided",
        "valid_inference_steps": "reverse steps when validating during training; 0 = as inference_steps",
        "init_std": "item-embedding init std; 1 = the code's N(0, 1), 0 = hidden ** -0.5",
        "max_positions": "histories are left-padded to this many items, all read by the codebook's "
                         "assignment; unless set, the run's --max-len",
        "attend_padding": "the padding positions are attended (the code); false: padding keys masked",
    },
}


def description(model: str, section: str, field: str) -> str:
    """The field's line; "" where it has none (the test catches that)."""
    table = TRAIN if section == "train" else MODEL.get(model, {})
    return table.get(field, "")
