"""Mail-log lines in Postfix's shapes (``format``) and where they are written (``sinks``)."""
