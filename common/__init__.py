"""Everything that is neither HTTP-serving nor queue-specific: config, clients, the sync engine."""
