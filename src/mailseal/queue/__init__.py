"""The durable mail queue: queue files on disk, queue IDs, and retry scheduling."""
