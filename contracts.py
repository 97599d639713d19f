"""Names and values other programs read: the one place they are spelled.

Experiment tags written by ``components/`` (through ``providers.ExperimentTag`` resources) and
read by ``evaluation/`` (``TokenBudgetEvaluator.from_experiment``) and by Databricks itself.
Standard library only: ``evaluation/`` imports it without pulumi, the program without mlflow.

The Databricks emulator keeps its own copies of Databricks' limits on purpose (it plays
Databricks, so it must not agree with our providers by construction); a table test runs both
sides' validators over the same values (tests/providers/test_contracts.py).
"""

# On Databricks, names the serverless budget policy billed for an experiment's scorers,
# synthetic evaluation data and agent evaluation.
BUDGET_POLICY_TAG = "mlflow.workload_creation_policy_id"

# The token budget of mlflow.genai.evaluate() runs in an experiment (see evaluation/).
TOKEN_BUDGET_TAG = "ml-budgets.token_budget.max_tokens"
ON_EXCEED_TAG = "ml-budgets.token_budget.on_exceed"
COST_PER_1K_TOKENS_TAG = "ml-budgets.token_budget.cost_per_1k_tokens"

RAISE = "raise"
WARN = "warn"
ON_EXCEED_MODES = (RAISE, WARN)
