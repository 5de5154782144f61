#!/usr/bin/env bash
# Regenerate every report folder under docs/results/ from the committed store (issue 26):
# the tables, PNGs and provenance the results pages show.  Nothing here trains; run it
# after a sweep has added runs (`lchannel run SPEC --db docs/results/lchannel.db`).
#     bash benchmarks/results_reports.sh
set -euo pipefail
DB=docs/results/lchannel.db
export LCHANNEL_DATA_DIR=${LCHANNEL_DATA_DIR:-../shared/datasets}
for f in figure1 figure2 figure3 figure7 figure9; do         # paper 1, at the protocol
    lchannel report $f --db $DB --out docs/results/$f > /dev/null
done
lchannel report figure4 --db $DB --out docs/results/figure4 > /dev/null   # paper 1, at the protocol
lchannel report figure8 --db $DB --out docs/results/figure8 > /dev/null   # paper 1, at the protocol (cells as they finish)
# paper 1's CIFAR-10 Baseline row: one seed, 20 epochs (reduced); Figure 5's panels for it
lchannel report figure5 --db $DB --epochs 20 --seeds 0 --where algorithm=BP --where algorithm=RBP \
    --where algorithm=SRBP --where "algorithm=Top layer only" --out docs/results/figure5 > /dev/null
python benchmarks/table1_tsv.py --db $DB --spec table1-cifar --out docs/results/table1-cifar.tsv \
    --extrapolate > docs/results/figure5/extrapolation.md
for f in p2-figure7 p2-figure8 p2-figure9 p2-figure10 p2-figure11; do   # paper 2, seed 0
    lchannel report $f --db $DB --seeds 0 --out docs/results/$f > /dev/null
done
# paper 2's f_k problems: one epoch (5,000 updates) of the spec's up to 300 (reduced)
lchannel report p2-figure12 --db $DB --seeds 0 --epochs 1 --out docs/results/p2-figure12 > /dev/null
for f in p2-figure13 p2-figure14; do                         # HIGGS: the shipped subset
    lchannel report $f --db $DB --seeds 0 --dataset higgs16k --out docs/results/$f > /dev/null
done
python benchmarks/table1_tsv.py --db $DB --out docs/results/table1-mnist.tsv --page docs/results/paper1.md
echo "reports regenerated under docs/results/"
