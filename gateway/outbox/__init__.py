"""A durable outbox of signed notices to partner organisations: queue, deliver, retry, acknowledge."""
