"""Benchmarks for ml-budgets: cost per provider operation, HTTP calls per run, program scale
and start-up.  Run each as ``python -m bench.<name>`` from the project root, or all of them with
``python -m bench.run_all`` (figures go to ``bench/results/``)."""
