"""``python -m mailseal`` runs the ``mailseal`` command."""

from mailseal.cli.main import main

raise SystemExit(main())
