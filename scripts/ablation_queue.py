"""The study points' `bench run` commands, one per line, in the order that answers questions first:
three seeds each of the registered point, lambda = 0, self-attention only and T = 4, then seed 0 of
every other point of the four DiffuRecSys studies and the code_fidelity walk, then their seeds 1 and 2.

    python scripts/ablation_queue.py [DATASET] > queue.txt
    scripts/queue_worker.sh queue.txt 1 [DEADLINE] & scripts/queue_worker.sh queue.txt 2 [DEADLINE] &

Each line is exactly what `bench ablate STUDY --exclude-seen --out runs/ablations` trains for that point
(the point's fields and the studies' shared settings under --set), so the study commands later find
these runs finished and tag them; a line already finished is skipped, a stopped one resumes. The lines
resolve against the registered defaults when they run: regenerate the queue after a default changes.
"""
from bench.studies import attention, code_fidelity, diffusion_steps, noisy_target, offset_noise
from bench.studies.ablation import SELECTION
from bench.registry.runconfig import raw


def line(model: str, dataset: str, seed: int, point: dict) -> str:
    sets = " ".join(f"--set {model}.{k}={raw(v)}" for k, v in {**SELECTION, **point}.items())
    return f"bench run --models {model} --dataset {dataset} --seeds {seed}, --exclude-seen --out runs/ablations {sets}"


def queue(dataset: str = "beauty") -> list[str]:
    op, ap, tp = offset_noise.ABLATION.points, attention.ABLATION.points, diffusion_steps.ABLATION.points
    registered, no_target = noisy_target.ABLATION.points
    # three seeds of the biggest questions: no noisy target, self-attention only, T = 4
    three = [registered, no_target, ap[0], tp[0]]
    # then one seed of the rest: the paper's Approximator, T = 128, cross+self softmax, the offsets, cross only
    rest = [ap[6], tp[2], ap[3], op[1], op[2], op[3], op[4], ap[1], ap[2], ap[4]]
    order = [line("diffurecsys", dataset, seed, p) for p in three for seed in (0, 1, 2)]
    order += [line("diffurecsys", dataset, 0, p) for p in rest]
    order += [line("diffurecsys", dataset, 0, p) for p in code_fidelity.ABLATION.points]
    for seed in (1, 2):
        order += [line("diffurecsys", dataset, seed, p) for p in rest]
    return list(dict.fromkeys(order))


if __name__ == "__main__":
    import sys

    print("\n".join(queue(sys.argv[1] if len(sys.argv) > 1 else "beauty")))
