"""lockstock notifications: the outbox worker."""
