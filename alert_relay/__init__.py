"""alert_relay: MLflow budget webhooks in, Slack / PagerDuty / Alertmanager / JSON webhook out.

MLflow posts one signed ``budget_policy.exceeded`` envelope to every webhook; the relay checks the
signature, keeps the events of the policies a route owns (listed in the webhook URL's query), and
queues one durable delivery per destination, retried until delivered or expired.

Run it with ``python -m alert_relay --config relay.yaml`` (see README, "Budget alerts").
"""
