"""The study points' `bench run` commands, one per line, in the order that answers questions first:
seed 0 of every point of the four DiffuRecSys studies and the code_fidelity walk, then seeds 1 and 2.

    python scripts/ablation_queue.py > queue.txt
    scripts/queue_worker.sh queue.txt 1 & scripts/queue_worker.sh queue.txt 2 &

Each line is exactly what `bench ablate STUDY --exclude-seen --out runs/ablations` trains for that point
(the point's fields and the studies' shared settings under --set), so the study commands later find
these runs finished and tag them; a line already finished is skipped, a stopped one resumes.
"""
from bench.studies import attention, code_fidelity, diffusion_steps, noisy_target, offset_noise
from bench.studies.ablation import SELECTION
from bench.registry.runconfig import raw


def line(model: str, dataset: str, seed: int, point: dict) -> str:
    sets = " ".join(f"--set {model}.{k}={raw(v)}" for k, v in {**SELECTION, **point}.items())
    return f"bench run --models {model} --dataset {dataset} --seeds {seed}, --exclude-seen --out runs/ablations {sets}"


def queue(dataset: str = "beauty") -> list[str]:
    op, ap, tp = offset_noise.ABLATION.points, attention.ABLATION.points, diffusion_steps.ABLATION.points
    # the biggest questions first: offset 1.0, self-attention only, T = 4, the published Approximator
    first = [op[3], ap[0], tp[0], ap[5], op[0], ap[1], tp[2], op[4], op[2], ap[2], ap[3], ap[4]]
    order = [line("diffurecsys", dataset, 0, p) for p in noisy_target.ABLATION.points + tuple(first)]
    order += [line("diffurecsys", dataset, 0, p) for p in code_fidelity.ABLATION.points]
    for seed in (1, 2):
        order += [line("diffurecsys", dataset, seed, p) for p in noisy_target.ABLATION.points + tuple(first)]
    return list(dict.fromkeys(order))


if __name__ == "__main__":
    import sys

    print("\n".join(queue(sys.argv[1] if len(sys.argv) > 1 else "beauty")))
