"""The study points' `bench run` commands, one per line, in the order that answers questions first:
offset 0 at three seeds, seed 0 of every other point of the four DiffuRecSys studies and the
code_fidelity walk, then seeds 1 and 2.

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
    # the biggest questions first: no offset noise (three seeds: the paper's claim), no noisy target,
    # T = 4, self-attention only, offset 1.0, the paper's reading of the Approximator
    first = [*noisy_target.ABLATION.points, tp[0], ap[0], op[3], ap[6], tp[2], ap[3], op[2], op[4], ap[1], ap[2],
             ap[4]]
    order = [line("diffurecsys", dataset, seed, op[0]) for seed in (0, 1, 2)]
    order += [line("diffurecsys", dataset, 0, p) for p in first]
    order += [line("diffurecsys", dataset, 0, p) for p in code_fidelity.ABLATION.points]
    for seed in (1, 2):
        order += [line("diffurecsys", dataset, seed, p) for p in first]
    return list(dict.fromkeys(order))


if __name__ == "__main__":
    import sys

    print("\n".join(queue(sys.argv[1] if len(sys.argv) > 1 else "beauty")))
