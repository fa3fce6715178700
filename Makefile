# Thin wrappers around tasks.py (which needs only Python 3.11 + pip) and the package CLIs.
PY := .venv/bin/python
.PHONY: setup all test paper data train attacks sweep bench pair clean
setup: ; python3 tasks.py setup
all: ; python3 tasks.py all
test: ; python3 tasks.py test
paper: ; python3 tasks.py paper
data: setup ; $(PY) -m advmri pipeline --until data
train: setup ; $(PY) -m advmri pipeline --until train --retrain
sweep: setup ; $(PY) -m advmri sweep sweeps/paper.yaml
bench: setup ; $(PY) bench/bench_attacks.py --out bench/RESULTS.md
pair: setup ; $(PY) -m jupytext --to ipynb --update notebooks/*.py
clean: ; rm -rf results/* data/synthetic paper/build
