"""RQ job functions and the cron schedule; thin entry points into ``common``."""
