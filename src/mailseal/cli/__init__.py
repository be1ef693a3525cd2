"""The ``mailseal`` command and its sub-commands (layer 4)."""
