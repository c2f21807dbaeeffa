#!/usr/bin/env bash
# The one prepared GPU check: `bench perf --device cuda` for every model, then the attention study on
# Beauty with one seed, on a lent GPU machine (its python3 holds a CUDA PyTorch; nothing can be fetched
# there). Two steps:
#
#   scripts/gpu_check.sh prepare     # here: wheels of the packages that machine lacks, and Beauty, into .gpu/
#   scripts/gpu_check.sh run         # there (carry .gpu): writes card.txt, perf.*, results.txt,
#                                    # ablation.md and results.jsonl under $OUT (else gpu-out/)
#
# The run stops the study at STUDY_SECONDS (default 420) so that the whole call stays under 10 minutes;
# runs it did not finish are listed as such in results.txt. Record the figures in RESULTS.md with the
# card's name (card.txt).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
case "${1:-}" in
prepare)
    data=${BENCH_DATA_DIR:-$HOME/.cache/bench/data}
    mkdir -p .gpu/whl .gpu/data
    cp "$data/beauty.pkl" .gpu/data/
    # the versions this project's venv resolved; pure Python except SQLAlchemy and pydantic_core (cp312)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/whl optuna==5.1.0 alembic==1.20.1 SQLAlchemy==2.1.9 colorlog==6.12.0 Mako==1.4.3 \
        typer==0.29.2 rich==15.0.0 shellingham==1.5.4 typing_extensions==4.16.0 click==8.5.1 \
        markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 annotated-doc==0.0.7 \
        pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 || exit 1
    du -sh .gpu
    ;;
run)
    out=${OUT:-gpu-out}
    mkdir -p "$out"
    python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
        || { echo "the carried wheels are for Python 3.12; this python3 is $(python3 -V)" >&2; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu/whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$here BENCH_DATA_DIR=$here/.gpu/data PYTHONUNBUFFERED=1
    (nvidia-smi -L; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())") > "$out/card.txt" 2>&1
    cat "$out/card.txt"
    timeout 150 python3 -m bench.cli perf --models all --dataset beauty --device "${DEVICE:-cuda}" --precision fp32,bf16 \
        --json "$out/perf.json" > "$out/perf.txt" 2>&1
    echo "perf: rc $?"; tail -30 "$out/perf.txt"
    timeout "${STUDY_SECONDS:-420}" python3 -m bench.cli ablate attention --dataset beauty --seeds 0, \
        --exclude-seen --device "${DEVICE:-cuda}" --workers 3 --threads 4 --out runs/gpu > "$out/study.txt" 2>&1
    echo "study: rc $? (124: stopped at ${STUDY_SECONDS:-420} s)"; tail -20 "$out/study.txt"
    python3 -m bench.cli results runs/gpu > "$out/results.txt" 2>&1
    cp runs/gpu/results.jsonl "$out/" 2>/dev/null
    python3 -m bench.cli report runs/gpu --out runs/gpu/report --format md > /dev/null 2>&1 \
        && cp runs/gpu/report/report.md "$out/ablation.md"
    cat "$out/results.txt"
    ;;
*)
    echo "usage: scripts/gpu_check.sh prepare|run" >&2
    exit 2
    ;;
esac
