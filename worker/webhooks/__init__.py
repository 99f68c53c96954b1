"""The webhook deliverer (`python -m worker.webhooks`): POSTs the events queued for users
with no open socket to NOTIFY_WEBHOOK_URL, signed, retried with backoff, at least once."""
