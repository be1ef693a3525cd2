"""Everything that knows TLS: certificates, contexts, levels, policy, log phrasing.

Server side so far:

* ``levels``   -- ``TlsLevel`` (Postfix's ordered levels and predicates), ``server_level``.
* ``ciphers``  -- cipher strings from grades and exclusions; protocol windows (pure).
* ``chains``   -- keys and certificate chains from ``smtpd_tls_chain_files`` or the
  legacy cert/key parameters, with Postfix's error texts.
* ``context``  -- ``ssl`` helpers: protocol bounds, loading chains, option names.
* ``server``   -- ``build_server_tls(config) -> ServerTls`` (context, level, problem).
* ``outcome``  -- ``judge_server_side`` -> ``TlsOutcome`` (trust, cipher, fingerprints).
* ``phrases``  -- Postfix's log lines and Received: comments; ``iana`` cipher names.
* ``certs``    -- self-signed pairs and checks for ``mailseal init`` / ``check``.
"""
