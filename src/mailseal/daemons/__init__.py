"""Composition roots, one per Postfix program: master, smtpd, qmgr."""
