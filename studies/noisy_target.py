"""Does the noisy target matter? lambda = 0 removes x_t from the Approximator's input (the model is then
a Transformer over the history trained with the same loss), against the registered lambda ~ N(1e-3, 1e-3).
Its no-training companion re-scores trained checkpoints with x_t zeroed or shuffled across users
(`bench eval --set MODEL.xt_probe=zero|shuffle`)."""
from bench.studies.ablation import SELECTION, Ablation


def probes(point: dict, registered: bool) -> list[tuple[str, dict]]:
    """The registered checkpoints scored with x_t zeroed and with x_t shuffled across users."""
    return [("x_t zeroed", {"xt_probe": "zero"}), ("x_t shuffled", {"xt_probe": "shuffle"})] if registered else []


ABLATION = Ablation(
    "noisy_target",
    points=({}, {"lambda_mean": 0.0, "lambda_std": 0.0}),
    names=("registered", "lambda=0"),
    fixed=SELECTION,
    rescore=probes,
    doc="the registered model against lambda = 0 (no noisy target in the Approximator's input)",
)
